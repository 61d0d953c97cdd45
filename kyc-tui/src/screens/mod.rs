//! What the console draws: a header (server, who is signed in, health), the
//! current screen, and a footer with the keys and the last error.

pub mod sessions;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::app::{App, ServerHealth, SignIn};

pub fn render(app: &App, frame: &mut Frame) {
    let [header, body, keys, error] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(2),
    ])
    .areas(frame.area());
    frame.render_widget(header_line(app), header);
    sessions::render(&app.sessions, frame, body);
    frame.render_widget(Line::from(sessions::KEY_HINTS).dim(), keys);
    let status = match app.last_error() {
        Some(failure) => Line::from(format!("Error: {}", failure.message)).red(),
        None => Line::from("No errors.").dim(),
    };
    frame.render_widget(Paragraph::new(status).wrap(Wrap { trim: true }), error);
}

fn header_line(app: &App) -> Line<'static> {
    let who = match &app.staff {
        SignIn::Pending => Span::raw("signing in…"),
        SignIn::SignedIn(account) => Span::raw(format!(
            "signed in as {} ({})",
            account.name,
            account.role.as_str()
        )),
        SignIn::NotSignedIn => Span::raw("not signed in").red(),
        SignIn::NoToken => Span::raw("not signed in (no staff token)").red(),
    };
    let health = match &app.health {
        ServerHealth::Checking => Span::raw("checking…"),
        ServerHealth::Up(h) => {
            let text = Span::raw(format!(
                "{} (database {}, v{})",
                h.status, h.database, h.version
            ));
            if h.status == "ok" {
                text.green()
            } else {
                text.yellow()
            }
        }
        ServerHealth::Down => Span::raw("not answering").red(),
    };
    let label = |text: &'static str| Span::styled(text, Style::new().dim());
    Line::from(vec![
        Span::raw("KYC console").bold(),
        label("  server "),
        Span::raw(app.server.clone()),
        Span::raw("  "),
        who,
        label("  health "),
        health,
    ])
}

#[cfg(test)]
mod tests {
    use kyc_core::domain::SessionStatus;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::action::Action;
    use crate::app::tests::{account, health};
    use crate::screens::sessions::tests::{staff_session, summary};

