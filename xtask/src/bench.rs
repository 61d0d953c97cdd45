//! `cargo xtask bench begin`: how many sessions a release `kyc-server` on
//! SQLite creates per second, at what latency, and whether every one of them
//! can be read back afterwards.
//!
//! The server runs in its own process with a fresh data directory; the load
//! comes from this process over loopback, on one thread (so the server keeps
//! the machine's other core), with a fixed number of keep-alive connections.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::number_after;

struct Options {
    seconds: u64,
    connections: usize,
    json: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        seconds: 10,
        connections: 32,
        json: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--seconds" => options.seconds = number_after::<u64>(&mut args, "--seconds")?.max(1),
            "--connections" => {
                options.connections =
                    number_after::<u64>(&mut args, "--connections")?.clamp(1, 1024) as usize
            }
            other => bail!("unknown option {other:?}; use --seconds N --connections N --json"),
        }
    }
    Ok(options)
}

pub fn run(args: &[String]) -> Result<()> {
    let Some((what, rest)) = args.split_first() else {
        bail!("usage: cargo xtask bench begin [--seconds N] [--connections N] [--json]");
    };
    match what.as_str() {
        "begin" => begin(&parse(rest)?),
        "pipeline" => crate::bench_pipeline::run(rest),
        "ops" => crate::bench_ops::run(rest),
        other => bail!("unknown benchmark {other:?}; available: begin, pipeline, ops"),
    }
}

