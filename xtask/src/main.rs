//! Project chores run as `cargo xtask <command>`: benchmarks, model fetching,
//! evaluations and one-off pipeline runs. Every command that reports figures
//! takes `--json` and then prints exactly one JSON document on stdout.

use anyhow::{Result, bail};

mod models;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(err) = run(&args) {
        eprintln!("xtask: {err:#}");
        std::process::exit(1);
    }
}

fn run(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        print_usage();
        bail!("no command given");
    };
    match command.as_str() {
        "help" | "--help" | "-h" => {
            print_usage();
            Ok(())
        }
        "models" => models::run(rest),
        other => {
            print_usage();
            bail!("unknown command {other:?}")
        }
    }
    .map(|()| drop(rest))
}

fn print_usage() {
    eprintln!(
        "usage: cargo xtask <command>\n\
         \n\
         commands:\n\
         \x20 help                 this text\n\
         \x20 models               fetch, convert and verify model files (models --help)"
    );
}
