//! Project chores run as `cargo xtask <command>`: benchmarks, model fetching,
//! evaluations and one-off pipeline runs. Every command that reports figures
//! takes `--json` and then prints exactly one JSON document on stdout.

use anyhow::{Context, Result, bail};

mod bench;
mod bench_ops;
mod bench_pipeline;
mod eval_faces;
mod eval_mrz;
mod media;
mod models;
mod synth_mrz;
mod verify;
mod verify_document;
mod verify_liveness;

/// The whole number that follows option `name` on the command line.
pub fn number_after<T: std::str::FromStr>(
    args: &mut std::slice::Iter<'_, String>,
    name: &str,
) -> Result<T> {
    args.next()
        .with_context(|| format!("{name} needs a value"))?
        .parse()
        .ok()
        .with_context(|| format!("{name} needs a whole number"))
}

/// The allocator the server uses too (see kyc-server), so that benchmarks
/// measure what runs in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        "bench" => bench::run(rest),
        "models" => models::run(rest),
        "eval" if rest.first().is_some_and(|s| s == "faces") => eval_faces::run(&rest[1..]),
        "eval" if rest.first().is_some_and(|s| s == "mrz") => eval_mrz::run(&rest[1..]),
        "verify" => verify::run(rest),
        other => {
            print_usage();
            bail!("unknown command {other:?}")
        }
    }
}

fn print_usage() {
    eprintln!(
        "usage: cargo xtask <command>\n\
         \n\
         commands:\n\
         \x20 help                 this text\n\
         \x20 bench begin          load POST /begin/ on a release server (--seconds, --connections, --json)\n\
         \x20 models               fetch, convert and verify model files (models --help)\n\
         \x20 eval faces           face detection and match on registry-shipped photos (--json, --dump DIR)\n\
         \x20 bench pipeline       per-stage latency on 1080p inputs, tract vs python onnxruntime (--json)\n\
         \x20 bench ops            where tract spends time, node by node, on the pipeline's tensors (--model, --json)\n\
         \x20 verify face          selfie vs document portrait on your own files: SELFIE DOCUMENT\n\
         \x20 verify document      read an identity document: FRONT [BACK] (--today, --types, --countries)\n\
         \x20 verify liveness      passive or active liveness: FRAME... [--challenges left,up,...]\n\
         \x20 eval mrz             MRZ read rate on synthetic OCR-B documents (--json, --count N, --seed S)"
    );
}
