//! `kyc-server`: runs the KYC platform's HTTP server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kyc_server::config::{Config, LogFormat, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "kyc-server",
    version,
    about = "Self-hosted identity verification server"
)]
struct Cli {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "KYC_BIND", global = true)]
    bind: Option<SocketAddr>,
    /// Directory for the embedded database, master key and admin token (default ./data).
    #[arg(long, env = "KYC_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// A TOML file overriding config/default.toml.
    #[arg(long, env = "KYC_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the settings in effect, secrets masked.
    Config,
}

fn env_text(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// mimalloc keeps freed pages for reuse. The models' large intermediate
/// tensors (8 MB for one CenterFace layer on a video frame) are allocated and
/// freed on every inference; glibc hands them back to the kernel and takes
/// fresh, zero-filled pages again, a page fault every 4 KiB, which cost about
/// 10% of CenterFace's time (`cargo xtask bench ops`, 25.5 → 22.4 ms).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if let Err(err) = run() {
        eprintln!("kyc-server: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let log_format = match env_text("KYC_LOG_FORMAT").as_deref() {
        None => None,
        Some("json") => Some(LogFormat::Json),
        Some("text") => Some(LogFormat::Text),
        Some(other) => anyhow::bail!("KYC_LOG_FORMAT must be text or json, got {other:?}"),
    };
    let overrides = Overrides {
        bind: cli.bind,
        data_dir: cli.data_dir,
        database_url: env_text("DATABASE_URL"),
        public_url: env_text("KYC_PUBLIC_URL"),
        master_key: env_text("KYC_MASTER_KEY"),
        log_format,
        log_level: env_text("RUST_LOG"),
    };
    let config = Config::load(cli.config.as_deref(), overrides)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Config => {
            print!("{}", config.show());
            Ok(())
        }
        Command::Serve => serve(config),
    }
}

fn serve(config: Config) -> Result<()> {
    init_tracing(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = kyc_server::start(config).await?;
        println!("kyc-server listening on {}", server.public_url);
        let token_file = server
            .admin_token_file
            .clone()
            .unwrap_or_else(|| server.state.config.server.data_dir.join("admin.token"));
        if server.admin_token_file.is_some() {
            println!(
                "first start: admin token written to {}",
                token_file.display()
            );
        }
        if token_file.exists() {
            println!(
                "try: curl -H \"Authorization: Bearer $(cat {})\" {}/api/staff/me",
                token_file.display(),
                server.public_url
            );
        }
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
        server.stop().await
    })
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(err) => {
                    tracing::warn!(%err, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

fn init_tracing(config: &Config) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("log.level {:?} is not a valid filter", config.log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}