/// Kills the server when dropped, whatever happened.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn begin(options: &Options) -> Result<()> {
    eprintln!("building the release server…");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "kyc-server"])
        .current_dir(root())
        .status()
        .context("cargo build")?;
    if !status.success() {
        bail!("building kyc-server failed");
    }
    let data_dir = std::env::temp_dir().join(format!("kyc-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let server = ServerProcess(
        Command::new(root().join("target/release/kyc-server"))
            .args(["--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(&data_dir)
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .spawn()
            .context("starting kyc-server")?,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(load(&url, &data_dir, options));
    graceful_stop(server)?;
    let _ = std::fs::remove_dir_all(&data_dir);
    let report = report?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "POST /begin/ on SQLite, {} connections, {} s:\n  {:.0} sessions/s ({} created, {} failed)\n  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}\n  readable afterwards: {} of {}",
            report["connections"],
            report["seconds"],
            report["requests_per_second"],
            report["created"],
            report["failed"],
            report["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
            report["latency_ms"]["p90"].as_f64().unwrap_or(0.0),
            report["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
            report["latency_ms"]["max"].as_f64().unwrap_or(0.0),
            report["readable"],
            report["created"]
        );
    }
    if report["readable"] != report["created"] {
        bail!("not every created session could be read back");
    }
    Ok(())
}

/// Sends SIGTERM and waits, so the run also shows a clean shutdown.
fn graceful_stop(mut server: ServerProcess) -> Result<()> {
    let pid = server.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = server.0.try_wait()? {
            if !status.success() {
                bail!("kyc-server exited with {status} after SIGTERM");
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("kyc-server did not stop within 10 s of SIGTERM")
}

/// The request body: a realistic flow with a questionnaire.
fn body(company_key: &str) -> String {
    json!({
        "company_key": company_key,
        "flags": {"language": "en", "return_url": "https://example.com/done", "skip_face": true, "skip_document": true},
        "steps": [
            {"type": "identity-document", "flags": {"document_countries": ["USA", "DEU"], "allow_document_upload": true}},
            {"type": "liveness", "flags": {"liveness": true}},
            {"type": "user-questionnaire", "key": "profile", "title": {"en": "About you"},
             "questions": [
                {"type": "string", "key": "job", "title": {"en": "Occupation"}, "mandatory": true},
                {"type": "options", "key": "pep", "title": {"en": "Politically exposed?"},
                 "options": [{"key": "yes", "title": {"en": "Yes"}}, {"key": "no", "title": {"en": "No"}}]},
                {"type": "string", "key": "role", "title": {"en": "Which office?"},
                 "showConditions": {"questionKey": "pep", "answer": "yes"}}
             ]}
        ],
        "clientUserId": "bench-user",
        "name": "Benchmark"
    })
    .to_string()
}

async fn load(url: &str, data_dir: &Path, options: &Options) -> Result<Value> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.connections)
        .build()?;
    let started = Instant::now();
    loop {
        if http
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("kyc-server did not become healthy within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = std::fs::read_to_string(data_dir.join("admin.token"))?
        .trim()
        .to_owned();
    let company: Value = http
        .post(format!("{url}/api/staff/companies"))
        .bearer_auth(&token)
        .json(&json!({"name": "Bench"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let key = company["company_key"]
        .as_str()
        .context("no company_key")?
        .to_owned();
    let body = body(&key);

    // Warm up connections and caches for a second; not measured.
    let warm_until = Instant::now() + Duration::from_secs(1);
    run_workers(&http, url, &body, options.connections, warm_until).await;

    let began = Instant::now();
    let until = began + Duration::from_secs(options.seconds);
    let results = run_workers(&http, url, &body, options.connections, until).await;
    let elapsed = began.elapsed().as_secs_f64();

    let mut latencies: Vec<f64> = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    let mut failed = 0usize;
    for worker in results {
        latencies.extend(worker.latencies_ms);
        tokens.extend(worker.tokens);
        failed += worker.failed;
    }
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        latencies[rank.clamp(1, latencies.len()) - 1]
    };

    // Every created session must be readable.
    let readable = read_back(&http, url, &key, &tokens, options.connections).await;
    Ok(json!({
        "benchmark": "begin",
        "database": "sqlite",
        "connections": options.connections,
        "seconds": options.seconds,
        "created": tokens.len(),
        "failed": failed,
        "requests_per_second": tokens.len() as f64 / elapsed,
        "latency_ms": {
            "p50": percentile(50.0), "p90": percentile(90.0), "p99": percentile(99.0),
            "max": latencies.last().copied().unwrap_or(0.0)
        },
        "readable": readable,
    }))
}

#[derive(Default)]
struct WorkerResult {
    latencies_ms: Vec<f64>,
    tokens: Vec<String>,
    failed: usize,
}

async fn run_workers(
    http: &reqwest::Client,
    url: &str,
    body: &str,
    connections: usize,
    until: Instant,
) -> Vec<WorkerResult> {
    let workers = (0..connections).map(|_| async move {
        let mut result = WorkerResult::default();
        while Instant::now() < until {
            let sent = Instant::now();
            let response = http
                .post(format!("{url}/begin/"))
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
                .await;
            let answer = match response {
                Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
                _ => None,
            };
            let ms = sent.elapsed().as_secs_f64() * 1000.0;
            match answer.and_then(|a| a["session_token"].as_str().map(str::to_owned)) {
                Some(token) => {
                    result.latencies_ms.push(ms);
                    result.tokens.push(token);
                }
                None => result.failed += 1,
            }
        }
        result
    });
    join_all(workers).await
}

async fn read_back(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    tokens: &[String],
    connections: usize,
) -> usize {
    let chunk = tokens.len().div_ceil(connections.max(1)).max(1);
    let readers = tokens.chunks(chunk).map(|part| async move {
        let mut ok = 0usize;
        for token in part {
            let response = http
                .post(format!("{url}/result/"))
                .json(&json!({"company_key": key, "session_token": token}))
                .send()
                .await;
            if let Ok(r) = response
                && r.status().is_success()
                && let Ok(v) = r.json::<Value>().await
                && v["status"] == "created"
            {
                ok += 1;
            }
        }
        ok
    });
    join_all(readers).await.into_iter().sum()
}

/// Runs futures concurrently on the current task and collects their outputs.
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, future) in set.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => outputs[i] = Some(out),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
