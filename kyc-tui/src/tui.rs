//! The terminal: raw mode and the alternate screen on the way in, the
//! terminal as it was on the way out — also when the console panics, so a bug
//! never leaves a staff member's shell unusable.

use std::io::{self, Stdout, stdout};

use crossterm::cursor::Show;
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub type Tui = Terminal<CrosstermBackend<Stdout>>;

/// Takes over the terminal. Call [`restore`] when done.
pub fn init() -> io::Result<Tui> {
    install_panic_hook();
    enable_raw_mode()?;
    let entered = execute!(stdout(), EnterAlternateScreen)
        .and_then(|()| Terminal::new(CrosstermBackend::new(stdout())))
        .and_then(|mut terminal| terminal.clear().map(|()| terminal));
    if entered.is_err() {
        let _ = restore();
    }
    entered
}

/// Gives the terminal back as it was. Tries every step even if one fails.
pub fn restore() -> io::Result<()> {
    let raw = disable_raw_mode();
    let screen = execute!(stdout(), LeaveAlternateScreen, Show);
    raw.and(screen)
}

/// Restores the terminal before the panic message is printed, so the message
/// is readable and the shell works afterwards.
fn install_panic_hook() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = restore();
        report(info);
    }));
}
