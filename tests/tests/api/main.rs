//! Integration tests: a real server per test, spoken to over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod captures;
mod encodings;
mod hmac;
mod lifecycle;
mod openapi;
mod progress;
mod staff;
mod validation;

use kyc_tests::{TestServer, http};
use serde_json::{Value, json};

/// POSTs `body` as JSON to `/begin/`; returns the status and the JSON answer.
pub async fn begin(ts: &TestServer, body: &Value) -> (u16, Value) {
    let response = http()
        .post(format!("{}/begin/", ts.url))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// POSTs to `/result/` as JSON.
pub async fn result(ts: &TestServer, company_key: &str, token: &str) -> (u16, Value) {
    let response = http()
        .post(format!("{}/result/", ts.url))
        .json(&json!({"company_key": company_key, "session_token": token}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The problem paths of an error answer.
pub fn problem_paths(answer: &Value) -> Vec<String> {
    answer["error"]["problems"]
        .as_array()
        .map(|problems| {
            problems
                .iter()
                .map(|p| p["path"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
