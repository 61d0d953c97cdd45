//! Every validation rule of `/begin/`: a bad request is answered 400 with the
//! path of each problem, and stores nothing.

use kyc_tests::TestServer;
use serde_json::{Value, json};

use crate::{begin, problem_paths};

/// Sends `body` (with a valid company key added) and checks the answer is a
/// 400 naming `path`, and that no session was stored.
async fn refused(ts: &TestServer, key: &str, mut body: Value, path: &str) -> Value {
    body["company_key"] = key.into();
    let before = ts.session_count().await;
    let (status, answer) = begin(ts, &body).await;
    assert_eq!(status, 400, "{path}: {answer}");
    assert_eq!(answer["error"]["code"], "invalid_request", "{answer}");
    let paths = problem_paths(&answer);
    assert!(
        paths.iter().any(|p| p == path),
        "expected a problem at {path}, got {paths:?}"
    );
    assert_eq!(
        ts.session_count().await,
        before,
        "a refused request stored a session"
    );
    answer
}

fn questionnaire(questions: Value) -> Value {
    json!({"flags": {"skip_face": true, "skip_document": true},
           "steps": [{"type": "user-questionnaire", "key": "form", "title": {"en": "Form"}, "questions": questions}]})
}

fn choice(kind: &str, key: &str) -> Value {
    json!({"type": kind, "key": key, "title": {"en": "Pick"},
           "options": [{"key": "a", "title": {"en": "A"}}, {"key": "b", "title": {"en": "B"}}]})
}

#[tokio::test]
async fn unknown_step_type() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let answer = refused(
        &ts,
        &key,
        json!({"steps": [{"type": "retina-scan"}]}),
        "steps[0].type",
    )
    .await;
    assert!(answer.to_string().contains("retina-scan"));
    refused(&ts, &key, json!({"steps": [{"key": "x"}]}), "steps[0].type").await;
    ts.stop().await;
}

#[tokio::test]
async fn duplicate_step_keys_including_default_keys_and_video_call_sub_steps() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let body = json!({"steps": [{"type": "email", "key": "contact"}, {"type": "phone-number", "key": "contact"}]});
    refused(&ts, &key, body, "steps[1].key").await;
    let body = json!({"flags": {"skip_face": true}, "steps": [{"type": "liveness"}, {"type": "liveness"}]});
    refused(&ts, &key, body, "steps[1].key").await;
    let body = json!({"steps": [{"type": "email", "key": "e"},
        {"type": "video-call", "steps": [{"type": "phone-number", "key": "e"}]}]});
    refused(&ts, &key, body, "steps[1].steps[0].key").await;
    ts.stop().await;
}

#[tokio::test]
async fn duplicate_question_keys() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let body = questionnaire(json!([
        {"type": "string", "key": "q", "title": "One"},
        {"type": "string", "key": "q", "title": "Two"}
    ]));
    refused(&ts, &key, body, "steps[0].questions[1].key").await;
    ts.stop().await;
}

#[tokio::test]
async fn duplicate_option_keys() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let body = questionnaire(json!([{"type": "options", "key": "q", "title": "Pick",
        "options": [{"key": "a", "title": "A"}, {"key": "a", "title": "Again"}]}]));
    refused(&ts, &key, body, "steps[0].questions[0].options[1].key").await;
    ts.stop().await;
}

#[tokio::test]
async fn wrong_json_types_of_known_fields() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let cases = [
        (json!({"flags": {"skip_face": "yes"}}), "flags.skip_face"),
        (json!({"flags": ["skip_face"]}), "flags"),
        (json!({"flags": {"return_url": 5}}), "flags.return_url"),
        (json!({"steps": {"type": "email"}}), "steps"),
        (json!({"steps": ["email"]}), "steps[0]"),
        (
            json!({"steps": [{"type": "liveness", "flags": {"liveness": 1}}]}),
            "steps[0].flags.liveness",
        ),
        (
            json!({"steps": [{"type": "identity-document", "flags": {"document_countries": "USA"}}]}),
            "steps[0].flags.document_countries",
        ),
        (
            json!({"steps": [{"type": "video-call", "resetSteps": "true"}]}),
            "steps[0].resetSteps",
        ),
        (
            json!({"steps": [{"type": "email", "key": 7}]}),
            "steps[0].key",
        ),
        (json!({"name": 5}), "name"),
        (json!({"clientUserId": ["u"]}), "clientUserId"),
        (json!({"groupId": {}}), "groupId"),
        (
            json!({"scheduleStartTime": 1718868780}),
            "scheduleStartTime",
        ),
        (
            questionnaire(
                json!([{"type": "string", "key": "q", "title": "T", "mandatory": "true"}]),
            ),
            "steps[0].questions[0].mandatory",
        ),
        (
            questionnaire(json!([{"type": "string", "key": "q", "title": 3}])),
            "steps[0].questions[0].title",
        ),
        (
            questionnaire(json!({"type": "string"})),
            "steps[0].questions",
        ),
        (
            questionnaire(
                json!([{"type": "dropdown", "key": "q", "title": "T", "multiple": "no",
            "options": [{"key": "a", "title": "A"}]}]),
            ),
            "steps[0].questions[0].multiple",
        ),
    ];
    for (body, path) in cases {
        refused(&ts, &key, body, path).await;
    }
    ts.stop().await;
}

