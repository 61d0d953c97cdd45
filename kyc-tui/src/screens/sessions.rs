//! The Sessions screen: the newest sessions in a table, filtered by status,
//! and beside (or below) it the flow of the one opened with Enter.

use kyc_core::api::{FlowStep, SessionSummary, StaffSession};
use kyc_core::clock::Millis;
use kyc_core::domain::SessionStatus;
use kyc_core::flow::StepState;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState, Wrap};

pub const KEY_HINTS: &str =
    "↑/↓ j/k select · Enter open · Esc close · s status filter · r refresh · q quit";

/// Below this width the detail pane goes under the table instead of beside it.
const SIDE_BY_SIDE_WIDTH: u16 = 110;

#[derive(Debug, Default)]
pub struct SessionsScreen {
    /// Newest first, as the server lists them.
    pub rows: Vec<SessionSummary>,
    pub selected: usize,
    /// `None`: every status.
    pub filter: Option<SessionStatus>,
    pub loading: bool,
    pub detail: Detail,
}

/// The pane with one session's flow.
#[derive(Debug, Default, Clone, PartialEq)]
pub enum Detail {
    #[default]
    Closed,
    Loading {
        id: String,
    },
    Shown(Box<StaffSession>),
    Failed {
        id: String,
    },
}

impl Detail {
    /// The session the pane is about, if it is open.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Closed => None,
            Self::Loading { id } | Self::Failed { id } => Some(id),
            Self::Shown(session) => Some(&session.result.session_id),
        }
    }
}

impl SessionsScreen {
    pub fn selected_row(&self) -> Option<&SessionSummary> {
        self.rows.get(self.selected)
    }

    pub fn select_next(&mut self) {
        self.selected = (self.selected + 1).min(self.rows.len().saturating_sub(1));
    }

    pub fn select_previous(&mut self) {
        self.selected = self.selected.saturating_sub(1);
    }

    /// all → created → … → cancelled → all; the rows of the old filter go.
    pub fn cycle_filter(&mut self) {
        let statuses = SessionStatus::ALL;
        self.filter = match self.filter {
            None => statuses.first().copied(),
            Some(current) => statuses
                .iter()
                .skip_while(|s| **s != current)
                .nth(1)
                .copied(),
        };
        self.rows.clear();
        self.selected = 0;
        self.loading = true;
    }

    pub fn show_rows(&mut self, rows: Vec<SessionSummary>) {
        self.rows = rows;
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }
}

pub fn filter_label(filter: Option<SessionStatus>) -> &'static str {
    filter.map_or("all", SessionStatus::as_str)
}

pub fn render(screen: &SessionsScreen, frame: &mut Frame, area: Rect) {
    if screen.detail == Detail::Closed {
        render_table(screen, frame, area);
        return;
    }
    let [table, detail] = if area.width >= SIDE_BY_SIDE_WIDTH {
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area)
    } else {
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area)
    };
    render_table(screen, frame, table);
    render_detail(&screen.detail, frame, detail);
}

