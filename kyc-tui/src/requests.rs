//! Calls to the staff API. Each runs on its own tokio task so the screen keeps
//! drawing while the server thinks (or never answers); the answer comes back to
//! the app loop as an [`Action`], with any error already in plain words.

use std::error::Error;
use std::future::Future;
use std::time::Duration;

use kyc_client::{Client, ClientError, SessionFilter};
use kyc_core::domain::SessionStatus;
use tokio::sync::mpsc::UnboundedSender;

use crate::action::{Action, Outcome};

/// How many of the newest sessions the table shows.
pub const PAGE_SIZE: u32 = 100;

/// After this long a call counts as failed; the UI never waits on it anyway.
const PATIENCE: Duration = Duration::from_secs(15);

/// What the app wants from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Health,
    Me,
    Sessions(Option<SessionStatus>),
    Session(String),
}

/// Starts `request` in the background; its answer arrives on `actions`.
pub fn spawn(client: &Client, request: Request, actions: &UnboundedSender<Action>) {
    let client = client.clone();
    let actions = actions.clone();
    tokio::spawn(async move {
        let action = match request {
            Request::Health => Action::HealthChecked(ask(client.health()).await),
            Request::Me => Action::SignedIn(ask(client.me()).await),
            Request::Sessions(filter) => {
                let query = SessionFilter {
                    status: filter.map(|s| s.as_str().to_owned()),
                    limit: Some(PAGE_SIZE),
                    ..SessionFilter::default()
                };
                let outcome = ask(client.sessions(&query)).await.map(|page| page.items);
                Action::SessionsListed { filter, outcome }
            }
            Request::Session(id) => {
                let outcome = ask(client.session(&id)).await.map(Box::new);
                Action::SessionLoaded { id, outcome }
            }
        };
        // After `q` the loop is gone and nobody wants the answer.
        let _ = actions.send(action);
    });
}

async fn ask<T>(call: impl Future<Output = Result<T, ClientError>>) -> Outcome<T> {
    match tokio::time::timeout(PATIENCE, call).await {
        Ok(answer) => answer.map_err(|e| plain_words(&e)),
        Err(_) => Err(format!(
            "The server did not answer within {} seconds.",
            PATIENCE.as_secs()
        )),
    }
}

/// An error as a person at the console needs it: what happened and what to do.
pub fn plain_words(error: &ClientError) -> String {
    match error {
        ClientError::Connect { url, source } => {
            format!(
                "Cannot reach the server at {url} ({}). Is kyc-server running there?",
                root_cause(source)
            )
        }
        ClientError::Api { status, body } => {
            let message = &body.error.message;
            match status.as_u16() {
                401 => format!(
                    "The server refused the staff token (401: {message}). \
                     Give --token or KYC_TOKEN, or run where <data dir>/admin.token is readable."
                ),
                403 => format!("This staff account may not do that (403: {message})."),
                404 => format!("Not found (404: {message})."),
                _ => one_line(&error.to_string()),
            }
        }
        ClientError::Unexpected { .. } => one_line(&error.to_string()),
    }
}

/// The innermost cause, e.g. "Connection refused (os error 111)".
fn root_cause(error: &dyn Error) -> String {
    let mut cause = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_server_is_described_in_plain_words() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        spawn(&Client::new(&url, Some("t".into())), Request::Health, &tx);
        let Some(Action::HealthChecked(Err(message))) = rx.recv().await else {
            panic!("expected a failed health check");
        };
        assert!(
            message.starts_with(&format!("Cannot reach the server at {url} (")),
            "{message}"
        );
        assert!(
            message.contains("Is kyc-server running there?"),
            "{message}"
        );
        assert!(!message.contains('\n'));
    }
}