#[tokio::test]
async fn files_max_count_outside_one_to_ten() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    for count in [json!(0), json!(11), json!(2.5), json!(-1), json!("3")] {
        let body = questionnaire(
            json!([{"type": "file", "key": "f", "title": "Upload", "filesMaxCount": count}]),
        );
        refused(&ts, &key, body, "steps[0].questions[0].filesMaxCount").await;
    }
    let body = questionnaire(
        json!([{"type": "attachment", "key": "f", "title": "T", "filesMaxCount": 12}]),
    );
    refused(&ts, &key, body, "steps[0].questions[0].filesMaxCount").await;
    ts.stop().await;
}

#[tokio::test]
async fn file_types_other_than_pdf_or_image() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let body = questionnaire(
        json!([{"type": "file", "key": "f", "title": "T", "fileTypes": ["pdf", "docx"]}]),
    );
    refused(&ts, &key, body, "steps[0].questions[0].fileTypes[1]").await;
    let body =
        questionnaire(json!([{"type": "attachment", "key": "f", "title": "T", "fileTypes": []}]));
    refused(&ts, &key, body, "steps[0].questions[0].fileTypes").await;
    ts.stop().await;
}

#[tokio::test]
async fn show_conditions_must_name_an_earlier_question() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let unknown = questionnaire(json!([
        {"type": "string", "key": "a", "title": "A"},
        {"type": "string", "key": "b", "title": "B", "showConditions": {"questionKey": "nope", "answer": "x"}}
    ]));
    let answer = refused(
        &ts,
        &key,
        unknown,
        "steps[0].questions[1].showConditions.questionKey",
    )
    .await;
    assert!(answer.to_string().contains("nope"));
    let later = questionnaire(json!([
        {"type": "string", "key": "a", "title": "A", "showConditions": {"questionKey": "b", "answer": "x"}},
        {"type": "string", "key": "b", "title": "B"}
    ]));
    let answer = refused(
        &ts,
        &key,
        later,
        "steps[0].questions[0].showConditions.questionKey",
    )
    .await;
    assert!(
        answer.to_string().contains("does not come before"),
        "{answer}"
    );
    let own = questionnaire(json!([
        {"type": "string", "key": "a", "title": "A", "showConditions": {"questionKey": "a", "answer": "x"}}
    ]));
    refused(
        &ts,
        &key,
        own,
        "steps[0].questions[0].showConditions.questionKey",
    )
    .await;
    let bad_option = questionnaire(json!([
        choice("options", "a"),
        {"type": "string", "key": "b", "title": "B", "showConditions": {"questionKey": "a", "answer": "c"}}
    ]));
    refused(
        &ts,
        &key,
        bad_option,
        "steps[0].questions[1].showConditions.answer",
    )
    .await;
    ts.stop().await;
}

