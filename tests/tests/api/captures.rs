//! Captures and their scoring: uploads are checked at the edge, a submitted
//! step is scored off the request path by the worker pool and its result
//! lands in the session, and a job a stopped server left behind is resumed.

use std::time::Duration;

use kyc_core::flow::{StepProgress, StepState};
use kyc_core::store::{JobRecord, StepRecorded};
use kyc_tests::{TestServer, http};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::begin;

/// A session with the given steps (legacy steps skipped), started.
async fn started_session(ts: &TestServer, steps: Value) -> String {
    let key = ts.company(false).await.company_key.unwrap();
    let (status, begun) = begin(
        ts,
        &json!({"company_key": key, "flags": {"skip_face": true, "skip_document": true}, "steps": steps}),
    )
    .await;
    assert_eq!(status, 200, "{begun}");
    let token = begun["session_token"].as_str().unwrap().to_owned();
    let started = http()
        .post(format!("{}/api/widget/session/start", ts.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    token
}

/// The stored row of the session `token` opens.
async fn session_record(ts: &TestServer, token: &str) -> kyc_core::store::SessionRecord {
    ts.server
        .state
        .store
        .session_by_token_hash(&kyc_core::auth::token_hash(token))
        .await
        .unwrap()
        .unwrap()
}

async fn upload(ts: &TestServer, token: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let response = http()
        .post(format!("{}/api/widget/steps/{path}", ts.url))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn submit(ts: &TestServer, token: &str, key: &str) -> (u16, Value, Option<String>) {
    let response = http()
        .post(format!("{}/api/widget/steps/{key}/submit", ts.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), retry)
}

async fn widget_session(ts: &TestServer, token: &str) -> Value {
    http()
        .get(format!("{}/api/widget/session", ts.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The step's entry of the session's flow once it has left processing.
async fn scored_step(ts: &TestServer, token: &str, key: &str) -> Value {
    for _ in 0..600 {
        let session = widget_session(ts, token).await;
        let flow = session["flow"].as_array().cloned().unwrap_or_default();
        if session["error"]["code"] == "session_completed" {
            return Value::Null;
        }
        let step = flow.into_iter().find(|s| s["key"] == key).unwrap();
        if step["state"] != "in_progress" {
            return step;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("step {key} was never scored");
}

/// A PDF of `pages` pages with a correct cross-reference table.
fn pdf(pages: u32) -> Vec<u8> {
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", i + 3)).collect();
    let mut objects = vec![
        (1, "<< /Type /Catalog /Pages 2 0 R >>".to_owned()),
        (
            2,
            format!(
                "<< /Type /Pages /Kids [{}] /Count {pages} >>",
                kids.join(" ")
            ),
        ),
    ];
    for i in 0..pages {
        objects.push((i + 3, "<< /Type /Page /Parent 2 0 R >>".to_owned()));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (number, body) in &objects {
        offsets.push(out.len());
        out.extend_from_slice(format!("{number} 0 obj\n{body}\nendobj\n").as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A small PNG: a grey gradient with a sharp bar, so it is neither dark nor flat.
fn png() -> Vec<u8> {
    let image = image::RgbImage::from_fn(800, 600, |x, y| {
        let bar = (x / 40) % 2 == 0;
        let v = if bar { 200 } else { 60 } as u8;
        image::Rgb([v, v.saturating_add((y / 10) as u8), v])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn no_models(config: &mut kyc_server::config::Config) {
    // An empty directory: the model files are missing.
    let dir = std::env::temp_dir().join(format!("kyc-no-models-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    config.verification.model_dir = dir;
    config.verification.max_capture_bytes = 64 * 1024;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_are_checked_at_the_edge() {
    let ts = TestServer::start_with(no_models).await;
    let key = ts.company(false).await.company_key.unwrap();
    let (_, begun) = begin(
        &ts,
        &json!({"company_key": key, "flags": {"skip_face": true}, "steps": [
            {"type": "user-questionnaire", "key": "form", "questions": [{"type": "string", "key": "q", "title": "Q"}]}
        ]}),
    )
    .await;
    let token = begun["session_token"].as_str().unwrap().to_owned();
    let doc = "identity-document/captures";

    // Not started yet.
    let (status, answer) = upload(&ts, &token, &format!("{doc}?kind=front"), png()).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("start")
    );
    http()
        .post(format!("{}/api/widget/session/start", ts.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    let (status, answer) = upload(&ts, &token, doc, png()).await;
    assert_eq!(
        (status, crate::problem_paths(&answer)),
        (400, vec!["kind".to_owned()])
    );
    let (status, answer) = upload(&ts, &token, &format!("{doc}?kind=selfie"), png()).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("front, back")
    );
    let (status, answer) = upload(&ts, &token, &format!("{doc}?kind=front"), Vec::new()).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("empty_capture"))
    );
    let (status, answer) = upload(
        &ts,
        &token,
        &format!("{doc}?kind=front"),
        b"GIF89a not ours".to_vec(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (status, _) = upload(&ts, &token, &format!("{doc}?kind=front"), pdf(1)).await;
    assert_eq!(status, 415, "a document side must be a photo");
    let mut huge = png();
    huge.resize(65 * 1024, 0);
    let (status, answer) = upload(&ts, &token, &format!("{doc}?kind=front"), huge).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let (status, _) = upload(&ts, &token, "nope/captures?kind=front", png()).await;
    assert_eq!(status, 404);
    let (status, answer) = upload(&ts, &token, "form/captures?kind=file", png()).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("step_takes_no_captures"))
    );

    // Nothing to submit yet.
    let (status, answer, _) = submit(&ts, &token, "identity-document").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("captures_missing"))
    );

    // A good upload is stored byte for byte under the data directory.
    let bytes = png();
    let (status, stored) = upload(&ts, &token, &format!("{doc}?kind=front"), bytes.clone()).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["media_type"], "image/png");
    assert_eq!(stored["sha256"], hex::encode(Sha256::digest(&bytes)));
    let id = stored["id"].as_str().unwrap();
    let session_id = session_record(&ts, &token).await.id;
    let blob = ts
        .data_dir
        .path()
        .join(format!("blobs/sessions/{session_id}/{id}.png"));
    assert_eq!(std::fs::read(blob).unwrap(), bytes);

    // The models are missing: the submission says so and which command
    // installs them, and the capture stays, waiting.
    let (status, answer, _) = submit(&ts, &token, "identity-document").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (503, Some("models_missing")),
        "{answer}"
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cargo xtask models")
    );
    let waiting = ts
        .server
        .state
        .store
        .waiting_captures(&session_id, "identity-document")
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_general_document_is_scored_off_the_request_path_and_completes_the_session() {
    let ts = TestServer::start_with(no_models).await;
    let token = started_session(&ts, json!([{"type": "general-document", "key": "proof"}])).await;
    let (status, answer) = upload(&ts, &token, "proof/captures?kind=file", pdf(2)).await;
    assert_eq!(
        (status, answer["media_type"].as_str()),
        (201, Some("application/pdf"))
    );
    let (status, _) = upload(&ts, &token, "proof/captures?kind=file", png()).await;
    assert_eq!(status, 201);

    let (status, answer, _) = submit(&ts, &token, "proof").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["captures"], 2);
    assert_eq!(answer["attempt"], 1);

    // The last step scored completes the session; the result keeps every check.
    assert_eq!(scored_step(&ts, &token, "proof").await, Value::Null);
    let record = session_record(&ts, &token).await;
    assert_eq!(record.status, "completed");
    let progress = record.progress().unwrap();
    let proof = &progress["proof"];
    assert_eq!(proof.state, StepState::Completed);
    let result = proof.result.as_ref().unwrap();
    assert_eq!(result["status"], "scored");
    assert_eq!(result["verdict"], "approved", "{result}");
    let checks = result["checks"].as_array().unwrap();
    let pages = checks
        .iter()
        .find(|c| c["name"] == "file_1.pdf_pages")
        .unwrap();
    assert_eq!(pages["score"], 2.0);
    assert!(
        checks.iter().any(|c| c["name"] == "image_1.sharpness"),
        "{result}"
    );

    // Done is done.
    let (status, _, _) = submit(&ts, &token, "proof").await;
    assert_eq!(status, 410, "the session is completed");

    // Staff see the captures and their bytes, and each look is audited.
    let listed: Value = http()
        .get(format!(
            "{}/api/staff/sessions/{}/captures",
            ts.url, record.id
        ))
        .bearer_auth(&ts.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let captures = listed["captures"].as_array().unwrap();
    assert_eq!(captures.len(), 2, "{listed}");
    assert_eq!(captures[0]["media_type"], "application/pdf");
    let bytes = http()
        .get(format!(
            "{}/api/staff/sessions/{}/captures/{}",
            ts.url,
            record.id,
            captures[0]["id"].as_str().unwrap()
        ))
        .bearer_auth(&ts.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(bytes.headers()["content-type"], "application/pdf");
    assert_eq!(bytes.bytes().await.unwrap().to_vec(), pdf(2));
    let missing = http()
        .get(format!(
            "{}/api/staff/sessions/{}/captures/nope",
            ts.url, record.id
        ))
        .bearer_auth(&ts.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let audit: Value = http()
        .get(format!("{}/api/staff/audit?action=capture.view", ts.url))
        .bearer_auth(&ts.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_left_unfinished_is_resumed_and_finishes_once() {
    let ts = TestServer::start_with(no_models).await;
    let token = started_session(
        &ts,
        json!([{"type": "general-document", "key": "proof"}, {"type": "general-document", "key": "more"}]),
    )
    .await;
    let (status, _) = upload(&ts, &token, "proof/captures?kind=file", pdf(3)).await;
    assert_eq!(status, 201);
    let store = ts.server.state.store.clone();
    let record = session_record(&ts, &token).await;

    // As a server that stopped right after accepting the submission leaves it.
    let now = ts.server.state.clock.now();
    let job = JobRecord {
        id: uuid::Uuid::now_v7().to_string(),
        session_id: record.id.clone(),
        step_key: "proof".into(),
        attempt: 1,
        state: "queued".into(),
        created_at: now.0,
        finished_at: None,
    };
    let processing = StepProgress {
        state: StepState::InProgress,
        result: Some(json!({"status": "processing", "attempt": 1})),
        updated_at: Some(now),
    };
    assert_eq!(
        store.submit_step(&job, processing, now).await.unwrap(),
        StepRecorded::Recorded { completed: false }
    );
    assert_eq!(store.unfinished_jobs().await.unwrap().len(), 1);
    // While it is processing, no new capture or submission is taken.
    let (status, _) = upload(&ts, &token, "proof/captures?kind=file", pdf(1)).await;
    assert_eq!(status, 409);

    assert_eq!(ts.server.state.verifier.resume().await.unwrap(), 1);
    let step = scored_step(&ts, &token, "proof").await;
    assert_eq!(step["state"], "completed", "{step}");
    assert!(store.unfinished_jobs().await.unwrap().is_empty());
    // A second server resuming the same job finds it done and changes nothing.
    let again = store
        .finish_job(
            &job.id,
            StepProgress {
                state: StepState::Failed,
                result: None,
                updated_at: None,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(again, StepRecorded::AlreadyDone);
    let step = scored_step(&ts, &token, "proof").await;
    assert_eq!(step["state"], "completed");
    assert_eq!(
        store.job_captures(&job.id).await.unwrap().len(),
        1,
        "the job took the waiting capture"
    );
    ts.stop().await;
}

fn skimage_photo(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/media-cache/scikit-image/files/skimage/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|_| {
        panic!(
            "{} missing: run `cargo xtask eval faces` once to fetch the test photos",
            path.display()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cargo xtask models"]
async fn real_photos_are_scored_by_the_models_and_faces_are_matched_across_steps() {
    let ts = TestServer::start().await;
    let token = started_session(
        &ts,
        json!([
            {"type": "identity-document", "key": "doc"},
            {"type": "liveness", "key": "face", "flags": {"allow_face_upload": true}}
        ]),
    )
    .await;
    // A portrait photo is no identity document: no MRZ, which a retake may fix.
    let astronaut = skimage_photo("astronaut.png");
    let (status, _) = upload(&ts, &token, "doc/captures?kind=front", astronaut.clone()).await;
    assert_eq!(status, 201);
    let (status, answer, _) = submit(&ts, &token, "doc").await;
    assert_eq!(status, 202, "{answer}");
    let step = scored_step(&ts, &token, "doc").await;
    assert_eq!(step["state"], "failed", "{step}");
    // The end user learns what to fix, never the scores.
    assert_eq!(step["result"]["retry"], true);
    assert!(
        step["result"]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("mrz_not_found"))
    );
    assert!(step["result"].get("checks").is_none(), "{step}");

    // The selfie is matched against the portrait of the document's front.
    let (status, _) = upload(&ts, &token, "face/captures?kind=selfie", astronaut).await;
    assert_eq!(status, 201);
    let (status, answer, _) = submit(&ts, &token, "face").await;
    assert_eq!(status, 202, "{answer}");
    scored_step(&ts, &token, "face").await;
    let record = session_record(&ts, &token).await;
    let progress = record.progress().unwrap();
    let result = progress["face"].result.clone().unwrap();
    let checks = result["checks"].as_array().unwrap();
    let matched = checks
        .iter()
        .find(|c| c["name"].as_str().unwrap().contains("face_match"))
        .unwrap_or_else(|| panic!("no face match in {result}"));
    assert_eq!(matched["passed"], true, "{result}");
    assert!(result["face_similarity"].as_f64().unwrap() > 0.9);
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_liveness_challenges_are_drawn_by_the_server_and_bind_the_frames() {
    let ts = TestServer::start_with(no_models).await;
    let token = started_session(
        &ts,
        json!([
            {"type": "liveness", "key": "active", "flags": {"liveness": true}},
            {"type": "liveness", "key": "passive"}
        ]),
    )
    .await;
    let challenges = |key: &'static str| {
        let ts = &ts;
        let token = token.clone();
        async move {
            let response = http()
                .post(format!("{}/api/widget/steps/{key}/challenges", ts.url))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    // Frames for a challenge before any was asked.
    let (status, _) = upload(&ts, &token, "active/captures?kind=frame&challenge=0", png()).await;
    assert_eq!(status, 409);

    let (status, first) = challenges("active").await;
    assert_eq!(status, 200, "{first}");
    let list = first["challenges"].as_array().unwrap().clone();
    assert_eq!(list.len(), 3);
    let mut distinct = list.clone();
    distinct.sort_by_key(|v| v.to_string());
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{list:?}");
    for c in &list {
        assert!(["turn_left", "turn_right", "look_up", "look_down"].contains(&c.as_str().unwrap()));
    }
    // Asking again in the same attempt gives the same moves.
    let (_, again) = challenges("active").await;
    assert_eq!(again["challenges"], first["challenges"]);
    // A passive step has none.
    let (status, answer) = challenges("passive").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("not_active_liveness"))
    );

    let (status, answer) =
        upload(&ts, &token, "active/captures?kind=frame&challenge=3", png()).await;
    assert_eq!(
        (status, crate::problem_paths(&answer)),
        (400, vec!["challenge".to_owned()])
    );
    let (status, _) = upload(&ts, &token, "active/captures?kind=frame&challenge=x", png()).await;
    assert_eq!(status, 400);
    let (status, _) = upload(
        &ts,
        &token,
        "passive/captures?kind=frame&challenge=0",
        png(),
    )
    .await;
    assert_eq!(status, 400, "a passive frame answers no challenge");
    let (status, _) = upload(&ts, &token, "active/captures?kind=selfie", png()).await;
    assert_eq!(status, 400, "active liveness takes no uploaded selfie");

    // Submission names what is still missing, challenge by challenge.
    let (status, answer, _) = submit(&ts, &token, "active").await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("straight"),
        "{answer}"
    );
    assert_eq!(
        upload(&ts, &token, "active/captures?kind=frame", png())
            .await
            .0,
        201
    );
    let (_, answer, _) = submit(&ts, &token, "active").await;
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("challenge 0") && message.contains(list[0].as_str().unwrap()),
        "{message}"
    );
    for i in 0..3 {
        for _ in 0..2 {
            let path = format!("active/captures?kind=frame&challenge={i}");
            assert_eq!(upload(&ts, &token, &path, png()).await.0, 201);
        }
    }
    // Complete, but this server has no models.
    let (status, answer, _) = submit(&ts, &token, "active").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (503, Some("models_missing"))
    );
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cargo xtask models"]
async fn a_still_photo_held_up_fails_active_liveness() {
    let ts = TestServer::start().await;
    let token = started_session(
        &ts,
        json!([{"type": "liveness", "key": "active", "flags": {"liveness": true}}]),
    )
    .await;
    let response = http()
        .post(format!("{}/api/widget/steps/active/challenges", ts.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The same still photo for every frame: a printed photo held up.
    let astronaut = skimage_photo("astronaut.png");
    assert_eq!(
        upload(&ts, &token, "active/captures?kind=frame", astronaut.clone())
            .await
            .0,
        201
    );
    for i in 0..3 {
        for _ in 0..2 {
            let path = format!("active/captures?kind=frame&challenge={i}");
            assert_eq!(upload(&ts, &token, &path, astronaut.clone()).await.0, 201);
        }
    }
    let (status, answer, _) = submit(&ts, &token, "active").await;
    assert_eq!(status, 202, "{answer}");
    scored_step(&ts, &token, "active").await;
    let record = session_record(&ts, &token).await;
    let result = record.progress().unwrap()["active"].result.clone().unwrap();
    assert_eq!(result["verdict"], "declined", "{result}");
    assert!(
        result["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("challenge_failed")),
        "{result}"
    );
    ts.stop().await;
}

/// `count` frames of one photo, each a crop a few pixels further along: a
/// head swaying slightly in front of the camera (`step` 0: a still photo).
fn swaying_frames(photo: &[u8], count: u32, step: u32) -> Vec<Vec<u8>> {
    let image = image::load_from_memory(photo).unwrap().to_rgb8();
    let size = image.width().min(image.height()) - count * step - 1;
    (0..count)
        .map(|i| {
            let frame =
                image::imageops::crop_imm(&image, i * step, i * step / 2, size, size).to_image();
            // A webcam's 720 lines (the photo itself is smaller).
            let frame =
                image::imageops::resize(&frame, 720, 720, image::imageops::FilterType::Triangle);
            let mut out = std::io::Cursor::new(Vec::new());
            frame.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
            out.into_inner()
        })
        .collect()
}

async fn scored_result(ts: &TestServer, token: &str, key: &str) -> Value {
    scored_step(ts, token, key).await;
    let record = session_record(ts, token).await;
    record.progress().unwrap()[key].result.clone().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cargo xtask models"]
async fn passive_liveness_takes_a_live_capture_and_declines_a_still_one() {
    let ts = TestServer::start().await;
    let token = started_session(
        &ts,
        json!([{"type": "liveness", "key": "live"}, {"type": "liveness", "key": "still"}]),
    )
    .await;
    let astronaut = skimage_photo("astronaut.png");
    for (key, step) in [("live", 6), ("still", 0)] {
        for frame in swaying_frames(&astronaut, 8, step) {
            let path = format!("{key}/captures?kind=frame");
            assert_eq!(upload(&ts, &token, &path, frame).await.0, 201);
        }
        let (status, answer, _) = submit(&ts, &token, key).await;
        assert_eq!(status, 202, "{answer}");
    }
    let live = scored_result(&ts, &token, "live").await;
    assert_eq!(live["verdict"], "approved", "{live}");
    let names: Vec<&str> = live["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for name in [
        "liveness_faces",
        "liveness_identity",
        "liveness_motion",
        "liveness_spoof",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let still = scored_result(&ts, &token, "still").await;
    assert_eq!(still["verdict"], "declined", "{still}");
    assert!(
        still["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("spoof_suspected"))
    );
    ts.stop().await;
}
