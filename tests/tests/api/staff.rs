//! The staff API: roles, groups, session listing, and the audit trail.

use kyc_client::{AuditFilter, SessionFilter};
use kyc_core::api::{CreateStaff, Role};
use kyc_tests::TestServer;
use serde_json::json;

#[tokio::test]
async fn staff_requests_need_a_valid_token() {
    let ts = TestServer::start().await;
    let expected = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => "postgres",
        _ => "sqlite",
    };
    assert_eq!(
        ts.backend(),
        expected,
        "the suite runs on the database DATABASE_URL names"
    );
    let health = kyc_client::Client::new(&ts.url, None)
        .health()
        .await
        .unwrap();
    assert_eq!(health.database, format!("{expected} ok"));
    let nobody = kyc_client::Client::new(&ts.url, None);
    assert_eq!(nobody.me().await.unwrap_err().code(), Some("unauthorized"));
    let wrong = ts.client("kyc_staff_wrong");
    assert_eq!(
        wrong.companies().await.unwrap_err().code(),
        Some("unauthorized")
    );
    let me = ts.admin().me().await.unwrap();
    assert_eq!(me.name, "admin");
    assert_eq!(me.role, Role::Admin);
    ts.stop().await;
}

#[tokio::test]
async fn operators_see_only_their_groups_and_cannot_administer() {
    let ts = TestServer::start().await;
    let admin = ts.admin();
    let company = ts.company(false).await;
    let operator = admin
        .create_staff(&CreateStaff {
            name: "olga".into(),
            role: Role::Operator,
            groups: vec!["tbilisi".into()],
        })
        .await
        .unwrap();
    let olga = ts.client(&operator.token);
    assert_eq!(
        olga.companies().await.unwrap_err().code(),
        Some("forbidden")
    );
    assert_eq!(
        olga.staff_accounts().await.unwrap_err().code(),
        Some("forbidden")
    );
    assert_eq!(
        olga.audit(&AuditFilter::default())
            .await
            .unwrap_err()
            .code(),
        Some("forbidden")
    );

    let make = |group: Option<&str>| {
        let mut body = json!({"company_id": company.company.id});
        if let Some(group) = group {
            body["groupId"] = group.into();
        }
        body
    };
    let ours = admin.create_session(&make(Some("tbilisi"))).await.unwrap();
    let theirs = admin.create_session(&make(Some("berlin"))).await.unwrap();
    let shared = admin.create_session(&make(None)).await.unwrap();

    let listed = olga.sessions(&SessionFilter::default()).await.unwrap();
    assert_eq!(
        listed.items.len(),
        2,
        "own group and no group: {:?}",
        listed.items
    );
    assert!(
        listed
            .items
            .iter()
            .all(|s| s.group_id.as_deref() != Some("berlin"))
    );
    assert!(olga.session(&ours.session_token).await.is_ok());
    assert!(olga.session(&shared.session_token).await.is_ok());
    assert_eq!(
        olga.session(&theirs.session_token)
            .await
            .unwrap_err()
            .code(),
        Some("not_found")
    );

    assert_eq!(
        olga.create_session(&make(Some("berlin")))
            .await
            .unwrap_err()
            .code(),
        Some("forbidden")
    );
    assert!(olga.create_session(&make(Some("tbilisi"))).await.is_ok());
    assert_eq!(
        admin
            .sessions(&SessionFilter::default())
            .await
            .unwrap()
            .items
            .len(),
        4
    );
    ts.stop().await;
}