#[tokio::test]
async fn preset_answers_must_fit_their_question() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let mut unknown_option = choice("options", "q");
    unknown_option["answer"] = json!("z");
    let mut options_array = choice("options", "q");
    options_array["answer"] = json!(["a"]);
    let mut multi_string = choice("multiple-choice", "q");
    multi_string["answer"] = json!("a");
    let mut multi_unknown = choice("multiple-choice", "q");
    multi_unknown["answer"] = json!(["a", "z"]);
    let mut dropdown_single = choice("dropdown", "q");
    dropdown_single["answer"] = json!(["a", "b"]);
    let cases = [
        (unknown_option, "steps[0].questions[0].answer"),
        (options_array, "steps[0].questions[0].answer"),
        (multi_string, "steps[0].questions[0].answer"),
        (multi_unknown, "steps[0].questions[0].answer[1]"),
        (dropdown_single, "steps[0].questions[0].answer"),
        (
            json!({"type": "string", "key": "q", "title": "T", "answer": ["x"]}),
            "steps[0].questions[0].answer",
        ),
        (
            json!({"type": "file", "key": "q", "title": "T", "answer": "x.pdf"}),
            "steps[0].questions[0].answer",
        ),
        (
            json!({"type": "attachment", "key": "q", "title": "T", "answer": "file-1"}),
            "steps[0].questions[0].answer",
        ),
        (
            json!({"type": "attachment", "key": "q", "title": "T", "filesMaxCount": 1, "answer": ["f1", "f2"]}),
            "steps[0].questions[0].answer",
        ),
    ];
    for (question, path) in cases {
        refused(&ts, &key, questionnaire(json!([question])), path).await;
    }
    ts.stop().await;
}

#[tokio::test]
async fn choice_questions_need_options() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    for kind in ["options", "dropdown", "multiple-choice"] {
        let body = questionnaire(json!([{"type": kind, "key": "q", "title": "T"}]));
        refused(&ts, &key, body, "steps[0].questions[0].options").await;
        let body = questionnaire(json!([{"type": kind, "key": "q", "title": "T", "options": []}]));
        refused(&ts, &key, body, "steps[0].questions[0].options").await;
    }
    ts.stop().await;
}

#[tokio::test]
async fn schedule_times_must_be_iso_8601_and_ordered() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    refused(
        &ts,
        &key,
        json!({"scheduleStartTime": "20th of June"}),
        "scheduleStartTime",
    )
    .await;
    refused(
        &ts,
        &key,
        json!({"scheduleEndTime": "2099-02-30T10:00:00Z"}),
        "scheduleEndTime",
    )
    .await;
    refused(
        &ts,
        &key,
        json!({"scheduleStartTime": "2099-06-20T07:33:00"}),
        "scheduleStartTime",
    )
    .await;
    let body = json!({"scheduleStartTime": "2099-06-20T09:00:00.000Z", "scheduleEndTime": "2099-06-20T09:00:00.000Z"});
    refused(&ts, &key, body, "scheduleEndTime").await;
    let body = json!({"scheduleStartTime": "2099-06-20T09:00:00Z", "scheduleEndTime": "2099-06-20T08:00:00Z"});
    refused(&ts, &key, body, "scheduleEndTime").await;
    refused(
        &ts,
        &key,
        json!({"scheduleEndTime": "2001-01-01T00:00:00Z"}),
        "scheduleEndTime",
    )
    .await;
    ts.stop().await;
}

#[tokio::test]
async fn unsupported_language_codes() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    refused(
        &ts,
        &key,
        json!({"flags": {"language": "tlh"}}),
        "flags.language",
    )
    .await;
    let body = json!({"steps": [{"type": "language", "languages": ["en", "zz"]}]});
    refused(&ts, &key, body, "steps[0].languages[1]").await;
    let body = json!({"steps": [{"type": "email", "title": {"en": "Mail", "xx": "?"}}]});
    refused(&ts, &key, body, "steps[0].title.xx").await;
    let body = questionnaire(json!([{"type": "options", "key": "q", "title": "T",
        "options": [{"key": "a", "title": {"qq": "A"}}]}]));
    refused(&ts, &key, body, "steps[0].questions[0].options[0].title.qq").await;
    ts.stop().await;
}

#[tokio::test]
async fn video_call_cannot_contain_language_operator_questionnaire_or_video_call() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let operator_form = json!({"type": "operator-questionnaire", "key": "op", "title": "Op",
        "questions": [{"type": "string", "key": "q", "title": "Q"}]});
    for (inner, path) in [
        (json!({"type": "language"}), "steps[0].steps[0].type"),
        (operator_form, "steps[0].steps[0].type"),
        (
            json!({"type": "video-call", "key": "inner-call"}),
            "steps[0].steps[0].type",
        ),
    ] {
        let body = json!({"steps": [{"type": "video-call", "steps": [inner]}]});
        refused(&ts, &key, body, path).await;
    }
    // The same, given in the step's flags.
    let body =
        json!({"steps": [{"type": "video-call", "flags": {"steps": [{"type": "language"}]}}]});
    refused(&ts, &key, body, "steps[0].flags.steps[0].type").await;
    ts.stop().await;
}

