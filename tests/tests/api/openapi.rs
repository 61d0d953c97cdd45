//! `/openapi.json` describes exactly the routes the server answers.

use std::collections::BTreeSet;

use kyc_tests::{TestServer, http};
use serde_json::Value;

/// Whether the server routes `method path` (any answer but "no such
/// endpoint" and "method not allowed" counts).
async fn routed(ts: &TestServer, method: &str, path: &str) -> bool {
    let url = format!("{}{}", ts.url, path.replace("{id}", "does-not-exist"));
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = http()
        .request(method, url)
        .bearer_auth(&ts.admin_token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let fallback = status == 404
        && body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("no such endpoint"));
    status != 405 && !fallback
}

#[tokio::test]
async fn document_and_routes_agree() {
    let ts = TestServer::start().await;
    let doc: Value = http()
        .get(format!("{}/openapi.json", ts.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let declared: BTreeSet<(String, String)> = kyc_server::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, declared, "openapi.json and ROUTES differ");

    for (method, path) in &declared {
        assert!(
            routed(&ts, method, path).await,
            "{method} {path} is documented but not served"
        );
    }
    // The probe can tell a missing route.
    assert!(!routed(&ts, "GET", "/api/staff/nothing-here").await);
    assert!(!routed(&ts, "DELETE", "/begin/").await);

    // Every $ref points at a schema that exists.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
    ts.stop().await;
}

#[tokio::test]
async fn result_matches_its_documented_schema() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let mut body = crate::encodings::full_request();
    body["company_key"] = key.clone().into();
    let (_, begun) = crate::begin(&ts, &body).await;
    let (_, result) = crate::result(&ts, &key, begun["session_token"].as_str().unwrap()).await;
    let doc: Value =
        serde_json::from_str(include_str!("../../../kyc-server/src/openapi.json")).unwrap();
    let schema = &doc["components"]["schemas"]["SessionResult"];
    for required in schema["required"].as_array().unwrap() {
        let name = required.as_str().unwrap();
        assert!(
            result.get(name).is_some(),
            "result lacks required field {name}"
        );
    }
    let documented: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let actual: BTreeSet<&str> = result
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        documented, actual,
        "undocumented or missing fields in /result/"
    );
    let step_schema = &doc["components"]["schemas"]["FlowStep"];
    for step in result["flow"].as_array().unwrap() {
        for required in step_schema["required"].as_array().unwrap() {
            assert!(step.get(required.as_str().unwrap()).is_some(), "{step}");
        }
        let state = step["state"].as_str().unwrap();
        assert!(
            step_schema["properties"]["state"]["enum"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == state)
        );
    }
    ts.stop().await;
}
