//! The console's state and the one function that changes it. `update` is pure:
//! it takes an [`Action`] and returns the [`Request`]s to send, so every
//! behaviour can be tested without a terminal or a server.

use kyc_core::api::{Health, StaffAccount};

use crate::action::{Action, Outcome};
use crate::requests::Request;
use crate::screens::sessions::{Detail, SessionsScreen};

pub struct App {
    /// Base URL of the server, as given.
    pub server: String,
    pub health: ServerHealth,
    pub staff: SignIn,
    pub sessions: SessionsScreen,
    /// Failures still standing, at most one per origin, oldest first; one
    /// goes when the same kind of call succeeds. The footer shows the newest.
    errors: Vec<Failure>,
    pub quitting: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerHealth {
    Checking,
    Up(Health),
    /// It did not answer, or answered with an error (the footer says which).
    Down,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SignIn {
    Pending,
    SignedIn(StaffAccount),
    /// The server refused the token (or did not answer).
    NotSignedIn,
    /// No token was found: only the (public) health check is worth asking.
    NoToken,
}

/// What went wrong, and which kind of call it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub origin: Origin,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Token,
    Health,
    Me,
    Sessions,
    Session,
}

impl App {
    /// `token_problem` says why no staff token was found, if none was.
    pub fn new(server: &str, token_problem: Option<String>) -> Self {
        Self {
            server: server.to_owned(),
            health: ServerHealth::Checking,
            staff: if token_problem.is_some() {
                SignIn::NoToken
            } else {
                SignIn::Pending
            },
            sessions: SessionsScreen::default(),
            errors: token_problem
                .map(|message| Failure {
                    origin: Origin::Token,
                    message,
                })
                .into_iter()
                .collect(),
            quitting: false,
        }
    }

    /// The newest failure still standing.
    pub fn last_error(&self) -> Option<&Failure> {
        self.errors.last()
    }

    fn has_token(&self) -> bool {
        self.staff != SignIn::NoToken
    }

    /// The requests that fill the screen at start.
    pub fn start(&mut self) -> Vec<Request> {
        self.refresh()
    }

    pub fn update(&mut self, action: Action) -> Vec<Request> {
        match action {
            Action::Quit => self.quitting = true,
            Action::Redraw => {}
            Action::SelectPrevious => self.sessions.select_previous(),
            Action::SelectNext => self.sessions.select_next(),
            Action::Refresh => return self.refresh(),
            Action::CycleStatusFilter => {
                if self.has_token() {
                    self.sessions.cycle_filter();
                    return vec![Request::Sessions(self.sessions.filter)];
                }
            }
            Action::OpenDetail => {
                if let Some(row) = self.sessions.selected_row() {
                    let id = row.session_id.clone();
                    self.sessions.detail = Detail::Loading { id: id.clone() };
                    return vec![Request::Session(id)];
                }
            }
            Action::CloseDetail => self.sessions.detail = Detail::Closed,
            Action::HealthChecked(outcome) => {
                self.health = self
                    .settle(Origin::Health, outcome)
                    .map_or(ServerHealth::Down, ServerHealth::Up);
            }
            Action::SignedIn(outcome) => {
                self.staff = self
                    .settle(Origin::Me, outcome)
                    .map_or(SignIn::NotSignedIn, SignIn::SignedIn);
            }
            Action::SessionsListed { filter, outcome } => {
                // An answer for a filter no longer chosen is stale.
                if filter == self.sessions.filter {
                    self.sessions.loading = false;
                    if let Some(rows) = self.settle(Origin::Sessions, outcome) {
                        self.sessions.show_rows(rows);
                    }
                }
            }
            Action::SessionLoaded { id, outcome } => {
                // An answer for a pane since closed or moved on is stale.
                if self.sessions.detail.id() == Some(id.as_str()) {
                    match self.settle(Origin::Session, outcome) {
                        Some(session) => self.sessions.detail = Detail::Shown(session),
                        None if matches!(self.sessions.detail, Detail::Loading { .. }) => {
                            self.sessions.detail = Detail::Failed { id };
                        }
                        // A refresh failed: keep what is shown; the footer says why.
                        None => {}
                    }
                }
            }
        }
        Vec::new()
    }