#[tokio::test]
async fn other_rules_of_the_contract() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let cases = [
        (
            json!({"flags": {"return_url": "javascript:alert(1)"}}),
            "flags.return_url",
        ),
        (
            json!({"flags": {"switch_device_url": "not a url"}}),
            "flags.switch_device_url",
        ),
        (
            json!({"steps": [{"type": "identity-document", "flags": {"document_countries": ["USA", "XYZ"]}}]}),
            "steps[0].flags.document_countries[1]",
        ),
        (
            json!({"steps": [{"type": "identity-document", "flags": {"document_types": ["library_card"]}}]}),
            "steps[0].flags.document_types[0]",
        ),
        (
            json!({"steps": [{"type": "general-document", "flags": {"general_document_types": ["napkin"]}}]}),
            "steps[0].flags.general_document_types[0]",
        ),
        (
            json!({"steps": [{"type": "user-questionnaire", "title": "No key",
            "questions": [{"type": "string", "key": "q", "title": "Q"}]}]}),
            "steps[0].key",
        ),
        (
            json!({"steps": [{"type": "user-questionnaire", "key": "f", "questions": []}]}),
            "steps[0].questions",
        ),
        (
            json!({"steps": [{"type": "operator-questionnaire", "key": "f",
            "questions": [{"type": "attachment", "key": "a", "title": "A"}]}]}),
            "steps[0].questions[0].type",
        ),
        (
            questionnaire(
                json!([{"type": "string", "key": "q", "title": "T", "mandatory": true, "readOnly": true}]),
            ),
            "steps[0].questions[0].readOnly",
        ),
        (
            json!({"flags": {"skip_face": true, "skip_document": true}}),
            "steps",
        ),
        (
            json!({"flags": {"multiple_participants": true, "multiple_participans": false}}),
            "flags.multiple_participans",
        ),
        (json!({"name": "x".repeat(201)}), "name"),
    ];
    for (body, path) in cases {
        refused(&ts, &key, body, path).await;
    }
    ts.stop().await;
}

#[tokio::test]
async fn every_problem_is_reported_at_once() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let body = json!({
        "company_key": key,
        "flags": {"language": "zz", "skip_face": 1},
        "steps": [
            {"type": "nope"},
            {"type": "user-questionnaire", "key": "f", "questions": [
                {"type": "file", "key": "a", "title": "A", "filesMaxCount": 99},
                {"type": "options", "key": "a", "title": "B"}
            ]}
        ],
        "scheduleStartTime": "soon"
    });
    let (status, answer) = begin(&ts, &body).await;
    assert_eq!(status, 400);
    let mut paths = problem_paths(&answer);
    paths.sort();
    for expected in [
        "flags.language",
        "flags.skip_face",
        "scheduleStartTime",
        "steps[0].type",
        "steps[1].questions[0].filesMaxCount",
        "steps[1].questions[1].options",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "missing {expected} in {paths:?}"
        );
    }
    assert_eq!(ts.session_count().await, 0);
    ts.stop().await;
}

#[tokio::test]
async fn unknown_fields_are_warnings_and_both_spellings_of_multiple_participants_work() {
    let ts = TestServer::start().await;
    let key = ts.company(false).await.company_key.unwrap();
    let body = json!({
        "company_key": key,
        "flags": {"multiple_participans": true, "colour": "blue"},
        "steps": [{"type": "video-call", "multiple_participans": true, "extra": 1,
                   "steps": [{"type": "email", "flags": {"require_email": true, "wat": true}}]}],
        "shoeSize": 44
    });
    let (status, answer) = begin(&ts, &body).await;
    assert_eq!(status, 200, "{answer}");
    let warnings: Vec<&str> = answer["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["path"].as_str().unwrap())
        .collect();
    for expected in [
        "flags.colour",
        "steps[0].extra",
        "steps[0].steps[0].flags.wat",
        "shoeSize",
    ] {
        assert!(
            warnings.contains(&expected),
            "missing warning {expected}: {warnings:?}"
        );
    }
    let token = answer["session_token"].as_str().unwrap();
    let (_, result) = crate::result(&ts, &key, token).await;
    assert_eq!(result["flags"]["multiple_participants"], true);
    let call = result["flow"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "video-call")
        .unwrap();
    assert_eq!(call["config"]["multiple_participants"], true);
    assert_eq!(call["steps"][0]["config"]["flags"]["require_email"], true);
    ts.stop().await;
}