#[tokio::test]
async fn every_staff_action_is_audited_and_the_log_is_append_only() {
    let ts = TestServer::start().await;
    let admin = ts.admin();
    let company = ts.company(true).await;
    admin.rotate_company_key(&company.company.id).await.unwrap();
    admin.disable_company(&company.company.id).await.unwrap();
    admin.enable_company(&company.company.id).await.unwrap();
    let session = admin
        .create_session(&json!({"company_id": company.company.id}))
        .await
        .unwrap();
    admin.session(&session.session_token).await.unwrap();
    admin
        .create_staff(&CreateStaff {
            name: "olga".into(),
            role: Role::Operator,
            groups: vec![],
        })
        .await
        .unwrap();

    let log = admin.audit(&AuditFilter::default()).await.unwrap();
    let actions: Vec<&str> = log.items.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "staff.create",
            "company.create",
            "company.rotate_key",
            "company.disable",
            "company.enable",
            "session.create",
            "session.view",
            "staff.create"
        ]
    );
    assert_eq!(log.items[0].actor_name, "admin");
    assert_eq!(log.items.last().unwrap().actor_name, "system");
    assert!(
        log.items
            .iter()
            .all(|e| e.request_id.is_some() || e.actor_name == "system")
    );
    let text = serde_json::to_string(&log).unwrap();
    assert!(
        !text.contains(company.company_key.as_deref().unwrap()),
        "no keys in the log"
    );

    let paged = admin
        .audit(&AuditFilter {
            limit: Some(3),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(paged.items.len(), 3);
    let next = admin
        .audit(&AuditFilter {
            limit: Some(3),
            cursor: paged.next_cursor.clone(),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(next.items[0].seq, paged.items[2].seq - 1);

    assert!(
        ts.raw_execute("UPDATE audit_log SET action = 'nothing'")
            .await
            .is_err()
    );
    assert!(ts.raw_execute("DELETE FROM audit_log").await.is_err());
    assert_eq!(
        admin
            .audit(&AuditFilter::default())
            .await
            .unwrap()
            .items
            .len(),
        8
    );
    ts.stop().await;
}

#[tokio::test]
async fn the_last_admin_cannot_be_disabled_and_disabled_staff_are_locked_out() {
    let ts = TestServer::start().await;
    let admin = ts.admin();
    let me = admin.me().await.unwrap();
    assert_eq!(
        admin.disable_staff(&me.id).await.unwrap_err().code(),
        Some("conflict")
    );
    let second = admin
        .create_staff(&CreateStaff {
            name: "root2".into(),
            role: Role::Admin,
            groups: vec![],
        })
        .await
        .unwrap();
    let duplicate = admin
        .create_staff(&CreateStaff {
            name: "root2".into(),
            role: Role::Operator,
            groups: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Some("conflict"));
    admin.disable_staff(&second.account.id).await.unwrap();
    assert_eq!(
        ts.client(&second.token).me().await.unwrap_err().code(),
        Some("unauthorized")
    );
    admin.enable_staff(&second.account.id).await.unwrap();
    let rotated = admin.rotate_staff_token(&second.account.id).await.unwrap();
    assert_eq!(
        ts.client(&second.token).me().await.unwrap_err().code(),
        Some("unauthorized")
    );
    assert!(ts.client(&rotated.token).me().await.is_ok());
    ts.stop().await;
}

#[tokio::test]
async fn session_listing_filters_and_pages() {
    let ts = TestServer::start().await;
    let admin = ts.admin();
    let a = ts.company(false).await;
    let b = ts.company(false).await;
    for i in 0..5 {
        let body = json!({"company_id": a.company.id, "clientUserId": format!("u{i}")});
        admin.create_session(&body).await.unwrap();
    }
    let b_session = admin
        .create_session(&json!({"company_id": b.company.id, "link_expiry_secs": 3600}))
        .await
        .unwrap();
    let only_a = admin
        .sessions(&SessionFilter {
            company_id: Some(a.company.id.clone()),
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(only_a.items.len(), 5);
    let by_user = admin
        .sessions(&SessionFilter {
            client_user_id: Some("u3".into()),
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(by_user.items.len(), 1);

    let first = admin
        .sessions(&SessionFilter {
            limit: Some(4),
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 4);
    assert_eq!(
        first.items[0].session_id,
        admin
            .session(&b_session.session_token)
            .await
            .unwrap()
            .result
            .session_id
    );
    let rest = admin
        .sessions(&SessionFilter {
            limit: Some(4),
            cursor: first.next_cursor.clone(),
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next_cursor.is_none());

    // B's link lasts an hour; A's (staff default) too. After it, they are expired.
    ts.advance_clock(3601);
    let expired = admin
        .sessions(&SessionFilter {
            status: Some("expired".into()),
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(expired.items.len(), 6);
    let bad = admin
        .sessions(&SessionFilter {
            status: Some("lost".into()),
            ..SessionFilter::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("invalid_request"));
    ts.stop().await;
}

#[tokio::test]
async fn staff_sessions_respect_link_and_session_time_bounds() {
    let ts = TestServer::start().await;
    let admin = ts.admin();
    let company = ts.company(false).await;
    let id = company.company.id.clone();
    for (field, value) in [
        ("link_expiry_secs", 3599),
        ("link_expiry_secs", 30 * 86400 + 1),
        ("session_time_secs", 299),
        ("session_time_secs", 3601),
    ] {
        let err = admin
            .create_session(&json!({"company_id": id, field: value}))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("invalid_request"), "{field}={value}");
    }
    let ok = admin
        .create_session(
            &json!({"company_id": id, "link_expiry_secs": 30 * 86400, "session_time_secs": 300}),
        )
        .await
        .unwrap();
    let shown = admin.session(&ok.session_token).await.unwrap();
    assert_eq!(shown.session_time_secs, 300);
    assert_eq!(
        shown.created_by.as_deref(),
        Some(admin.me().await.unwrap().id.as_str())
    );
    let invalid = admin
        .create_session(&json!({"company_id": id, "steps": [{"type": "bogus"}]}))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Some("invalid_request"));
    assert_eq!(ts.session_count().await, 1);
    ts.stop().await;
}

#[tokio::test]
async fn staff_bodies_refuse_unknown_fields_and_bad_values() {
    let ts = TestServer::start().await;
    let http = kyc_tests::http();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{}{path}", ts.url))
            .bearer_auth(&ts.admin_token)
            .json(&body)
            .send()
    };
    let typo = post(
        "/api/staff/companies",
        json!({"name": "Acme", "hamc": true}),
    )
    .await
    .unwrap();
    assert_eq!(typo.status(), 400);
    let answer: serde_json::Value = typo.json().await.unwrap();
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hamc"),
        "{answer}"
    );
    let empty = post("/api/staff/companies", json!({"name": "  "}))
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);
    let ttl = post(
        "/api/staff/companies",
        json!({"name": "Acme", "link_ttl_secs": 5}),
    )
    .await
    .unwrap();
    assert_eq!(ttl.status(), 400);
    let role = post("/api/staff/accounts", json!({"name": "x", "role": "root"}))
        .await
        .unwrap();
    assert_eq!(role.status(), 400);
    let group = post(
        "/api/staff/accounts",
        json!({"name": "x", "role": "operator", "groups": [""]}),
    )
    .await
    .unwrap();
    assert_eq!(group.status(), 400);
    assert!(
        ts.admin().companies().await.unwrap().is_empty(),
        "nothing was stored"
    );
    assert_eq!(ts.admin().staff_accounts().await.unwrap().len(), 1);
    ts.stop().await;
}