    fn refresh(&mut self) -> Vec<Request> {
        let mut requests = vec![Request::Health];
        if !self.has_token() {
            return requests;
        }
        requests.push(Request::Me);
        self.sessions.loading = true;
        requests.push(Request::Sessions(self.sessions.filter));
        if let Some(id) = self.sessions.detail.id() {
            requests.push(Request::Session(id.to_owned()));
        }
        requests
    }

    /// Records an outcome for the footer: a failure becomes the newest error
    /// (replacing an older one of the same origin), a success clears it.
    fn settle<T>(&mut self, origin: Origin, outcome: Outcome<T>) -> Option<T> {
        self.errors.retain(|f| f.origin != origin);
        match outcome {
            Ok(value) => Some(value),
            Err(message) => {
                self.errors.push(Failure { origin, message });
                None
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use kyc_core::api::{Role, SessionSummary};
    use kyc_core::clock::Millis;
    use kyc_core::domain::SessionStatus;

    use super::*;
    use crate::screens::sessions::tests::{staff_session, summary};

    fn signed_in_app() -> App {
        let mut app = App::new("http://kyc.test", None);
        app.start();
        app
    }

    fn listed(app: &mut App, rows: Vec<SessionSummary>) {
        let filter = app.sessions.filter;
        app.update(Action::SessionsListed {
            filter,
            outcome: Ok(rows),
        });
    }

    #[test]
    fn start_asks_for_health_me_and_the_newest_sessions() {
        let mut app = App::new("http://kyc.test", None);
        assert_eq!(
            app.start(),
            vec![Request::Health, Request::Me, Request::Sessions(None)]
        );
        assert!(app.sessions.loading);
    }

    #[test]
    fn without_a_token_only_health_is_asked_and_the_reason_shown() {
        let mut app = App::new("http://kyc.test", Some("no token: give --token".into()));
        assert_eq!(app.start(), vec![Request::Health]);
        assert_eq!(app.update(Action::CycleStatusFilter), vec![]);
        assert_eq!(app.staff, SignIn::NoToken);
        // An unreachable server is the newest news; once it answers, the
        // missing token is what the footer shows again.
        app.update(Action::HealthChecked(Err("Cannot reach the server".into())));
        assert_eq!(app.last_error().map(|f| f.origin), Some(Origin::Health));
        app.update(Action::HealthChecked(Ok(health())));
        assert_eq!(
            app.last_error().map(|f| f.message.as_str()),
            Some("no token: give --token")
        );
    }

    #[test]
    fn selection_moves_within_the_rows() {
        let mut app = signed_in_app();
        listed(&mut app, vec![summary("a"), summary("b"), summary("c")]);
        assert_eq!(app.sessions.selected, 0);
        app.update(Action::SelectPrevious);
        assert_eq!(app.sessions.selected, 0);
        app.update(Action::SelectNext);
        app.update(Action::SelectNext);
        app.update(Action::SelectNext);
        assert_eq!(app.sessions.selected, 2);
        // A shorter listing keeps the selection on a row.
        listed(&mut app, vec![summary("a")]);
        assert_eq!(app.sessions.selected, 0);
    }

    #[test]
    fn the_status_filter_cycles_and_refetches() {
        let mut app = signed_in_app();
        listed(&mut app, vec![summary("a")]);
        let mut seen = Vec::new();
        for _ in 0..6 {
            let requests = app.update(Action::CycleStatusFilter);
            assert_eq!(requests, vec![Request::Sessions(app.sessions.filter)]);
            assert!(app.sessions.loading && app.sessions.rows.is_empty());
            seen.push(app.sessions.filter);
        }
        let mut expected: Vec<_> = SessionStatus::ALL.into_iter().map(Some).collect();
        expected.push(None);
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_listing_for_an_older_filter_is_dropped() {
        let mut app = signed_in_app();
        app.update(Action::CycleStatusFilter); // created
        app.update(Action::SessionsListed {
            filter: None,
            outcome: Ok(vec![summary("old")]),
        });
        assert!(app.sessions.rows.is_empty());
        assert!(app.sessions.loading);
        let filter = Some(SessionStatus::Created);
        app.update(Action::SessionsListed {
            filter,
            outcome: Ok(vec![summary("new")]),
        });
        assert_eq!(app.sessions.rows.len(), 1);
        assert!(!app.sessions.loading);
    }

    #[test]
    fn enter_opens_the_selected_session_and_esc_closes_it() {
        let mut app = signed_in_app();
        assert_eq!(
            app.update(Action::OpenDetail),
            vec![],
            "no rows, nothing to open"
        );
        listed(&mut app, vec![summary("a"), summary("b")]);
        app.update(Action::SelectNext);
        assert_eq!(
            app.update(Action::OpenDetail),
            vec![Request::Session("b".into())]
        );
        assert_eq!(app.sessions.detail, Detail::Loading { id: "b".into() });
        // An answer for another session is not shown.
        app.update(Action::SessionLoaded {
            id: "a".into(),
            outcome: Ok(Box::new(staff_session("a"))),
        });
        assert_eq!(app.sessions.detail, Detail::Loading { id: "b".into() });
        app.update(Action::SessionLoaded {
            id: "b".into(),
            outcome: Ok(Box::new(staff_session("b"))),
        });
        assert_eq!(app.sessions.detail.id(), Some("b"));
        assert!(matches!(app.sessions.detail, Detail::Shown(_)));
        // Refresh reloads the open session too.
        assert!(
            app.update(Action::Refresh)
                .contains(&Request::Session("b".into()))
        );
        app.update(Action::CloseDetail);
        assert_eq!(app.sessions.detail, Detail::Closed);
        assert!(
            !app.update(Action::Refresh)
                .contains(&Request::Session("b".into()))
        );
    }

    #[test]
    fn a_failed_detail_is_marked_and_explained() {
        let mut app = signed_in_app();
        listed(&mut app, vec![summary("a")]);
        app.update(Action::OpenDetail);
        app.update(Action::SessionLoaded {
            id: "a".into(),
            outcome: Err("Not found (404: gone).".into()),
        });
        assert_eq!(app.sessions.detail, Detail::Failed { id: "a".into() });
        assert_eq!(
            app.last_error().map(|f| f.message.as_str()),
            Some("Not found (404: gone).")
        );
    }

    #[test]
    fn errors_stay_until_the_same_call_succeeds() {
        let mut app = signed_in_app();
        app.update(Action::HealthChecked(Err("Cannot reach the server".into())));
        assert_eq!(app.health, ServerHealth::Down);
        app.update(Action::SignedIn(Err(
            "The server refused the staff token (401: x).".into(),
        )));
        assert_eq!(app.staff, SignIn::NotSignedIn);
        // Health recovering does not hide the sign-in failure.
        app.update(Action::HealthChecked(Ok(health())));
        assert_eq!(app.last_error().map(|f| f.origin), Some(Origin::Me));
        // A repeated failure replaces the older one of the same kind.
        app.update(Action::SignedIn(Err("again".into())));
        app.update(Action::SignedIn(Ok(account())));
        assert_eq!(app.last_error(), None);
        assert_eq!(app.staff, SignIn::SignedIn(account()));
    }

    #[test]
    fn a_failed_listing_keeps_the_rows_it_had() {
        let mut app = signed_in_app();
        listed(&mut app, vec![summary("a")]);
        app.update(Action::Refresh);
        app.update(Action::SessionsListed {
            filter: None,
            outcome: Err("down".into()),
        });
        assert_eq!(app.sessions.rows.len(), 1);
        assert!(!app.sessions.loading);
    }

    #[test]
    fn q_quits() {
        let mut app = signed_in_app();
        assert!(!app.quitting);
        app.update(Action::Quit);
        assert!(app.quitting);
    }

    pub(crate) fn health() -> Health {
        Health {
            status: "ok".into(),
            version: "0.1.0".into(),
            database: "ok".into(),
        }
    }

    pub(crate) fn account() -> StaffAccount {
        StaffAccount {
            id: "staff-1".into(),
            name: "Nino Beridze".into(),
            role: Role::Operator,
            groups: vec!["tbilisi".into()],
            disabled: false,
            created_at: Millis(0),
        }
    }
}
