//! Recording step progress: concurrent writers lose nothing, the last
//! end-user step completes the session, closed sessions stay closed.

use kyc_core::flow::{StepProgress, StepState};
use kyc_core::store::StepRecorded;
use kyc_tests::TestServer;
use serde_json::json;

use crate::{begin, result};

fn done(score: f64) -> StepProgress {
    StepProgress {
        state: StepState::Completed,
        result: Some(json!({"score": score})),
        updated_at: None,
    }
}

async fn session_id(ts: &TestServer, key: &str, token: &str) -> String {
    result(ts, key, token).await.1["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_no_update_and_the_last_step_completes() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let steps: Vec<_> = (0..12)
        .map(|i| {
            json!({"type": "user-questionnaire", "key": format!("form{i}"),
        "questions": [{"type": "string", "key": "q", "title": "Q"}]})
        })
        .collect();
    let body = json!({"company_key": key, "flags": {"skip_face": true, "skip_document": true}, "steps": steps,
        "clientUserId": "racer"});
    let (_, begun) = begin(&ts, &body).await;
    let token = begun["session_token"].as_str().unwrap();
    let id = session_id(&ts, &key, token).await;
    let store = ts.server.state.store.clone();
    let now = ts.server.state.clock.now();

    // Eleven writers at once, each on its own step.
    let writers: Vec<_> = (0..11)
        .map(|i| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                store
                    .record_step(&id, &format!("form{i}"), done(i as f64), now)
                    .await
            })
        })
        .collect();
    for writer in writers {
        assert_eq!(
            writer.await.unwrap().unwrap(),
            StepRecorded::Recorded { completed: false }
        );
    }
    let (_, doc) = result(&ts, &key, token).await;
    assert_eq!(doc["status"], "created");
    for (i, step) in doc["flow"].as_array().unwrap().iter().enumerate().take(11) {
        assert_eq!(step["state"], "completed", "{step}");
        assert_eq!(step["result"]["score"], i as f64);
    }
    assert_eq!(doc["flow"][11]["state"], "pending");

    assert_eq!(
        store
            .record_step(&id, "form11", done(11.0), now)
            .await
            .unwrap(),
        StepRecorded::Recorded { completed: true }
    );
    let (_, doc) = result(&ts, &key, token).await;
    assert_eq!(doc["status"], "completed");
    assert!(doc["completed_at"].is_string());
    assert_eq!(
        store
            .record_step(&id, "form0", done(0.0), now)
            .await
            .unwrap(),
        StepRecorded::Closed(kyc_core::domain::SessionStatus::Completed),
        "a completed session does not change"
    );
    ts.stop().await;
}

#[tokio::test]
async fn unknown_steps_and_sessions_and_expired_ones_are_refused() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let (_, begun) = begin(&ts, &json!({"company_key": key})).await;
    let id = session_id(&ts, &key, begun["session_token"].as_str().unwrap()).await;
    let store = &ts.server.state.store;
    let now = ts.server.state.clock.now();
    assert_eq!(
        store
            .record_step(&id, "nope", done(1.0), now)
            .await
            .unwrap(),
        StepRecorded::NoSuchStep
    );
    assert_eq!(
        store
            .record_step("nope", "liveness", done(1.0), now)
            .await
            .unwrap(),
        StepRecorded::NoSuchSession
    );
    assert_eq!(
        store
            .record_step(&id, "liveness", done(1.0), now.plus_secs(901))
            .await
            .unwrap(),
        StepRecorded::Closed(kyc_core::domain::SessionStatus::Expired)
    );
    ts.stop().await;
}
