//! `/begin/` and `/result/` accept a query string, a form or a JSON body, and
//! the three give the same session.

use kyc_tests::{TestServer, http};
use serde_json::{Value, json};

use crate::result;

/// A request that uses every kind of step, question and parameter.
pub fn full_request() -> Value {
    json!({
        "flags": {
            "language": "en", "return_url": "https://example.com/done", "skip_desktop": true,
            "restrict_url_sharing": true, "switch_device_url": "https://example.com/switch",
            "requireHdMedia": true, "optional_continue_on_another_device": true,
            "skip_face": true, "skip_document": true
        },
        "steps": [
            {"type": "language", "languages": ["en"]},
            {"type": "identity-document", "title": {"en": "Your ID"}, "flags": {
                "allow_document_upload": true, "document_types": ["passport", "id_card"],
                "document_countries": ["USA", "DEU", "ITA"]}},
            {"type": "liveness", "flags": {"liveness": true}},
            {"type": "general-document", "flags": {"general_document_types": ["utility_bill"]}},
            {"type": "face-document", "flags": {"require_face_document": true}},
            {"type": "phone-number", "flags": {"require_phone_number_check": true}},
            {"type": "email", "flags": {"require_email": true}},
            {"type": "geolocation"},
            {"type": "user-questionnaire", "key": "profile",
             "title": {"en": "About you"}, "description": "A few questions",
             "successButtonTitle": {"en": "Send"},
             "questions": [
                {"type": "string", "key": "job", "title": {"en": "Occupation"}, "mandatory": true,
                 "answer": {"en": "Engineer"}},
                {"type": "options", "key": "pep", "title": "Politically exposed?",
                 "options": [{"key": "yes", "title": {"en": "Yes"}}, {"key": "no", "title": {"en": "No"}}],
                 "answer": "no"},
                {"type": "string", "key": "pep_role", "title": "Which office?",
                 "showConditions": {"questionKey": "pep", "answer": "yes"}},
                {"type": "multiple-choice", "key": "funds", "title": "Source of funds",
                 "options": [{"key": "salary", "title": "Salary"}, {"key": "savings", "title": "Savings"}],
                 "answer": ["salary"]},
                {"type": "dropdown", "key": "country", "title": "Residence", "multiple": true,
                 "options": [{"key": "ge", "title": "Georgia"}, {"key": "de", "title": "Germany"}]},
                {"type": "file", "key": "proof", "title": "Proof", "fileTypes": ["pdf"], "filesMaxCount": 3},
                {"type": "attachment", "key": "terms", "title": "Terms", "allowOperatorOverride": false,
                 "answer": ["file-terms-2024"]},
                {"type": "string", "key": "ref", "title": "Reference", "readOnly": true, "mandatory": true,
                 "answer": "REF-1"}
             ]},
            {"type": "video-call", "resetSteps": true, "hideCameraOption": true, "nameRequired": true,
             "multiple_participants": true,
             "steps": [{"type": "identity-document", "key": "call-document"},
                       {"type": "user-questionnaire", "key": "call-form",
                        "questions": [{"type": "string", "key": "q", "title": "Q"}]}]},
            {"type": "operator-questionnaire", "key": "operator-notes", "title": {"en": "Notes"},
             "questions": [{"type": "options", "key": "verdict", "title": "Verdict",
                            "options": [{"key": "ok", "title": "OK"}, {"key": "bad", "title": "Bad"}]},
                           {"type": "file", "key": "evidence", "title": "Evidence"}]}
        ],
        "name": "Anna Eriksson",
        "clientUserId": "user-42",
        "groupId": "tbilisi",
        "scheduleStartTime": "2099-06-20T07:33:00.000Z",
        "scheduleEndTime": "2099-06-20T09:00:00.000Z"
    })
}

/// The text form of a request: strings as they are, flags and steps as JSON text.
fn pairs(body: &Value) -> Vec<(String, String)> {
    body.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k.clone(), s.clone()),
            other => (k.clone(), other.to_string()),
        })
        .collect()
}

/// What must be equal between sessions made from the same request.
fn comparable(mut result: Value) -> Value {
    for field in ["session_id", "created_at", "expires_at"] {
        result.as_object_mut().unwrap().remove(field);
    }
    result
}

