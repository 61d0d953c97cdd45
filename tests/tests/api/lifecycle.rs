//! A session's life: start by the end user, link expiry (410), session time,
//! schedule window, cancellation, and the documented defaults.

use kyc_tests::{TestServer, http};
use serde_json::{Value, json};

use crate::{begin, result};

async fn widget(ts: &TestServer, method: &str, path: &str, token: &str) -> (u16, Value) {
    let url = format!("{}{path}", ts.url);
    let request = match method {
        "GET" => http().get(url),
        _ => http().post(url),
    };
    let response = request.bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn link_expires_after_fifteen_minutes_by_default() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let (status, begun) = begin(&ts, &json!({"company_key": key})).await;
    assert_eq!(status, 200);
    let token = begun["session_token"].as_str().unwrap();
    let created = kyc_core::clock::parse_datetime(begun["expires_at"].as_str().unwrap()).unwrap();
    let (_, res) = result(&ts, &key, token).await;
    let created_at = kyc_core::clock::parse_datetime(res["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        created.0 - created_at.0,
        15 * 60 * 1000,
        "15 minutes by default"
    );

    assert_eq!(
        widget(&ts, "GET", "/api/widget/session", token).await.0,
        200
    );
    ts.advance_clock(15 * 60 + 1);
    let (status, answer) = widget(&ts, "GET", "/api/widget/session", token).await;
    assert_eq!(status, 410);
    assert_eq!(answer["error"]["code"], "session_expired");
    let (status, _) = widget(&ts, "POST", "/api/widget/session/start", token).await;
    assert_eq!(status, 410);
    let (_, res) = result(&ts, &key, token).await;
    assert_eq!(res["status"], "expired");
    ts.stop().await;
}

#[tokio::test]
async fn a_started_session_has_its_session_time() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let (_, begun) = begin(&ts, &json!({"company_key": key})).await;
    let token = begun["session_token"].as_str().unwrap();
    let (status, started) = widget(&ts, "POST", "/api/widget/session/start", token).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "in_progress");
    assert!(started["deadline_at"].is_string());
    // Started sessions outlive the 15-minute link, up to the 30-minute session time.
    ts.advance_clock(20 * 60);
    assert_eq!(result(&ts, &key, token).await.1["status"], "in_progress");
    ts.advance_clock(10 * 60 + 1);
    assert_eq!(result(&ts, &key, token).await.1["status"], "expired");
    let (status, answer) = widget(&ts, "GET", "/api/widget/session", token).await;
    assert_eq!(status, 410);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("session time"),
        "{answer}"
    );
    ts.stop().await;
}

#[tokio::test]
async fn schedule_window_is_enforced() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let now = ts.server.state.clock.now();
    let body = json!({"company_key": key,
        "scheduleStartTime": now.plus_secs(600).to_rfc3339(),
        "scheduleEndTime": now.plus_secs(3600).to_rfc3339()});
    let (status, begun) = begin(&ts, &body).await;
    assert_eq!(status, 200, "{begun}");
    let token = begun["session_token"].as_str().unwrap();
    let (status, answer) = widget(&ts, "POST", "/api/widget/session/start", token).await;
    assert_eq!(status, 403);
    assert_eq!(answer["error"]["code"], "not_yet_available");
    ts.advance_clock(601);
    assert_eq!(
        widget(&ts, "POST", "/api/widget/session/start", token)
            .await
            .0,
        200
    );
    ts.advance_clock(3000);
    assert_eq!(
        widget(&ts, "GET", "/api/widget/session", token).await.0,
        410
    );
    ts.stop().await;
}

#[tokio::test]
async fn result_needs_the_right_company_and_token() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let other = ts.company(false).await.company_key.unwrap();
    let (_, begun) = begin(&ts, &json!({"company_key": key})).await;
    let token = begun["session_token"].as_str().unwrap();
    assert_eq!(
        result(&ts, &other, token).await.0,
        404,
        "another company cannot read it"
    );
    assert_eq!(result(&ts, &key, "kst_unknown").await.0, 404);
    let response = http()
        .post(format!("{}/result/", ts.url))
        .json(&json!({"company_key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        widget(&ts, "GET", "/api/widget/session", "kst_unknown")
            .await
            .0,
        404
    );
    ts.stop().await;
}

#[tokio::test]
async fn cancelled_sessions_are_gone_for_the_end_user() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let (_, begun) = begin(&ts, &json!({"company_key": key})).await;
    let token = begun["session_token"].as_str().unwrap();
    let cancelled = ts.admin().cancel_session(token).await.unwrap();
    assert_eq!(
        cancelled.result.status,
        kyc_core::domain::SessionStatus::Cancelled
    );
    let (status, answer) = widget(&ts, "GET", "/api/widget/session", token).await;
    assert_eq!(status, 410);
    assert_eq!(answer["error"]["code"], "session_cancelled");
    let again = ts.admin().cancel_session(token).await.unwrap_err();
    assert_eq!(again.code(), Some("conflict"));
    ts.stop().await;
}

#[tokio::test]
async fn disabled_or_rotated_company_keys_stop_working() {
    let ts = TestServer::start().await;
    let company = ts.company(false).await;
    let key = company.company_key.unwrap();
    let admin = ts.admin();
    admin.disable_company(&company.company.id).await.unwrap();
    assert_eq!(begin(&ts, &json!({"company_key": key})).await.0, 401);
    admin.enable_company(&company.company.id).await.unwrap();
    assert_eq!(begin(&ts, &json!({"company_key": key})).await.0, 200);
    let rotated = admin
        .rotate_company_key(&company.company.id)
        .await
        .unwrap()
        .company_key
        .unwrap();
    assert_eq!(begin(&ts, &json!({"company_key": key})).await.0, 401);
    assert_eq!(begin(&ts, &json!({"company_key": rotated})).await.0, 200);
    ts.stop().await;
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let (_, begun) = begin(&ts, &json!({"company_key": key})).await;
    let token = begun["session_token"].as_str().unwrap();
    assert_eq!(token.len(), 4 + 43, "kst_ + 256 bits in base64url");
    let found = ts
        .raw_execute(&format!(
            "UPDATE sessions SET name = name WHERE token_hash = '{token}' OR spec LIKE '%{token}%'"
        ))
        .await
        .unwrap();
    assert_eq!(found, 0, "the raw token is nowhere in the database");
    let found = ts
        .raw_execute(&format!(
            "UPDATE companies SET name = name WHERE key_hash = '{key}'"
        ))
        .await
        .unwrap();
    assert_eq!(found, 0);
    ts.stop().await;
}
