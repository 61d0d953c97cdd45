//! `kyc-tui`: the terminal console for support staff and operators. A client
//! of the staff API, like `kyc-admin`, found and signed in the same way:
//! `--server`/`KYC_SERVER`, `--token`/`KYC_TOKEN`, else `<data dir>/admin.token`.

mod action;
mod app;
mod events;
mod requests;
mod screens;
mod tui;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use kyc_client::Client;
use tokio::sync::mpsc;

use crate::app::App;

#[derive(Debug, Parser)]
#[command(name = "kyc-tui", version, about = "Terminal console for KYC staff")]
struct Cli {
    /// Base URL of the server.
    #[arg(long, env = "KYC_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Staff token; default: the contents of <data dir>/admin.token.
    #[arg(long, env = "KYC_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Data directory whose admin.token is used when no token is given.
    #[arg(long, env = "KYC_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
}

/// The staff token, or why there is none.
fn token(given: Option<String>, data_dir: &Path) -> Result<String, String> {
    if let Some(token) = given.filter(|t| !t.is_empty()) {
        return Ok(token);
    }
    let path = data_dir.join("admin.token");
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| {
            format!(
                "No staff token: give --token or KYC_TOKEN, or run where {} is readable ({e}).",
                path.display()
            )
        })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let token = token(cli.token, &cli.data_dir);
    let client = Client::new(&cli.server, token.clone().ok());
    let app = App::new(&cli.server, token.err());
    let outcome = match tui::init() {
        Ok(mut terminal) => {
            let ran = run(app, &client, &mut terminal).await;
            ran.and(tui::restore())
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kyc-tui: terminal error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The app loop: draw, wait for one action (a key or a server answer), update,
/// start the requests the update asked for, until the app quits.
async fn run(mut app: App, client: &Client, terminal: &mut tui::Tui) -> std::io::Result<()> {
    let (actions, mut incoming) = mpsc::unbounded_channel();
    events::spawn_input(actions.clone());
    for request in app.start() {
        requests::spawn(client, request, &actions);
    }
    while !app.quitting {
        terminal.draw(|frame| screens::render(&app, frame))?;
        let Some(action) = incoming.recv().await else {
            break;
        };
        for request in app.update(action) {
            requests::spawn(client, request, &actions);
        }
    }
    Ok(())
}
