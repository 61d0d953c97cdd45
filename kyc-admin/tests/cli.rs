//! The real `kyc-admin` binary against a real server. The tests run on a
//! multi-thread runtime: waiting for the child process blocks a thread, and
//! the in-process server needs another.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use kyc_tests::TestServer;
use serde_json::Value;

fn admin(ts: &TestServer, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kyc-admin"))
        .arg("--server")
        .arg(&ts.url)
        .arg("--token")
        .arg(&ts.admin_token)
        .args(args)
        .env_remove("KYC_TOKEN")
        .env_remove("KYC_SERVER")
        .output()
        .unwrap()
}

/// Runs with `--json` and parses the one JSON document printed.
fn json(ts: &TestServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = admin(ts, &all);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kyc-admin {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companies_sessions_and_audit_through_the_cli() {
    let ts = TestServer::start().await;
    let created = json(&ts, &["company", "create", "--name", "Acme Bank", "--hmac"]);
    let id = created["company"]["id"].as_str().unwrap().to_owned();
    let key = created["company_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("kck_"));
    assert!(created["secret_key"].as_str().unwrap().starts_with("kcs_"));
    assert_eq!(created["company"]["hmac"], true);

    let list = json(&ts, &["company", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(
        !list.to_string().contains(&key),
        "keys are shown once, never listed"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("begin.json");
    std::fs::write(
        &file,
        r#"{"flags":{"skip_face":true},"steps":[{"type":"email","flags":{"require_email_check":true}}],
           "name":"Walk-in customer","groupId":"tbilisi"}"#,
    )
    .unwrap();
    let begun = json(
        &ts,
        &[
            "session",
            "create",
            "--company-key",
            &key,
            "--file",
            file.to_str().unwrap(),
            "--link-expiry",
            "86400",
        ],
    );
    let token = begun["session_token"].as_str().unwrap().to_owned();

    let sessions = json(&ts, &["session", "list"]);
    assert_eq!(sessions["items"].as_array().unwrap().len(), 1);
    assert_eq!(sessions["items"][0]["name"], "Walk-in customer");
    let shown = json(&ts, &["session", "show", &token]);
    assert_eq!(shown["company_name"], "Acme Bank");
    assert_eq!(shown["status"], "created");
    let types: Vec<&str> = shown["flow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["identity-document", "email"]);
    let by_id = json(
        &ts,
        &["session", "show", shown["session_id"].as_str().unwrap()],
    );
    assert_eq!(by_id["session_id"], shown["session_id"]);

    let rotated = json(&ts, &["company", "rotate-key", &id]);
    assert_ne!(rotated["company_key"].as_str().unwrap(), key);
    let disabled = json(&ts, &["company", "disable", &id]);
    assert_eq!(disabled["disabled"], true);

    let staff = json(
        &ts,
        &[
            "staff", "create", "--name", "olga", "--role", "operator", "--group", "tbilisi",
        ],
    );
    assert!(staff["token"].as_str().unwrap().starts_with("kyc_staff_"));
    assert_eq!(staff["account"]["groups"][0], "tbilisi");

    let audit = json(&ts, &["audit", "list"]);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "company.create",
        "session.create",
        "session.view",
        "company.rotate_key",
        "company.disable",
        "staff.create",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }

    // Text output is for people: a table with the company in it.
    let text = admin(&ts, &["company", "list"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Acme Bank") && text.contains("NAME"),
        "{text}"
    );
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_go_to_stderr_with_a_non_zero_exit() {
    let ts = TestServer::start().await;
    let bad_token = std::process::Command::new(env!("CARGO_BIN_EXE_kyc-admin"))
        .args([
            "--server",
            &ts.url,
            "--token",
            "kyc_staff_wrong",
            "company",
            "list",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(!bad_token.status.success());
    assert!(bad_token.stdout.is_empty());
    assert!(String::from_utf8_lossy(&bad_token.stderr).contains("unauthorized"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("begin.json");
    std::fs::write(&file, r#"{"steps":[{"type":"user-questionnaire","key":"f","questions":[{"type":"file","key":"a","title":"A","filesMaxCount":0}]}]}"#).unwrap();
    let company = json(&ts, &["company", "create", "--name", "Acme"]);
    let key = company["company_key"].as_str().unwrap();
    let invalid = admin(
        &ts,
        &[
            "session",
            "create",
            "--company-key",
            key,
            "--file",
            file.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(!invalid.status.success());
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(
        stderr.contains("steps[0].questions[0].filesMaxCount"),
        "{stderr}"
    );

    let missing = admin(
        &ts,
        &[
            "session",
            "create",
            "--company-key",
            key,
            "--file",
            "/no/such/file.json",
        ],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/file.json"));

    let unreachable = std::process::Command::new(env!("CARGO_BIN_EXE_kyc-admin"))
        .args([
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "x",
            "company",
            "list",
        ])
        .output()
        .unwrap();
    assert!(!unreachable.status.success());
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach"));
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_read_from_the_data_directory() {
    let ts = TestServer::start().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kyc-admin"))
        .args([
            "--server",
            &ts.url,
            "--data-dir",
            ts.data_dir.path().to_str().unwrap(),
            "whoami",
            "--json",
        ])
        .env_remove("KYC_TOKEN")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let me: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(me["name"], "admin");
    ts.stop().await;
}
