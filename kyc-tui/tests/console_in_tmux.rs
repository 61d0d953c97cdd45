//! The real console in a real terminal: `kyc-tui` runs inside a private tmux
//! server, pointed at a port where nothing listens. It must say so in plain
//! words, keep running, quit on `q` with status 0 and give the terminal back.
//! Skipped (with a note) where tmux is not installed.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A tmux server of this test's own, killed when the test ends however it ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, shell_command: &str) -> Option<Self> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("tmux is not installed; skipping the console-in-a-terminal test");
            return None;
        }
        let tmux = Self {
            socket: format!("kyc-tui-{name}-{}", std::process::id()),
        };
        let started = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "console",
            "-x",
            "120",
            "-y",
            "30",
            shell_command,
        ]);
        assert!(
            started.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap()
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "console"]).stdout)
            .into_owned()
    }

    /// Waits until the screen shows every one of `texts`; returns the screen.
    fn wait_for(&self, texts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if texts.iter().all(|t| screen.contains(t)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {texts:?}; the screen:\n{screen}"
            );
            sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// Runs the console inside `sh`, which reports its exit status afterwards.
fn console_command(args: &str) -> String {
    let binary = env!("CARGO_BIN_EXE_kyc-tui");
    format!(
        "env -u KYC_TOKEN -u KYC_SERVER -u KYC_DATA_DIR '{binary}' {args}; echo \"console exited with $?\"; sleep 60"
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn an_unreachable_server_is_reported_and_q_quits() {
    let server = format!("http://127.0.0.1:{}", free_port());
    let command = console_command(&format!("--server {server} --token not-checked"));
    let Some(tmux) = Tmux::start("unreachable", &command) else {
        return;
    };

    let screen = tmux.wait_for(&[
        &format!("Error: Cannot reach the server at {server}"),
        "health not answering",
        "not signed in",
        "q quit",
    ]);
    assert!(screen.contains("Sessions · status: all"), "{screen}");

    // Keys still work while the server is away.
    tmux.run(&["send-keys", "-t", "console", "s"]);
    tmux.wait_for(&["status: created"]);
    tmux.run(&["send-keys", "-t", "console", "q"]);
    let screen = tmux.wait_for(&["console exited with 0"]);
    assert!(
        !screen.contains("Sessions · status"),
        "the terminal is given back:\n{screen}"
    );
}

#[test]
fn a_missing_token_is_shown_and_ctrl_c_quits() {
    let data_dir = std::env::temp_dir().join(format!("kyc-tui-no-such-dir-{}", std::process::id()));
    let command = console_command(&format!(
        "--server http://127.0.0.1:{} --data-dir '{}'",
        free_port(),
        data_dir.display()
    ));
    let Some(tmux) = Tmux::start("no-token", &command) else {
        return;
    };

    // The footer shows the newest failure (the server is away); the header
    // says why nobody is signed in.
    tmux.wait_for(&[
        "not signed in (no staff token)",
        "Error: Cannot reach the server",
    ]);
    tmux.run(&["send-keys", "-t", "console", "C-c"]);
    tmux.wait_for(&["console exited with 0"]);
}