    /// Draws `app` on a `width`×`height` test terminal; one string per line.
    fn draw(app: &App, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| render(app, frame)).unwrap();
        let buffer = terminal.backend().buffer();
        buffer
            .content()
            .chunks(usize::from(buffer.area.width))
            .map(|line| line.iter().map(|cell| cell.symbol()).collect())
            .collect()
    }

    fn screen_text(lines: &[String]) -> String {
        lines.join("\n")
    }

    /// Signed in, healthy, three sessions listed, the second selected.
    fn listed_app() -> App {
        let mut app = App::new("http://kyc.test:8080", None);
        app.start();
        app.update(Action::HealthChecked(Ok(health())));
        app.update(Action::SignedIn(Ok(account())));
        let rows = [
            "019abcde-0000-7000-8000-00000000aaa1",
            "019abcde-0000-7000-8000-00000000bbb2",
            "019abcde-0000-7000-8000-00000000ccc3",
        ]
        .map(summary)
        .to_vec();
        app.update(Action::SessionsListed {
            filter: None,
            outcome: Ok(rows),
        });
        app.update(Action::SelectNext);
        app
    }

    #[test]
    fn header_shows_server_staff_and_health() {
        let lines = draw(&listed_app(), 120, 20);
        assert!(
            lines[0].contains("server http://kyc.test:8080"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains("signed in as Nino Beridze (operator)"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains("health ok (database ok, v0.1.0)"),
            "{}",
            lines[0]
        );
    }

    #[test]
    fn table_lists_sessions_and_marks_the_selected_one() {
        let lines = draw(&listed_app(), 120, 20);
        let text = screen_text(&lines);
        assert!(text.contains("Sessions · status: all · 3 shown"), "{text}");
        for heading in ["ID", "Status", "Name", "Client user", "Group", "Created"] {
            assert!(
                lines[2].contains(heading),
                "{heading} missing from {}",
                lines[2]
            );
        }
        let row = |tail: &str| {
            lines
                .iter()
                .find(|l| l.contains(tail))
                .cloned()
                .unwrap_or_default()
        };
        let second = row("…0000bbb2");
        assert!(second.contains("▶"), "the second row is selected: {second}");
        for cell in [
            "created",
            "Person 019abcde-",
            "user-019abcde-",
            "tbilisi",
            "2026-11-24 09:30",
        ] {
            assert!(second.contains(cell), "{cell} missing from {second}");
        }
        assert!(!row("…0000aaa1").contains("▶"));
        assert!(!row("…0000ccc3").is_empty());
        assert!(lines.iter().any(|l| l.contains("No errors.")));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("s status filter") && l.contains("q quit"))
        );
    }

    #[test]
    fn the_filter_label_follows_the_chosen_status() {
        let mut app = listed_app();
        app.update(Action::CycleStatusFilter);
        app.update(Action::CycleStatusFilter);
        assert_eq!(app.sessions.filter, Some(SessionStatus::InProgress));
        let text = screen_text(&draw(&app, 120, 20));
        assert!(
            text.contains("Sessions · status: in_progress · 0 shown · loading…"),
            "{text}"
        );
        assert!(
            !text.contains("…0000bbb2"),
            "rows of the old filter are gone: {text}"
        );
    }

    #[test]
    fn detail_pane_shows_the_flow_beside_a_wide_table() {
        let mut app = listed_app();
        app.update(Action::OpenDetail);
        let id = "019abcde-0000-7000-8000-00000000bbb2";
        app.update(Action::SessionLoaded {
            id: id.into(),
            outcome: Ok(Box::new(staff_session(id))),
        });
        let lines = draw(&app, 140, 24);
        let text = screen_text(&lines);
        // Every column of the table still fits beside the pane.
        assert!(
            lines
                .iter()
                .any(|l| l.contains("▶ …0000bbb2") && l.contains("2026-11-24 09:30│")),
            "{text}"
        );
        assert!(text.contains("Session …0000bbb2 · Esc closes"), "{text}");
        let pane_line = lines.iter().find(|l| l.contains("Company")).unwrap();
        assert!(pane_line.contains("Acme Bank"));
        assert!(
            pane_line.contains("…0000aaa1"),
            "the pane is beside the table: {pane_line}"
        );
        let step = lines
            .iter()
            .find(|l| l.contains(" 1. identity-document (passport) "))
            .unwrap();
        assert!(step.contains("completed"), "{step}");
        let call = lines
            .iter()
            .find(|l| l.contains(" 2. video-call "))
            .unwrap();
        assert!(
            call.contains("in progress") && !call.contains("(video-call)"),
            "{call}"
        );
        let inner = lines
            .iter()
            .find(|l| l.contains("└ operator-questionnaire (operator-form)"))
            .unwrap();
        assert!(inner.contains("pending"), "{inner}");
        assert!(text.contains("Giorgi Maisuradze"));
    }

    #[test]
    fn detail_pane_goes_below_a_narrow_table() {
        let mut app = listed_app();
        app.update(Action::OpenDetail);
        let lines = draw(&app, 80, 30);
        let table_title = lines
            .iter()
            .position(|l| l.contains("Sessions · status"))
            .unwrap();
        let pane_title = lines
            .iter()
            .position(|l| l.contains("Session …0000bbb2"))
            .unwrap();
        assert!(pane_title > table_title + 3, "the pane is below the table");
        assert!(lines[pane_title + 1].contains("Loading…"));
    }

    #[test]
    fn errors_are_shown_in_the_footer_in_plain_words() {
        let mut app = App::new("http://127.0.0.1:9", None);
        app.start();
        let refused = "Cannot reach the server at http://127.0.0.1:9 (Connection refused). Is kyc-server running there?";
        app.update(Action::HealthChecked(Err(refused.into())));
        app.update(Action::SignedIn(Err(refused.into())));
        app.update(Action::SessionsListed {
            filter: None,
            outcome: Err(refused.into()),
        });
        let lines = draw(&app, 140, 12);
        assert!(
            lines[0].contains("not signed in") && lines[0].contains("health not answering"),
            "{}",
            lines[0]
        );
        assert!(
            lines[10].starts_with("Error: Cannot reach the server at http://127.0.0.1:9"),
            "{}",
            lines[10]
        );
        assert!(screen_text(&lines).contains("No sessions to show."));
    }

    #[test]
    fn a_missing_token_is_explained_in_header_and_footer() {
        let mut app = App::new(
            "http://kyc.test:8080",
            Some("No staff token: give --token or KYC_TOKEN.".into()),
        );
        app.start();
        app.update(Action::HealthChecked(Ok(health())));
        let lines = draw(&app, 120, 12);
        assert!(
            lines[0].contains("  not signed in (no staff token)"),
            "{}",
            lines[0]
        );
        assert!(
            lines[10].starts_with("Error: No staff token: give --token or KYC_TOKEN."),
            "{}",
            lines[10]
        );
    }

    #[test]
    fn a_long_error_wraps_onto_the_second_footer_line() {
        let mut app = listed_app();
        app.update(Action::SignedIn(Err(
            "The server refused the staff token (401: the staff token is not valid, or its account is disabled). \
             Give --token or KYC_TOKEN, or run where <data dir>/admin.token is readable."
                .into(),
        )));
        let lines = draw(&app, 100, 12);
        assert!(
            lines[10].starts_with("Error: The server refused the staff token (401"),
            "{}",
            lines[10]
        );
        assert!(lines[11].contains("admin.token"), "{}", lines[11]);
    }
}
