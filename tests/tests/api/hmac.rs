//! HMAC-signed integrator requests: `X-Signature: t=<unix>,v1=<hex>` over
//! "<t>." + the raw body (or the raw query string).

use hmac::{Hmac, Mac};
use kyc_tests::{TestServer, http};
use serde_json::{Value, json};
use sha2::Sha256;

fn signature(secret: &str, t: i64, signed: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{signed}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn post_json(ts: &TestServer, body: &str, header: Option<String>) -> (u16, Value) {
    let mut request = http()
        .post(format!("{}/begin/", ts.url))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(header) = header {
        request = request.header("X-Signature", header);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn signed_requests_pass_and_bad_signatures_are_refused() {
    let ts = TestServer::start().await;
    let company = ts.company(true).await;
    let key = company.company_key.unwrap();
    let secret = company.secret_key.expect("an hmac company gets a secret");
    let body = json!({"company_key": key, "flags": {"skip_face": true}}).to_string();

    let (status, answer) = post_json(&ts, &body, None).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing")
    );

    let (status, answer) = post_json(&ts, &body, Some(signature(&secret, now(), &body))).await;
    assert_eq!(status, 200, "{answer}");

    let (status, _) = post_json(&ts, &body, Some(signature("kcs_wrong", now(), &body))).await;
    assert_eq!(status, 401);
    let tampered = body.replace("true", "false");
    let (status, _) = post_json(&ts, &tampered, Some(signature(&secret, now(), &body))).await;
    assert_eq!(status, 401, "a signature covers the exact body");
    let (status, answer) =
        post_json(&ts, &body, Some(signature(&secret, now() - 301, &body))).await;
    assert_eq!(status, 401);
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("300"),
        "{answer}"
    );
    let (status, _) = post_json(&ts, &body, Some(signature(&secret, now() - 290, &body))).await;
    assert_eq!(status, 200, "within the 300 s window");
    let (status, _) = post_json(&ts, &body, Some("v1=abc".into())).await;
    assert_eq!(status, 401);
    assert_eq!(
        ts.session_count().await,
        2,
        "only the well-signed requests stored sessions"
    );
    ts.stop().await;
}

#[tokio::test]
async fn query_string_and_form_requests_are_signed_too() {
    let ts = TestServer::start().await;
    let company = ts.company(true).await;
    let key = company.company_key.unwrap();
    let secret = company.secret_key.unwrap();
    let query = format!("company_key={key}&flags=%7B%22skip_face%22%3Atrue%7D");

    let signed = http()
        .post(format!("{}/begin/?{query}", ts.url))
        .header("X-Signature", signature(&secret, now(), &query))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    let begun: Value = signed.json().await.unwrap();

    let form = http()
        .post(format!("{}/begin/", ts.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Signature", signature(&secret, now(), &query))
        .body(query.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);

    // /result/ follows the same rule.
    let result_query = format!(
        "company_key={key}&session_token={}",
        begun["session_token"].as_str().unwrap()
    );
    let unsigned = http()
        .post(format!("{}/result/?{result_query}", ts.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let signed = http()
        .post(format!("{}/result/?{result_query}", ts.url))
        .header("X-Signature", signature(&secret, now(), &result_query))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    ts.stop().await;
}

#[tokio::test]
async fn clearing_and_setting_the_secret() {
    let ts = TestServer::start().await;
    let company = ts.company(false).await;
    let key = company.company_key.unwrap();
    let body = json!({"company_key": key}).to_string();
    assert_eq!(post_json(&ts, &body, None).await.0, 200);

    let admin = ts.admin();
    let with_secret = admin.set_company_secret(&company.company.id).await.unwrap();
    assert!(with_secret.company.hmac);
    let secret = with_secret.secret_key.unwrap();
    assert_eq!(post_json(&ts, &body, None).await.0, 401);
    assert_eq!(
        post_json(&ts, &body, Some(signature(&secret, now(), &body)))
            .await
            .0,
        200
    );

    let rotated = admin
        .set_company_secret(&company.company.id)
        .await
        .unwrap()
        .secret_key
        .unwrap();
    assert_eq!(
        post_json(&ts, &body, Some(signature(&secret, now(), &body)))
            .await
            .0,
        401
    );
    assert_eq!(
        post_json(&ts, &body, Some(signature(&rotated, now(), &body)))
            .await
            .0,
        200
    );

    admin
        .clear_company_secret(&company.company.id)
        .await
        .unwrap();
    assert_eq!(post_json(&ts, &body, None).await.0, 200);
    ts.stop().await;
}

/// The worked example in README.md, run as written (on a multi-thread
/// runtime: the blocking child process must not starve the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_openssl_example_works() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        panic!("openssl is needed for the README example (Debian package openssl)");
    }
    let ts = TestServer::start().await;
    let company = ts.company(true).await;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("```sh hmac-example")
        .expect("README has the hmac-example block");
    let rest = &readme[start..];
    let body_start = rest.find('\n').unwrap() + 1;
    let end = rest[body_start..].find("```").unwrap();
    let script = &rest[body_start..body_start + end];
    let output = std::process::Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .env("KYC_URL", &ts.url)
        .env("COMPANY_KEY", company.company_key.unwrap())
        .env("SECRET_KEY", company.secret_key.unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("not JSON: {stdout}"));
    assert!(
        answer["session_token"]
            .as_str()
            .unwrap()
            .starts_with("kst_"),
        "{answer}"
    );
    ts.stop().await;
}