#[tokio::test]
async fn query_form_and_json_give_equal_sessions() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let mut body = full_request();
    body["company_key"] = key.clone().into();
    let client = http();

    let as_json = client
        .post(format!("{}/begin/", ts.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let as_form = client
        .post(format!("{}/begin/", ts.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(pairs(&body)).unwrap())
        .send()
        .await
        .unwrap();
    let query = serde_urlencoded::to_string(pairs(&body)).unwrap();
    let as_query = client
        .post(format!("{}/begin/?{query}", ts.url))
        .send()
        .await
        .unwrap();

    let mut results = Vec::new();
    for response in [as_json, as_form, as_query] {
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["warnings"], json!([]), "{answer}");
        let token = answer["session_token"].as_str().unwrap().to_owned();
        assert!(answer["session_url"].as_str().unwrap().ends_with(&token));
        let (status, result) = result(&ts, &key, &token).await;
        assert_eq!(status, 200, "{result}");
        results.push(comparable(result));
    }
    assert_eq!(results[0], results[1], "JSON and form sessions differ");
    assert_eq!(
        results[0], results[2],
        "JSON and query-string sessions differ"
    );

    let flow: Vec<&str> = results[0]["flow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        flow,
        [
            "language",
            "identity-document",
            "liveness",
            "select_general_document",
            "capture_face_document",
            "phone_number",
            "require_email",
            "require_geolocation",
            "profile",
            "video-call",
            "operator-notes"
        ]
    );
    let r = &results[0];
    assert_eq!(r["status"], "created");
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["name"], "Anna Eriksson");
    assert_eq!(r["clientUserId"], "user-42");
    assert_eq!(r["groupId"], "tbilisi");
    assert_eq!(r["scheduleStartTime"], "2099-06-20T07:33:00.000Z");
    assert_eq!(r["flags"]["requireHdMedia"], true);
    assert_eq!(
        r["flow"][7]["config"]["flags"]["require_geolocation"], true,
        "documented default"
    );
    let form = &r["flow"][8]["config"];
    assert_eq!(form["successButtonTitle"]["en"], "Send");
    assert_eq!(form["questions"][5]["filesMaxCount"], 3);
    assert_eq!(form["questions"][4]["answer"], json!([]));
    assert_eq!(
        form["questions"][6]["filesMaxCount"], 10,
        "documented default"
    );
    assert_eq!(
        form["questions"][6]["fileTypes"],
        json!(["pdf", "image"]),
        "documented default"
    );
    assert_eq!(
        form["questions"][6]["allowOperatorUpload"], true,
        "documented default"
    );
    assert_eq!(form["questions"][6]["allowOperatorOverride"], false);
    assert_eq!(r["flow"][9]["steps"][1]["key"], "call-form");
    ts.stop().await;
}

#[tokio::test]
async fn result_accepts_the_three_encodings_too() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let (_, begun) = crate::begin(&ts, &json!({"company_key": key})).await;
    let token = begun["session_token"].as_str().unwrap();
    let client = http();
    let query =
        serde_urlencoded::to_string([("company_key", key.as_str()), ("session_token", token)])
            .unwrap();
    let by_query = client
        .post(format!("{}/result/?{query}", ts.url))
        .send()
        .await
        .unwrap();
    let by_form = client
        .post(format!("{}/result/", ts.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query.clone())
        .send()
        .await
        .unwrap();
    let (status, by_json) = result(&ts, &key, token).await;
    assert_eq!(status, 200);
    let by_query: Value = by_query.json().await.unwrap();
    let by_form: Value = by_form.json().await.unwrap();
    assert_eq!(by_json, by_query);
    assert_eq!(by_json, by_form);
    let flow: Vec<&str> = by_json["flow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(flow, ["identity-document", "liveness"], "the legacy flow");
    ts.stop().await;
}

#[tokio::test]
async fn encoding_errors_are_clear() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let client = http();
    let url = format!("{}/begin/", ts.url);

    let broken = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"company_key\":")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
    let answer: Value = broken.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "invalid_json");

    let xml = client
        .post(&url)
        .header("content-type", "application/xml")
        .body("<begin/>")
        .send()
        .await
        .unwrap();
    assert_eq!(xml.status(), 415);

    let form = format!("company_key={key}&steps=%5B%7B%22type%22");
    let bad_steps = client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_steps.status(), 400);
    let answer: Value = bad_steps.json().await.unwrap();
    assert_eq!(crate::problem_paths(&answer), ["steps"]);

    let both = client
        .post(format!("{url}?company_key={key}"))
        .json(&json!({"company_key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 400);

    let missing = client.post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let unknown = client
        .post(&url)
        .json(&json!({"company_key": "kck_nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    assert_eq!(ts.session_count().await, 0);
    ts.stop().await;
}
