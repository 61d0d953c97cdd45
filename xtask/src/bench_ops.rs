//! `cargo xtask bench ops [--model NAME] [--runs N] [--threads N] [--top N] [--json]`:
//! where tract spends its time inside each model, node by node.
//!
//! It runs on the input tensors `cargo xtask bench pipeline` last wrote to
//! `target/bench-pipeline/tensors.json` (the shapes the pipelines really run),
//! so run that first. Each node's time is the median over the runs; the
//! report groups them by op, then lists the slowest nodes with the op's own
//! description (kernel shape, strides, groups). A median of whole,
//! unprofiled runs follows, for what the plan costs beyond its nodes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use kyc_verify::runtime::{self, OnnxModel};
use serde_json::{Value, json};

use crate::number_after;

struct Options {
    json: bool,
    runs: usize,
    threads: usize,
    top: usize,
    model: Option<String>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        json: false,
        runs: 5,
        threads: runtime::available_threads(),
        top: 8,
        model: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--runs" => options.runs = number_after::<usize>(&mut args, "--runs")?.clamp(1, 1000),
            "--threads" => {
                options.threads = number_after::<usize>(&mut args, "--threads")?.clamp(1, 64)
            }
            "--top" => options.top = number_after::<usize>(&mut args, "--top")?.clamp(1, 1000),
            "--model" => options.model = Some(args.next().context("--model needs a name")?.clone()),
            other => bail!(
                "unknown option {other:?}; use --model NAME --runs N --threads N --top N --json"
            ),
        }
    }
    Ok(options)
}

fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-pipeline")
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

pub fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let work = work_dir();
    let manifest_path = work.join("tensors.json");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).with_context(|| {
            format!(
                "reading {}; run `cargo xtask bench pipeline` first",
                manifest_path.display()
            )
        })?)
        .with_context(|| format!("parsing {}", manifest_path.display()))?;
    let threads = runtime::configure(options.threads);
    let mut reports = Vec::new();
    for entry in manifest["models"]
        .as_array()
        .context("tensors.json has no models")?
    {
        let name = entry["name"].as_str().unwrap_or_default();
        if options.model.as_deref().is_some_and(|m| m != name) {
            continue;
        }
        let path = PathBuf::from(entry["model"].as_str().context("model path")?);
        let shape: Vec<usize> = serde_json::from_value(entry["shape"].clone())?;
        let input_file = work.join(entry["input"].as_str().context("input file")?);
        let bytes = std::fs::read(&input_file)
            .with_context(|| format!("reading {}", input_file.display()))?;
        let input: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let model = OnnxModel::load_for_shape(&path, &shape)?;
        model.profile(&shape, input.clone())?; // warm-up
        let mut runs = Vec::with_capacity(options.runs);
        for _ in 0..options.runs {
            runs.push(model.profile(&shape, input.clone())?);
        }
        // Whole runs as the pipelines make them, unprofiled: what the plan
        // costs beyond its nodes shows as the difference.
        let mut whole = Vec::with_capacity(options.runs);
        for _ in 0..options.runs {
            let input = input.clone();
            let t = std::time::Instant::now();
            model.run(&shape, input)?;
            whole.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let mut report = report(name, &shape, &runs, options.top);
        report["run_ms"] = json!(round2(median(&mut whole)));
        reports.push(report);
    }
    if reports.is_empty() {
        bail!(
            "no model named {:?} in {}",
            options.model,
            manifest_path.display()
        );
    }
    let result = json!({
        "threads": threads,
        "runs": options.runs,
        "models": reports,
    });
    if options.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_report(&result);
    }
    Ok(())
}

/// Median time per node across the runs, grouped by op and listed slowest first.
fn report(name: &str, shape: &[usize], runs: &[Vec<runtime::NodeTime>], top: usize) -> Value {
    let Some(first) = runs.first() else {
        return Value::Null;
    };
    let nodes: Vec<(usize, f64)> = (0..first.len())
        .map(|i| {
            let mut times: Vec<f64> = runs
                .iter()
                .filter_map(|run| run.get(i).map(|n| n.seconds * 1000.0))
                .collect();
            (i, median(&mut times))
        })
        .collect();
    let total: f64 = nodes.iter().map(|(_, ms)| ms).sum();
    let mut by_op: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    for &(i, ms) in &nodes {
        let entry = by_op.entry(first[i].op.as_str()).or_default();
        entry.0 += 1;
        entry.1 += ms;
    }
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
    let mut slowest = nodes.clone();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    json!({
        "name": name,
        "shape": shape,
        "total_ms": round2(total),
        "ops": ops.iter().map(|(op, (count, ms))| json!({
            "op": op, "nodes": count, "ms": round2(*ms),
            "share": round2(ms / total.max(1e-9) * 100.0),
        })).collect::<Vec<_>>(),
        "slowest": slowest.iter().take(top).map(|&(i, ms)| json!({
            "node": first[i].node, "op": first[i].op, "ms": round2(ms),
            "output": first[i].output, "detail": first[i].detail,
        })).collect::<Vec<_>>(),
    })
}

fn print_report(result: &Value) {
    println!(
        "tract per-node profile, {} threads, median of {} runs",
        result["threads"], result["runs"]
    );
    for model in result["models"].as_array().into_iter().flatten() {
        println!(
            "\n{} {} — {} ms in nodes, {} ms a whole run",
            model["name"].as_str().unwrap_or_default(),
            model["shape"],
            model["total_ms"],
            model["run_ms"]
        );
        for op in model["ops"].as_array().into_iter().flatten() {
            println!(
                "  {:<28} {:>4} nodes {:>9.2} ms {:>6.1}%",
                op["op"].as_str().unwrap_or_default(),
                op["nodes"],
                op["ms"].as_f64().unwrap_or_default(),
                op["share"].as_f64().unwrap_or_default()
            );
        }
        println!("  slowest nodes:");
        for node in model["slowest"].as_array().into_iter().flatten() {
            println!(
                "  {:>8.2} ms {:<20} {:<24} {} {}",
                node["ms"].as_f64().unwrap_or_default(),
                node["op"].as_str().unwrap_or_default(),
                node["node"].as_str().unwrap_or_default(),
                node["output"].as_str().unwrap_or_default(),
                node["detail"].as_str().unwrap_or_default()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_refuse_unknowns() {
        let args: Vec<String> = ["--model", "antispoof", "--runs", "3", "--json"]
            .map(String::from)
            .to_vec();
        let options = parse(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(options.model.as_deref(), Some("antispoof"));
        assert_eq!(options.runs, 3);
        assert!(options.json);
        assert!(parse(&["--fast".to_string()]).is_err());
    }
}
