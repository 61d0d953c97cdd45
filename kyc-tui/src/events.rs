//! Terminal input. A thread waits for keys (crossterm's reads block) and turns
//! them into [`Action`]s on the same channel the network answers arrive on, so
//! the app loop has one place to wait.

use std::thread;
use std::time::Duration;

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc::UnboundedSender;

use crate::action::Action;

/// How often the input thread looks up to see whether the app is gone.
const POLL: Duration = Duration::from_millis(200);

/// The action a key asks for, if any.
pub fn action_for_key(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c')).then_some(Action::Quit);
    }
    let action = match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Up | KeyCode::Char('k') => Action::SelectPrevious,
        KeyCode::Down | KeyCode::Char('j') => Action::SelectNext,
        KeyCode::Char('r') => Action::Refresh,
        KeyCode::Char('s') => Action::CycleStatusFilter,
        KeyCode::Enter => Action::OpenDetail,
        KeyCode::Esc => Action::CloseDetail,
        _ => return None,
    };
    Some(action)
}

/// Reads the terminal until the receiving end of `actions` is dropped.
pub fn spawn_input(actions: UnboundedSender<Action>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        while !actions.is_closed() {
            let action = match event::poll(POLL) {
                Ok(false) => continue,
                Ok(true) => match event::read() {
                    Ok(Event::Key(key)) => action_for_key(key),
                    Ok(Event::Resize(..)) => Some(Action::Redraw),
                    Ok(_) => None,
                    // The terminal is gone: nobody is left to press `q`.
                    Err(_) => Some(Action::Quit),
                },
                Err(_) => Some(Action::Quit),
            };
            if let Some(action) = action
                && actions.send(action).is_err()
            {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_actions() {
        assert_eq!(action_for_key(key(KeyCode::Char('q'))), Some(Action::Quit));
        assert_eq!(
            action_for_key(key(KeyCode::Char('j'))),
            Some(Action::SelectNext)
        );
        assert_eq!(action_for_key(key(KeyCode::Down)), Some(Action::SelectNext));
        assert_eq!(
            action_for_key(key(KeyCode::Char('k'))),
            Some(Action::SelectPrevious)
        );
        assert_eq!(
            action_for_key(key(KeyCode::Up)),
            Some(Action::SelectPrevious)
        );
        assert_eq!(
            action_for_key(key(KeyCode::Char('r'))),
            Some(Action::Refresh)
        );
        assert_eq!(
            action_for_key(key(KeyCode::Char('s'))),
            Some(Action::CycleStatusFilter)
        );
        assert_eq!(
            action_for_key(key(KeyCode::Enter)),
            Some(Action::OpenDetail)
        );
        assert_eq!(action_for_key(key(KeyCode::Esc)), Some(Action::CloseDetail));
        assert_eq!(action_for_key(key(KeyCode::Char('x'))), None);
    }

    #[test]
    fn ctrl_c_quits_and_other_chords_do_nothing() {
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert_eq!(action_for_key(ctrl('c')), Some(Action::Quit));
        assert_eq!(action_for_key(ctrl('r')), None);
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut release = key(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(action_for_key(release), None);
    }
}
