//! The real `kyc-server` binary, as the README runs it: first start,
//! printed lines, the admin token file, settings, and a graceful stop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn server(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kyc-server"));
    command
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("KYC_BIND")
        .env("RUST_LOG", "warn");
    command
}

/// Reads the banner the server prints until its "try:" line.
fn banner(child: &mut Child) -> Vec<String> {
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("try:");
        lines.push(line);
        if done {
            break;
        }
    }
    lines
}

fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "kyc-server did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn first_start_prints_the_url_and_writes_a_private_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = server(dir.path()).stdout(Stdio::piped()).spawn().unwrap();
    let lines = banner(&mut child);
    let url = lines[0]
        .strip_prefix("kyc-server listening on http://")
        .expect("first line names the URL");
    assert!(
        lines[1].starts_with("first start: admin token written to "),
        "{lines:?}"
    );
    let token_path = dir.path().join("admin.token");
    assert!(lines[1].ends_with(&token_path.display().to_string()));
    assert!(
        lines[2].contains("curl -H \"Authorization: Bearer $(cat"),
        "{lines:?}"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["admin.token", "master.key"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file} must be private");
        }
    }
    let token = std::fs::read_to_string(&token_path).unwrap();
    assert!(token.trim().starts_with("kyc_staff_"));
    let health = get(url, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("sqlite ok"));

    assert!(terminate(&mut child).success(), "SIGTERM is a clean stop");

    // A second start keeps the admin and does not write a new token.
    let mut again = server(dir.path()).stdout(Stdio::piped()).spawn().unwrap();
    let lines = banner(&mut again);
    assert!(
        !lines.iter().any(|l| l.starts_with("first start")),
        "{lines:?}"
    );
    assert_eq!(std::fs::read_to_string(&token_path).unwrap(), token);
    assert!(terminate(&mut again).success());
}

#[test]
fn config_is_printed_with_secrets_masked_and_bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = server(dir.path())
        .arg("config")
        .env("KYC_MASTER_KEY", "00".repeat(32))
        .env("DATABASE_URL", "postgres://kyc:hunter2@db.internal/kyc")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("link_ttl_secs = 900"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains(&"00".repeat(32)),
        "{text}"
    );
    assert!(text.contains("postgres://kyc:********@db.internal/kyc"));

    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[sessions]\nlink_ttl_secs = \"long\"\n").unwrap();
    let output = server(dir.path())
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("link_ttl_secs"));

    let output = server(dir.path())
        .env("DATABASE_URL", "mysql://x")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("postgres://"));
}