fn render_table(screen: &SessionsScreen, frame: &mut Frame, area: Rect) {
    let mut title = format!(
        " Sessions · status: {} · {} shown ",
        filter_label(screen.filter),
        screen.rows.len()
    );
    if screen.loading {
        title.push_str("· loading… ");
    }
    let block = Block::bordered().title(title);
    if screen.rows.is_empty() {
        let text = if screen.loading {
            "Loading…"
        } else {
            "No sessions to show."
        };
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    }
    let header = Row::new(["ID", "Status", "Name", "Client user", "Group", "Created"]).bold();
    let rows = screen.rows.iter().map(|s| {
        Row::new([
            short_id(&s.session_id),
            s.status.as_str().to_owned(),
            s.name.clone().unwrap_or_default(),
            s.client_user_id.clone().unwrap_or_default(),
            s.group_id.clone().unwrap_or_default(),
            minutes(s.created_at),
        ])
    });
    // Id, status and time keep their width; the free text columns share the rest.
    let widths = [
        Constraint::Length(9),
        Constraint::Length(11),
        Constraint::Fill(2),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(16),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(Style::new().reversed())
        .highlight_symbol("▶ ");
    let mut state = TableState::default().with_selected(Some(screen.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn render_detail(detail: &Detail, frame: &mut Frame, area: Rect) {
    let (title, lines) = match detail {
        Detail::Closed => return,
        Detail::Loading { id } => (short_id(id), vec![Line::from("Loading…")]),
        Detail::Failed { id } => (
            short_id(id),
            vec![Line::from(
                "Could not load this session (the reason is below). Enter tries again.",
            )],
        ),
        Detail::Shown(session) => (short_id(&session.result.session_id), session_lines(session)),
    };
    let block = Block::bordered().title(format!(" Session {title} · Esc closes "));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn session_lines(session: &StaffSession) -> Vec<Line<'static>> {
    let s = &session.result;
    let field = |label: &str, value: String| Line::from(format!("{label:<12} {value}"));
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "–".into());
    let mut lines = vec![
        field("ID", s.session_id.clone()),
        field("Company", session.company_name.clone()),
        field("Status", s.status.as_str().to_owned()),
        field("Name", or_dash(&s.name)),
        field("Client user", or_dash(&s.client_user_id)),
        field("Group", or_dash(&s.group_id)),
        field("Created", minutes(s.created_at)),
        field("Expires", minutes(s.expires_at)),
        Line::from(""),
        Line::from("Flow").bold(),
    ];
    if s.flow.is_empty() {
        lines.push(Line::from("  (no steps)"));
    }
    for (n, step) in s.flow.iter().enumerate() {
        lines.push(step_line(&format!("{:>2}.", n + 1), step));
        for inner in &step.steps {
            lines.push(step_line("  └", inner));
        }
    }
    lines
}

/// ` 1. liveness (face-check)   pending`: the type, and the key when the
/// integrator chose one of its own.
fn step_line(marker: &str, step: &FlowStep) -> Line<'static> {
    let name = if step.key == step.step_type {
        step.step_type.clone()
    } else {
        format!("{} ({})", step.step_type, step.key)
    };
    Line::from(format!("{marker} {name:<30} {}", step_state(step.state)))
}

fn step_state(state: StepState) -> &'static str {
    match state {
        StepState::Pending => "pending",
        StepState::InProgress => "in progress",
        StepState::Completed => "completed",
        StepState::Failed => "failed",
        StepState::Skipped => "skipped",
    }
}

/// Session ids are UUIDv7: their first characters are a timestamp shared by
/// sessions made close together, their last ones are random. Show those.
pub fn short_id(id: &str) -> String {
    let tail: String = id
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if tail.len() < id.len() {
        format!("…{tail}")
    } else {
        tail
    }
}

/// `2024-06-20 07:33` (UTC).
fn minutes(at: Millis) -> String {
    let text = at.to_rfc3339().replacen('T', " ", 1);
    text.get(..16).map_or(text.clone(), str::to_owned)
}

#[cfg(test)]
pub(crate) mod tests {
    use kyc_core::api::SessionResult;
    use kyc_core::domain::Flags;

    use super::*;

    /// 2026-11-24 09:30 UTC.
    const CREATED: Millis = Millis(1_795_512_600_000);

    pub(crate) fn summary(id: &str) -> SessionSummary {
        SessionSummary {
            session_id: id.into(),
            company_id: "company-1".into(),
            status: SessionStatus::Created,
            name: Some(format!("Person {id}")),
            client_user_id: Some(format!("user-{id}")),
            group_id: Some("tbilisi".into()),
            created_at: CREATED,
            expires_at: CREATED.plus_secs(3600),
            created_by: None,
        }
    }

    fn step(key: &str, step_type: &str, state: StepState) -> FlowStep {
        FlowStep {
            key: key.into(),
            step_type: step_type.into(),
            title: None,
            state,
            result: None,
            updated_at: None,
            config: serde_json::Value::Null,
            steps: Vec::new(),
        }
    }

    pub(crate) fn staff_session(id: &str) -> StaffSession {
        let mut call = step("video-call", "video-call", StepState::InProgress);
        call.steps.push(step(
            "operator-form",
            "operator-questionnaire",
            StepState::Pending,
        ));
        StaffSession {
            company_id: "company-1".into(),
            company_name: "Acme Bank".into(),
            created_by: None,
            session_time_secs: 900,
            result: SessionResult {
                schema_version: 1,
                session_id: id.into(),
                status: SessionStatus::InProgress,
                created_at: CREATED,
                expires_at: CREATED.plus_secs(3600),
                started_at: None,
                deadline_at: None,
                completed_at: None,
                name: Some("Giorgi Maisuradze".into()),
                client_user_id: Some("user-77".into()),
                group_id: Some("tbilisi".into()),
                schedule_start_time: None,
                schedule_end_time: None,
                flags: Flags::default(),
                flow: vec![
                    step("passport", "identity-document", StepState::Completed),
                    call,
                ],
            },
        }
    }

    #[test]
    fn ids_keep_their_random_tail() {
        assert_eq!(
            short_id("019abcde-0000-7000-8000-0123456789ab"),
            "…456789ab"
        );
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn times_are_shown_to_the_minute() {
        assert_eq!(minutes(CREATED), "2026-11-24 09:30");
    }
}
