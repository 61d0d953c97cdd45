//! `cargo xtask bench pipeline [--json] [--runs N] [--threads N] [--models DIR]`:
//! how long the verification pipelines take on a 1920×1080 document photo, a
//! 1920×1080 selfie and ten video frames, stage by stage, and how tract's
//! speed compares with onnxruntime's on the same models and inputs.
//!
//! Why a comparison rather than bare figures: this machine is shared and its
//! speed moves with whatever else runs, so each tract figure is set beside an
//! onnxruntime figure measured within the same minute (the Python reference,
//! `xtask/py/reference_pipeline.py`, runs as a child process between the Rust
//! measurements), and the ratio is what to read.
//!
//! What is measured:
//! - per stage (Rust): JPEG decode, quality checks, face detection, alignment,
//!   the face descriptor, one liveness frame (detection alone, then with both
//!   presentation-attack models and the descriptor), MRZ text detection and
//!   recognition;
//! - per model, tract and onnxruntime on byte-identical input tensors (written
//!   by this command to `target/bench-pipeline/`), at the configured thread
//!   count and at one thread each, taking turns in three rounds (a third of
//!   the runs each) so that a slow spell of the machine falls on both; the
//!   largest output difference is reported too, so a fast but wrong runtime
//!   would show;
//! - the whole verdict: document reading (`document::read_document`), selfie
//!   against document portrait (`FacePipeline::compare`) and passive liveness
//!   on ten frames (`LivenessPipeline::passive`, as the product runs it),
//!   JPEG decoding included, against the same pipeline written with
//!   onnxruntime in the reference script; both sequentially (each model on
//!   all threads) and, at two threads or more, with the document read on a
//!   second thread beside the rest (in Python, onnxruntime sessions of one
//!   thread each); the target compares each language's faster way;
//! - the product's verdict: the identity-document, selfie and passive
//!   liveness steps of `kyc_verify::pipeline` (quality checks, rules, portrait
//!   matches), as the server's scoring worker runs them. The 1.5 s target is
//!   read off this one; the reference script does not mirror every rule, so
//!   the Python comparison uses the verdict above.
//!
//! The inputs are made here from nothing but the OCR-B font and a real face
//! photo: a synthetic passport (as `eval mrz` draws them) with the photo in its
//! portrait box, laid on a table; the photo enlarged on a plain background as
//! the selfie; the selfie at 1280×720, shifted a little per frame, as the
//! video frames.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use image::imageops::FilterType;
use image::{DynamicImage, Rgb, RgbImage};
use kyc_verify::decision::DecisionRules;
use kyc_verify::document::{self, DocumentPolicy};
use kyc_verify::face::detect::DetectedFace;
use kyc_verify::face::{FaceMatchConfig, default_model_dir};
use kyc_verify::intake::{self, Intake, IntakeLimits};
use kyc_verify::liveness::LivenessConfig;
use kyc_verify::liveness::passive::{self, ANTISPOOF_FILE, LIVENESS_FILE};
use kyc_verify::mrz::MrzFormat;
use kyc_verify::ocr::{LINE_HEIGHT, MAX_WIDTH, TextBox, bucket_width, crop_upright};
use kyc_verify::pipeline::{self, Models, StepPolicy};
use kyc_verify::quality::{self, Capture, QualityPolicy};
use kyc_verify::runtime::{self, OnnxModel};
use serde_json::{Value, json};
use time::macros::date;

use crate::{media, number_after, synth_mrz};

/// The day the synthetic document is read (its expiry is relative to it).
const TODAY: time::Date = date!(2026 - 11 - 24);
/// Frames of the passive liveness check.
const FRAMES: usize = 10;
/// Size of the liveness video frames.
const FRAME_SIZE: (u32, u32) = (1280, 720);
/// Input sides of the two presentation-attack models (NHWC, RGB 0..1).
const ANTISPOOF_SIDE: u32 = 128;
const LIVENESS_SIDE: u32 = 32;
/// How much wider than its aspect ratio an MRZ line goes to the recogniser
/// (the value `document::read_document` uses).
const MRZ_STRETCH: f32 = 1.5;

struct Options {
    json: bool,
    runs: usize,
    threads: usize,
    models: PathBuf,
    python: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        json: false,
        runs: 10,
        threads: runtime::available_threads(),
        models: default_model_dir(),
        python: true,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--runs" => options.runs = number_after::<usize>(&mut args, "--runs")?.clamp(1, 1000),
            "--threads" => {
                options.threads = number_after::<usize>(&mut args, "--threads")?.clamp(1, 64)
            }
            "--no-python" => options.python = false,
            "--models" => {
                options.models = PathBuf::from(args.next().context("--models needs a directory")?)
            }
            other => bail!(
                "unknown option {other:?}; use --runs N --threads N --models DIR --no-python --json"
            ),
        }
    }
    Ok(options)
}

/// Median and 90th percentile of a sample of milliseconds.
fn summary(ms: &[f64]) -> Value {
    let mut v = ms.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return Value::Null;
    }
    let at = |p: f64| v[(((p * v.len() as f64).ceil() as usize).clamp(1, v.len())) - 1];
    // The minimum is the figure least disturbed by other work on the machine.
    json!({ "median": round2(at(0.5)), "p90": round2(at(0.9)), "min": round2(v[0]) })
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn elapsed_ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Where the inputs were written for the reference script.
struct InputFiles {
    document: PathBuf,
    selfie: PathBuf,
    frames: Vec<PathBuf>,
}

/// The JPEG files the pipeline is fed.
struct Inputs {
    document: Vec<u8>,
    selfie: Vec<u8>,
    frames: Vec<Vec<u8>>,
    mrz: Vec<String>,
}

pub fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    if !options.models.join("centerface.onnx").is_file() {
        bail!(
            "no model files in {} — run `cargo xtask models` first",
            options.models.display()
        );
    }
    let work = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-pipeline");
    std::fs::create_dir_all(&work)?;
    let cache = media::default_cache();
    let skimage = media::ensure(&media::SCIKIT_IMAGE, &cache.join("scikit-image"))?;
    let photo = image::open(skimage.join("skimage/data/astronaut.png"))
        .context("reading astronaut.png")?
        .to_rgb8();
    let inputs = make_inputs(&photo)?;
    let files = InputFiles {
        document: work.join("document.jpg"),
        selfie: work.join("selfie.jpg"),
        frames: (0..inputs.frames.len())
            .map(|i| work.join(format!("frame{i}.jpg")))
            .collect(),
    };
    std::fs::write(&files.document, &inputs.document)?;
    std::fs::write(&files.selfie, &inputs.selfie)?;
    for (path, frame) in files.frames.iter().zip(&inputs.frames) {
        std::fs::write(path, frame)?;
    }

    let threads = runtime::configure(options.threads);
    let models = Models::load(&options.models, FaceMatchConfig::default())?;
    let python = if options.python {
        Some(Python::locate()?)
    } else {
        None
    };

    eprintln!("bench pipeline: warming up (plans are built on first use)…");
    let first = Instant::now();
    let outcome = verdict(&models, &inputs)?;
    let first_verdict_ms = elapsed_ms(first);
    let product_outcome = product_verdict(&models, &inputs)?;

    eprintln!("bench pipeline: {} runs of every stage…", options.runs);
    let stages = stage_times(&models, &inputs, options.runs)?;

    // Per model, tract then onnxruntime at each thread count.
    let specs = model_inputs(&models, &inputs)?;
    let mut model_rows = Vec::new();
    let mut thread_counts = vec![threads];
    if threads != 1 {
        thread_counts.push(1);
    }
    // Each phase with its own models alone in memory: the product's plans
    // keep their outputs (`graph`'s kept outputs, 256 MB for the process,
    // of which one verdict's plans take about 200), and a second copy
    // loaded beside them for the comparison found the budget spent and
    // ran slower than the product's copy does.
    drop(models);
    let loaded = load_models(&options.models, &specs, &work)?;
    // tract and onnxruntime take turns, a few runs of every model each,
    // so that a minute when other work slows the machine down falls on
    // both rather than on whichever happened to be running.
    let rounds = options.runs.clamp(1, ROUNDS);
    let per_round = options.runs.div_ceil(rounds);
    for &t in &thread_counts {
        runtime::configure(t);
        let mut tract: Vec<Vec<f64>> = vec![Vec::new(); specs.len()];
        let mut ort: Vec<Vec<f64>> = vec![Vec::new(); specs.len()];
        let mut diffs: Vec<Option<Value>> = vec![None; specs.len()];
        for round in 1..=rounds {
            eprintln!(
                "bench pipeline: models with tract, {t} thread(s), round {round} of {rounds}…"
            );
            for (times, more) in tract
                .iter_mut()
                .zip(time_models(&loaded, &specs, per_round)?)
            {
                times.extend(more);
            }
            let Some(py) = &python else {
                continue;
            };
            eprintln!(
                "bench pipeline: models with onnxruntime, {t} thread(s), round {round} of {rounds}…"
            );
            let result = py.models(&work.join("tensors.json"), t, per_round)?;
            for (i, spec) in specs.iter().enumerate() {
                let row = result["models"]
                    .as_array()
                    .and_then(|rows| rows.iter().find(|r| r["name"] == spec.name.as_str()));
                if let Some(row) = row {
                    let samples = row["samples"].as_array().into_iter().flatten();
                    ort[i].extend(samples.filter_map(Value::as_f64));
                    diffs[i].get_or_insert_with(|| row["max_abs_diff"].clone());
                }
            }
        }
        for (i, spec) in specs.iter().enumerate() {
            let tract_summary = summary(&tract[i]);
            let ort_summary = (!ort[i].is_empty()).then(|| summary(&ort[i]));
            let ratio = ort_summary
                .as_ref()
                .and_then(|o| o["median"].as_f64())
                .zip(tract_summary["median"].as_f64())
                .map(|(o, t)| round2(t / o));
            model_rows.push(json!({
                "model": spec.name,
                "file": spec.file,
                "shape": spec.shape,
                "threads": t,
                "rounds": rounds,
                "tract_ms": tract_summary,
                "onnxruntime_ms": ort_summary,
                "ratio": ratio,
                "max_abs_diff": diffs[i],
            }));
        }
    }

    drop(loaded);
    let models = Models::load(&options.models, FaceMatchConfig::default())?;
    eprintln!("bench pipeline: the verdict's models again, plans built on the way…");
    verdict(&models, &inputs)?;
    product_verdict(&models, &inputs)?;

    // The whole verdict, Rust and Python taking turns as above, at each
    // thread count.
    let mut verdicts = Vec::new();
    for &t in &thread_counts {
        runtime::configure(t);
        let (mut rust_ms, mut parallel_ms, mut product_ms) = (Vec::new(), Vec::new(), Vec::new());
        let (mut python_ms, mut python_side_ms) = (Vec::new(), Vec::new());
        let mut py: Option<Value> = None;
        for round in 1..=rounds {
            eprintln!(
                "bench pipeline: whole verdict with tract, {t} thread(s), round {round} of {rounds}…"
            );
            for _ in 0..per_round {
                let start = Instant::now();
                verdict(&models, &inputs)?;
                rust_ms.push(elapsed_ms(start));
            }
            if let Some(python) = &python {
                eprintln!(
                    "bench pipeline: whole verdict with onnxruntime, {t} thread(s), round {round} of {rounds}…"
                );
                let result = python.verdict(
                    &options.models,
                    &files,
                    models.liveness.config(),
                    t,
                    per_round,
                )?;
                let samples = |key: &str| -> Vec<f64> {
                    result[key]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_f64)
                        .collect()
                };
                python_ms.extend(samples("verdict_samples"));
                python_side_ms.extend(samples("verdict_side_by_side_samples"));
                py = Some(result);
            }
            for _ in 0..per_round {
                let start = Instant::now();
                verdict_parallel(&models, &inputs)?;
                parallel_ms.push(elapsed_ms(start));
            }
            eprintln!(
                "bench pipeline: the product's verdict, {t} thread(s), round {round} of {rounds}…"
            );
            for _ in 0..per_round {
                let start = Instant::now();
                product_verdict(&models, &inputs)?;
                product_ms.push(elapsed_ms(start));
            }
        }
        // The Python figures over every round (the reply of the last round
        // keeps its stage times and outcome).
        if let Some(p) = py.as_mut() {
            p["verdict_ms"] = summary(&python_ms);
            p["verdict_side_by_side_ms"] = if python_side_ms.is_empty() {
                Value::Null
            } else {
                summary(&python_side_ms)
            };
        }
        let rust = summary(&rust_ms);
        // Each language at its best use of the cores: its sequential
        // pipeline or the one with the document read on a second thread.
        let fastest = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // At one thread nothing may run side by side.
        let side = if t >= 2 {
            summary(&parallel_ms)["median"].as_f64()
        } else {
            None
        };
        let rust_best = fastest(rust["median"].as_f64(), side);
        let python_best = py.as_ref().and_then(|p| {
            fastest(
                p["verdict_ms"]["median"].as_f64(),
                p["verdict_side_by_side_ms"]["median"].as_f64(),
            )
        });
        let best_ratio = rust_best.zip(python_best).map(|(r, p)| round2(r / p));
        let ratio = py
            .as_ref()
            .and_then(|p| p["verdict_ms"]["median"].as_f64())
            .zip(rust["median"].as_f64())
            .map(|(p, r)| round2(r / p));
        verdicts.push(json!({
            "threads": t,
            "rust_ms": rust,
            "rust_two_pipelines_side_by_side_ms": summary(&parallel_ms),
            "python_two_pipelines_side_by_side_ms": py.as_ref().map(|p| p["verdict_side_by_side_ms"].clone()),
            "best_ratio": best_ratio,
            "rust_product_ms": summary(&product_ms),
            "python_ms": py.as_ref().map(|p| p["verdict_ms"].clone()),
            "ratio": ratio,
            "python_stages_ms": py.as_ref().map(|p| p["stages_ms"].clone()),
            "python_outcome": py.as_ref().map(|p| p["outcome"].clone()),
        }));
    }
    runtime::configure(threads);

    let report = json!({
        "benchmark": "pipeline",
        "threads": threads,
        "runs": options.runs,
        "inputs": {
            "document": "1920×1080 JPEG q90: synthetic TD3 passport in OCR-B with astronaut.png as its portrait, on a table",
            "selfie": "1920×1080 JPEG q90: astronaut.png enlarged on a plain background",
            "frames": format!("{FRAMES} × {}×{} JPEG q90: the selfie scaled down, shifted a few pixels each", FRAME_SIZE.0, FRAME_SIZE.1),
            "mrz_printed": inputs.mrz,
            "liveness_detector_long_side": models.liveness.config().detector_long_side,
            "face_detector_long_side": models.face.config().detector.long_side,
        },
        "first_verdict_ms_with_plan_builds": round2(first_verdict_ms),
        "stages_ms": stages,
        "models": model_rows,
        "verdict": verdicts,
        "rust_outcome": outcome,
        "rust_product_outcome": product_outcome,
        "targets": targets(&verdicts, &model_rows, threads),
    });
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// The acceptance targets, read off the figures.
fn targets(verdicts: &[Value], models: &[Value], threads: usize) -> Value {
    let at = verdicts.iter().find(|v| v["threads"] == threads);
    // The time limit holds for the product's own path; the comparison with
    // Python for the pipeline both languages run, each language timed both
    // sequentially and with the document read on a second thread, the
    // faster of the two counting.
    let verdict_ms = at.and_then(|v| v["rust_product_ms"]["median"].as_f64());
    let verdict_ratio = at.and_then(|v| v["best_ratio"].as_f64());
    let worst_model = models
        .iter()
        .filter(|m| m["threads"] == threads)
        .filter_map(|m| Some((m["model"].as_str()?, m["ratio"].as_f64()?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    json!({
        "verdict_at_most_1500_ms": verdict_ms.map(|ms| ms <= 1500.0),
        "verdict_not_slower_than_python": verdict_ratio.map(|r| r <= 1.0),
        "every_model_at_most_1_5x_onnxruntime": worst_model.map(|(_, r)| r <= 1.5),
        "worst_model": worst_model.map(|(name, r)| json!({ "model": name, "ratio": r })),
    })
}

fn print_table(r: &Value) {
    let f = |v: &Value| match v.as_f64() {
        Some(x) => format!("{x:.1}"),
        None => "–".into(),
    };
    println!(
        "pipeline bench: {} runs, {} thread(s); medians (p90) in ms",
        r["runs"], r["threads"]
    );
    println!("\nstages (tract):");
    if let Some(stages) = r["stages_ms"].as_object() {
        for (name, s) in stages {
            println!("  {name:<28} {:>8} ({})", f(&s["median"]), f(&s["p90"]));
        }
    }
    println!("\nmodels, tract vs onnxruntime on identical inputs (taking turns, {ROUNDS} rounds):");
    println!(
        "  {:<22} {:<18} {:>3}  {:>16}  {:>16}  {:>6}  {:>9}",
        "model", "shape", "thr", "tract", "onnxruntime", "ratio", "max diff"
    );
    for m in r["models"].as_array().into_iter().flatten() {
        let shape: Vec<String> = m["shape"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| d.to_string())
            .collect();
        println!(
            "  {:<22} {:<18} {:>3}  {:>7} ({:>6})  {:>7} ({:>6})  {:>6}  {:>9}",
            m["model"].as_str().unwrap_or("?"),
            shape.join("×"),
            m["threads"],
            f(&m["tract_ms"]["median"]),
            f(&m["tract_ms"]["p90"]),
            f(&m["onnxruntime_ms"]["median"]),
            f(&m["onnxruntime_ms"]["p90"]),
            m["ratio"]
                .as_f64()
                .map(|x| format!("{x:.2}"))
                .unwrap_or("–".into()),
            m["max_abs_diff"]
                .as_f64()
                .map(|x| format!("{x:.1e}"))
                .unwrap_or("–".into()),
        );
    }
    println!(
        "\nwhole verdict (document + selfie match + {FRAMES}-frame passive liveness, decoding included):"
    );
    for v in r["verdict"].as_array().into_iter().flatten() {
        println!(
            "  {} thread(s): Rust/tract {} ({})  Python/onnxruntime {} ({})  ratio {}",
            v["threads"],
            f(&v["rust_ms"]["median"]),
            f(&v["rust_ms"]["p90"]),
            f(&v["python_ms"]["median"]),
            f(&v["python_ms"]["p90"]),
            v["ratio"]
                .as_f64()
                .map(|x| format!("{x:.2}"))
                .unwrap_or("–".into()),
        );
        println!(
            "    document reading beside face match + liveness on two threads: Rust {} ({})  Python {} ({})",
            f(&v["rust_two_pipelines_side_by_side_ms"]["median"]),
            f(&v["rust_two_pipelines_side_by_side_ms"]["p90"]),
            f(&v["python_two_pipelines_side_by_side_ms"]["median"]),
            f(&v["python_two_pipelines_side_by_side_ms"]["p90"])
        );
        println!(
            "    each language at its best (the faster of the two ways): ratio {}",
            v["best_ratio"]
                .as_f64()
                .map(|x| format!("{x:.2}"))
                .unwrap_or("–".into()),
        );
        println!(
            "    Rust, the product's steps (kyc_verify::pipeline, every check and rule): {} ({})",
            f(&v["rust_product_ms"]["median"]),
            f(&v["rust_product_ms"]["p90"])
        );
        if let Some(stages) = v["python_stages_ms"].as_object() {
            let parts: Vec<String> = stages
                .iter()
                .map(|(k, s)| format!("{k} {}", f(&s["median"])))
                .collect();
            println!("    python stages: {}", parts.join(", "));
        }
    }
    println!(
        "\nfirst verdict, plans built on the way: {} ms",
        f(&r["first_verdict_ms_with_plan_builds"])
    );
    println!("outcome (Rust): {}", r["rust_outcome"]);
    let product = &r["rust_product_outcome"];
    println!(
        "outcome (the product's steps): identity document {}, selfie {} (similarity {}), passive liveness {}",
        product["identity_document"]["verdict"],
        product["selfie"]["verdict"],
        product["selfie_similarity"]
            .as_f64()
            .map_or("–".into(), |x| format!("{x:.3}")),
        product["passive_liveness"]["verdict"]
    );
    if let Some(p) = r["verdict"].get(0).map(|v| &v["python_outcome"]) {
        println!("outcome (Python): {p}");
    }
    println!("targets: {}", r["targets"]);
}

// ------------------------------------------------------------------ inputs

fn jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(image)
        .context("JPEG encoding")?;
    Ok(out)
}

/// The document, the selfie and the frames, all from `photo` (a portrait).
fn make_inputs(photo: &RgbImage) -> Result<Inputs> {
    let font = synth_mrz::load_font(Path::new(synth_mrz::OCR_B_PATH))?;
    // The first seed that gives a passport: two lines of 44, the widest zone.
    let (mut rng, doc) = (0u64..64)
        .find_map(|seed| {
            let mut rng = synth_mrz::Rng::new(seed);
            let doc = synth_mrz::random_document(&mut rng, TODAY).ok()?;
            (doc.format == MrzFormat::Td3).then_some((rng, doc))
        })
        .context("no passport among the first 64 seeds")?;
    let mut card = synth_mrz::render_card(&mut rng, &font, &doc);
    // The portrait box as `render_card` lays it out (28 % × 50 % of the
    // card, 4 mm from the left, 16 % from the top); the card is 125 mm wide.
    let ppm = card.width() as f32 / 125.0;
    let (w, h) = (card.width() as f32, card.height() as f32);
    let (bx, by, bw, bh) = (4.0 * ppm, 0.16 * h, 0.28 * w, 0.5 * h);
    let (pw, ph) = photo.dimensions();
    // The photo cropped to the box's aspect around its upper middle (the face).
    let crop_w = (ph as f32 * bw / bh).min(pw as f32) as u32;
    let crop_x = (pw - crop_w) / 2;
    let portrait = image::imageops::crop_imm(photo, crop_x, 0, crop_w, ph).to_image();
    let portrait = image::imageops::resize(&portrait, bw as u32, bh as u32, FilterType::Triangle);
    image::imageops::overlay(&mut card, &portrait, bx as i64, by as i64);
    // 1200 px wide: the card fills most of the frame with the table around
    // it, as a document photo does.
    let card = image::imageops::resize(&card, 1200, (1200.0 * h / w) as u32, FilterType::Triangle);
    let mut table = RgbImage::from_fn(1920, 1080, |x, y| {
        let v = (70 + (x / 16 + y / 24) % 12) as u8;
        Rgb([v, v.saturating_sub(8), v.saturating_sub(16)])
    });
    image::imageops::overlay(
        &mut table,
        &card,
        i64::from((1920 - card.width()) / 2),
        i64::from(1080u32.saturating_sub(card.height()) / 2),
    );
    let document = jpeg(&table, 90)?;

    let selfie_image = selfie_scene(photo, 0);
    let selfie = jpeg(&selfie_image, 90)?;
    let frames = (0..FRAMES)
        .map(|i| {
            let scene = selfie_scene(photo, i as i64 * 6);
            let frame =
                image::imageops::resize(&scene, FRAME_SIZE.0, FRAME_SIZE.1, FilterType::Triangle);
            jpeg(&frame, 90)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Inputs {
        document,
        selfie,
        frames,
        mrz: doc.lines,
    })
}

/// The photo enlarged to 900 px on a 1920×1080 wall, `shift` pixels right of centre.
fn selfie_scene(photo: &RgbImage, shift: i64) -> RgbImage {
    let mut scene = RgbImage::from_fn(1920, 1080, |x, y| {
        let v = (180 + (x + y) / 60 % 20) as u8;
        Rgb([v, v, v.saturating_sub(12)])
    });
    let big = image::imageops::resize(photo, 900, 900, FilterType::Triangle);
    image::imageops::overlay(&mut scene, &big, 510 + shift, 90);
    scene
}

fn decode(bytes: &[u8]) -> Result<DynamicImage> {
    match intake::intake(bytes, &IntakeLimits::default()) {
        Ok(Intake::Image(image)) => Ok(image.image),
        Ok(Intake::Pdf(_)) => bail!("a PDF where an image was expected"),
        Err(err) => bail!("intake refused the image: {err}"),
    }
}

// ------------------------------------------------------------------ the verdict

/// The whole verdict, timed as the server would run it: decode, read the
/// document, match the selfie against its portrait, passive liveness on the
/// frames. Returns a summary of what it found, to compare with Python's.
fn verdict(models: &Models, inputs: &Inputs) -> Result<Value> {
    let document = decode(&inputs.document)?.to_rgb8();
    let selfie = decode(&inputs.selfie)?.to_rgb8();
    let reading =
        document::read_document(&models.ocr, &document, TODAY, &DocumentPolicy::default())?;
    let matched = models.face.compare(&selfie, &document)?;
    let liveness = passive_liveness(models, &inputs.frames)?;
    Ok(json!({
        "mrz_lines": reading.lines.iter().map(|l| l.text.clone()).collect::<Vec<_>>(),
        "mrz_passed": reading.passed(),
        "similarity": matched.similarity.map(|s| round3(f64::from(s))),
        "liveness": liveness,
    }))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The same verdict with its independent parts on two threads: the
/// document reading on one, the face match and liveness on the other. A
/// small model gains little from splitting its matrix products across
/// cores; two pipelines side by side keep both cores busy.
fn verdict_parallel(models: &Models, inputs: &Inputs) -> Result<()> {
    let document = decode(&inputs.document)?.to_rgb8();
    std::thread::scope(|scope| -> Result<()> {
        // Each side runs its models on its own thread, as the Python side
        // runs onnxruntime sessions of one thread each.
        let reading = scope.spawn(|| {
            runtime::alone(|| {
                document::read_document(&models.ocr, &document, TODAY, &DocumentPolicy::default())
            })
        });
        let selfie = decode(&inputs.selfie)?.to_rgb8();
        runtime::alone(|| models.face.compare(&selfie, &document))?;
        passive_liveness(models, &inputs.frames)?;
        match reading.join() {
            Ok(result) => result.map(|_| ()).map_err(Into::into),
            Err(_) => bail!("the document reading thread panicked"),
        }
    })
}

/// Passive liveness over the video frames, as the product runs it
/// (`LivenessPipeline::passive`): per frame, the face found at the liveness
/// detector's size and scored by both presentation-attack models; three
/// frames described for the same-person check.
fn passive_liveness(models: &Models, frames: &[Vec<u8>]) -> Result<Value> {
    let frames = frames
        .iter()
        .map(|bytes| Ok(decode(bytes)?.to_rgb8()))
        .collect::<Result<Vec<_>>>()?;
    let report = models.liveness.passive(&frames)?;
    let scores = || report.frames.iter().filter_map(|f| f.spoof);
    let mut spoof: Vec<f32> = scores().map(|s| s.spoof).collect();
    let mut antispoof: Vec<f32> = scores().map(|s| s.antispoof).collect();
    let median = |v: &mut [f32]| passive::median(v).map(|m| round3(f64::from(m)));
    Ok(json!({
        "frames_with_face": report.frames.iter().filter(|f| f.face.is_some()).count(),
        "described": report.frames.iter().filter(|f| f.descriptor.is_some()).count(),
        "spoof": median(&mut spoof),
        "antispoof": median(&mut antispoof),
        "passed": report.passed(),
    }))
}

/// The verdict exactly as the server's scoring worker reaches it: the
/// identity-document, selfie and passive liveness steps of
/// `kyc_verify::pipeline`, quality checks, decisions and portrait matches
/// included. Rust only: the reference script mirrors the models and the
/// image handling, not every rule.
fn product_verdict(models: &Models, inputs: &Inputs) -> Result<Value> {
    let document = decode(&inputs.document)?;
    let selfie = decode(&inputs.selfie)?;
    let frames = inputs
        .frames
        .iter()
        .map(|bytes| decode(bytes))
        .collect::<Result<Vec<_>>>()?;
    let policy = product_policy();
    let (read, portrait) = pipeline::identity_document(models, &document, None, &policy)?;
    let matched = pipeline::selfie(models, &selfie, portrait.as_ref(), &policy)?;
    let live = pipeline::passive_liveness(models, &frames, portrait.as_ref(), &policy)?;
    Ok(json!({
        "identity_document": read.decision,
        "selfie": matched.decision,
        "selfie_similarity": matched.face_similarity,
        "passive_liveness": live.decision,
    }))
}

/// The step policy of the product verdict: default rules, the bench's day,
/// and no HD requirement (the video frames are 1280×720).
fn product_policy() -> StepPolicy {
    StepPolicy {
        require_hd: false,
        document: DocumentPolicy::default(),
        today: TODAY,
        rules: DecisionRules::default(),
    }
}

fn largest(faces: &[DetectedFace]) -> Option<&DetectedFace> {
    faces
        .iter()
        .max_by(|a, b| a.bbox.area().total_cmp(&b.bbox.area()))
}

// ------------------------------------------------------------------ stages

fn stage_times(models: &Models, inputs: &Inputs, runs: usize) -> Result<Value> {
    let names = [
        "decode_document_jpeg",
        "decode_selfie_jpeg",
        "quality_document_and_selfie",
        "face_detect_selfie",
        "face_align",
        "face_embed",
        "liveness_frame_detect",
        "liveness_frame_detect_score_describe",
        "ocr_det",
        "ocr_rec_mrz_lines",
        "read_document",
        "face_compare",
        "liveness_10_frames",
        "product_identity_document",
        "product_selfie",
        "product_passive_liveness",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mrz_mask = models
        .ocr
        .recognizer
        .dictionary()
        .mask(|s| document::mrz_char(s).is_some());
    let frame0 = decode(&inputs.frames[0])?.to_rgb8();
    let frames = inputs
        .frames
        .iter()
        .map(|bytes| decode(bytes))
        .collect::<Result<Vec<_>>>()?;
    let product_policy = product_policy();
    for _ in 0..runs {
        let mut lap = Vec::with_capacity(names.len());
        let t = Instant::now();
        let document_dyn = decode(&inputs.document)?;
        lap.push(elapsed_ms(t));
        let t = Instant::now();
        let selfie_dyn = decode(&inputs.selfie)?;
        lap.push(elapsed_ms(t));
        let t = Instant::now();
        let policy = |capture| QualityPolicy {
            capture,
            require_hd: true,
        };
        quality::assess(&document_dyn, &policy(Capture::IdentityDocument));
        quality::assess(&selfie_dyn, &policy(Capture::Face));
        lap.push(elapsed_ms(t));
        let (document, selfie) = (document_dyn.to_rgb8(), selfie_dyn.to_rgb8());

        let t = Instant::now();
        let faces = models.face.detect(&selfie)?;
        lap.push(elapsed_ms(t));
        let face = largest(&faces).context("no face in the selfie")?;
        let t = Instant::now();
        let crop = models.face.align(&selfie, face)?;
        lap.push(elapsed_ms(t));
        let t = Instant::now();
        models.face.embedder().describe(&crop)?;
        lap.push(elapsed_ms(t));

        let t = Instant::now();
        models.liveness.observe(&frame0, false, false)?;
        lap.push(elapsed_ms(t));
        let t = Instant::now();
        models.liveness.observe(&frame0, true, true)?;
        lap.push(elapsed_ms(t));

        let t = Instant::now();
        let boxes = models.ocr.detector.detect(&document)?;
        lap.push(elapsed_ms(t));
        let t = Instant::now();
        for rect in mrz_boxes(&boxes) {
            models
                .ocr
                .recognizer
                .decode_box(&document, &rect, Some(&mrz_mask), MRZ_STRETCH)?;
        }
        lap.push(elapsed_ms(t));

        let t = Instant::now();
        document::read_document(&models.ocr, &document, TODAY, &DocumentPolicy::default())?;
        lap.push(elapsed_ms(t));
        let t = Instant::now();
        models.face.compare(&selfie, &document)?;
        lap.push(elapsed_ms(t));
        let t = Instant::now();
        passive_liveness(models, &inputs.frames)?;
        lap.push(elapsed_ms(t));

        // The product's steps, each from its decoded captures.
        let t = Instant::now();
        let (_, portrait) =
            pipeline::identity_document(models, &document_dyn, None, &product_policy)?;
        lap.push(elapsed_ms(t));
        let t = Instant::now();
        pipeline::selfie(models, &selfie_dyn, portrait.as_ref(), &product_policy)?;
        lap.push(elapsed_ms(t));
        let t = Instant::now();
        pipeline::passive_liveness(models, &frames, portrait.as_ref(), &product_policy)?;
        lap.push(elapsed_ms(t));
        for (slot, ms) in times.iter_mut().zip(lap) {
            slot.push(ms);
        }
    }
    let mut out = serde_json::Map::new();
    for (name, ms) in names.iter().zip(&times) {
        out.insert((*name).to_string(), summary(ms));
    }
    Ok(Value::Object(out))
}

/// The lowest two long text lines, widened as `read_document` widens them.
fn mrz_boxes(boxes: &[TextBox]) -> Vec<TextBox> {
    document::line_candidates(boxes)
        .iter()
        .rev()
        .take(2)
        .map(|b| TextBox {
            width: b.width + b.height,
            ..*b
        })
        .collect()
}

// ------------------------------------------------------------------ per model

/// One model and the input tensor both runtimes get.
struct ModelInput {
    name: String,
    file: String,
    shape: Vec<usize>,
    input: Vec<f32>,
}

/// The input tensors of every model, made from the bench inputs the way the
/// pipelines make them (so the shapes are the ones the pipeline runs).
fn model_inputs(models: &Models, inputs: &Inputs) -> Result<Vec<ModelInput>> {
    let document = decode(&inputs.document)?.to_rgb8();
    let selfie = decode(&inputs.selfie)?.to_rgb8();
    let frame = decode(&inputs.frames[0])?.to_rgb8();
    let mut out = Vec::new();

    // CenterFace at the selfie's and at the liveness frame's detection size.
    for (name, image, long_side) in [
        (
            "centerface_selfie",
            &selfie,
            models.face.config().detector.long_side,
        ),
        (
            "centerface_frame",
            &frame,
            models.liveness.config().detector_long_side,
        ),
    ] {
        let (w0, h0) = image.dimensions();
        let scale = long_side as f32 / w0.max(h0) as f32;
        let (w, h) = (
            ((w0 as f32 * scale).round() as u32).max(1),
            ((h0 as f32 * scale).round() as u32).max(1),
        );
        let small = image::imageops::resize(image, w, h, FilterType::Triangle);
        let (pw, ph) = (
            (w as usize).div_ceil(32) * 32,
            (h as usize).div_ceil(32) * 32,
        );
        out.push(ModelInput {
            name: name.into(),
            file: "centerface.onnx".into(),
            shape: vec![1, 3, ph, pw],
            input: bgr_planes(&small, pw, ph, f32::from),
        });
    }

    let faces = models.face.detect(&selfie)?;
    let face = largest(&faces).context("no face in the selfie")?;
    let crop = models.face.align(&selfie, face)?;
    let mean = [93.5940f32, 104.7624, 129.1863];
    out.push(ModelInput {
        name: "faceres_deep".into(),
        file: "faceres-deep.onnx".into(),
        shape: vec![1, 224, 224, 3],
        input: crop
            .pixels()
            .flat_map(|p| {
                let [r, g, b] = p.0.map(f32::from);
                [b - mean[0], g - mean[1], r - mean[2]]
            })
            .collect(),
    });

    let frame_face = models
        .liveness
        .observe(&frame, false, false)?
        .face
        .context("no face in the first frame")?;
    let margin = models.liveness.config().crop_margin;
    for (name, file, side) in [
        ("antispoof", ANTISPOOF_FILE, ANTISPOOF_SIDE),
        ("liveness", LIVENESS_FILE, LIVENESS_SIDE),
    ] {
        out.push(ModelInput {
            name: name.into(),
            file: file.into(),
            shape: vec![1, side as usize, side as usize, 3],
            input: passive::crop_input(&frame, &frame_face.bbox, margin, side),
        });
    }

    // PP-OCR: the detector at the document's network size, the recogniser on
    // the lowest MRZ line.
    let options = models.ocr.detector.options();
    let (nw, nh) =
        kyc_verify::ocr::network_size(document.width(), document.height(), options.max_side);
    let (pw, ph) = (nw.div_ceil(160) * 160, nh.div_ceil(160) * 160);
    let small = image::imageops::resize(&document, nw, nh, FilterType::Triangle);
    let ocr_value = |v: u8| (f32::from(v) / 255.0 - 0.5) / 0.5;
    out.push(ModelInput {
        name: "ppocr_det".into(),
        file: "ppocr-v4-det.onnx".into(),
        shape: vec![1, 3, ph as usize, pw as usize],
        input: bgr_planes(&small, pw as usize, ph as usize, ocr_value),
    });
    let boxes = models.ocr.detector.detect(&document)?;
    let line_box = mrz_boxes(&boxes)
        .into_iter()
        .next()
        .context("no MRZ line found on the bench document")?;
    let line = crop_upright(&document, &line_box, LINE_HEIGHT, MAX_WIDTH, MRZ_STRETCH);
    let width = bucket_width(line.width()) as usize;
    out.push(ModelInput {
        name: "ppocr_rec".into(),
        file: "ppocr-v4-rec.onnx".into(),
        shape: vec![1, 3, LINE_HEIGHT as usize, width],
        input: bgr_planes(&line, width, LINE_HEIGHT as usize, ocr_value),
    });
    Ok(out)
}

/// Planes B, G, R of `image` (each value mapped by `value`) in the top-left
/// of a `width`×`height` zero canvas: the NCHW input CenterFace and PP-OCR take.
fn bgr_planes(
    image: &RgbImage,
    width: usize,
    height: usize,
    value: impl Fn(u8) -> f32,
) -> Vec<f32> {
    let plane = width * height;
    let mut out = vec![0f32; 3 * plane];
    for (x, y, p) in image.enumerate_pixels() {
        let (x, y) = (x as usize, y as usize);
        if x >= width || y >= height {
            continue;
        }
        for c in 0..3 {
            out[c * plane + y * width + x] = value(p.0[2 - c]);
        }
    }
    out
}

fn write_f32(path: &Path, values: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Turns of tract and onnxruntime in the per-model comparison.
const ROUNDS: usize = 3;

/// Loads every model for its input's shape (tract builds the optimised
/// plan), runs it once, and writes its input, its outputs and
/// `tensors.json` for the Python side (which also compares the outputs)
/// and for `bench ops`.
fn load_models(dir: &Path, specs: &[ModelInput], work: &Path) -> Result<Vec<OnnxModel>> {
    let mut manifest = Vec::new();
    let mut loaded = Vec::new();
    for spec in specs {
        let model = OnnxModel::load_for_shape(&dir.join(&spec.file), &spec.shape)?;
        let outputs = model.run_flat(&spec.shape, spec.input.clone())?;
        let input_file = format!("{}.input.f32", spec.name);
        write_f32(&work.join(&input_file), &spec.input)?;
        let mut output_files = Vec::new();
        for (i, output) in outputs.iter().enumerate() {
            let file = format!("{}.tract-output{i}.f32", spec.name);
            write_f32(&work.join(&file), output)?;
            output_files.push(json!({ "file": file, "len": output.len() }));
        }
        manifest.push(json!({
            "name": spec.name,
            "model": dir.join(&spec.file),
            "shape": spec.shape,
            "input": input_file,
            "tract_outputs": output_files,
        }));
        loaded.push(model);
    }
    std::fs::write(
        work.join("tensors.json"),
        serde_json::to_string_pretty(&json!({ "dir": work, "models": manifest }))?,
    )?;
    Ok(loaded)
}

/// `runs` timed runs of every loaded model, in milliseconds, after one
/// untimed run that brings its weights back into cache (the Python side
/// does the same: its first run of each round compares the outputs).
fn time_models(loaded: &[OnnxModel], specs: &[ModelInput], runs: usize) -> Result<Vec<Vec<f64>>> {
    let mut all = Vec::new();
    for (model, spec) in loaded.iter().zip(specs) {
        model.run(&spec.shape, spec.input.clone())?;
        let mut ms = Vec::with_capacity(runs);
        for _ in 0..runs {
            let input = spec.input.clone();
            let t = Instant::now();
            model.run(&spec.shape, input)?;
            ms.push(elapsed_ms(t));
        }
        all.push(ms);
    }
    Ok(all)
}

// ------------------------------------------------------------------ python

/// The reference script and the interpreter of the models virtualenv (made
/// by `cargo xtask models`), with Pillow for JPEG decoding installed beside it.
struct Python {
    interpreter: PathBuf,
    script: PathBuf,
    extra_path: PathBuf,
}

/// The Pillow the reference script decodes JPEG with (the models virtualenv
/// has none); installed with pip into a directory of its own, once.
const PILLOW: &str = "pillow==12.0.0";

impl Python {
    fn locate() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cache = root.join("target/models-cache");
        let interpreter = cache.join("venv/bin/python");
        if !interpreter.is_file() {
            bail!(
                "{} missing: run `cargo xtask models` once (it makes the virtualenv with onnxruntime), or pass --no-python",
                interpreter.display()
            );
        }
        let extra_path = cache.join("bench-pillow");
        if !extra_path.join("PIL").is_dir() {
            eprintln!("bench pipeline: installing {PILLOW} for the reference script…");
            let status = Command::new(&interpreter)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--no-deps", "--only-binary=:all:", "--target"])
                .arg(&extra_path)
                .arg(PILLOW)
                .status()
                .context("running pip")?;
            if !status.success() {
                bail!(
                    "pip could not install {PILLOW} into {}",
                    extra_path.display()
                );
            }
        }
        Ok(Self {
            interpreter,
            script: root.join("xtask/py/reference_pipeline.py"),
            extra_path,
        })
    }

    fn call(&self, args: &[String]) -> Result<Value> {
        let out = Command::new(&self.interpreter)
            .arg(&self.script)
            .args(args)
            .env("PYTHONPATH", &self.extra_path)
            .output()
            .context("starting the reference script")?;
        if !out.status.success() {
            bail!(
                "reference_pipeline.py failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).context("reference_pipeline.py printed no JSON")
    }

    fn models(&self, manifest: &Path, threads: usize, runs: usize) -> Result<Value> {
        self.call(&[
            "models".into(),
            manifest.display().to_string(),
            "--threads".into(),
            threads.to_string(),
            "--runs".into(),
            runs.to_string(),
        ])
    }

    fn verdict(
        &self,
        models: &Path,
        files: &InputFiles,
        liveness: &LivenessConfig,
        threads: usize,
        runs: usize,
    ) -> Result<Value> {
        let mut args = vec![
            "verdict".into(),
            "--models".into(),
            models.display().to_string(),
            "--document".into(),
            files.document.display().to_string(),
            "--selfie".into(),
            files.selfie.display().to_string(),
            "--threads".into(),
            threads.to_string(),
            "--runs".into(),
            runs.to_string(),
            "--liveness-long-side".into(),
            liveness.detector_long_side.to_string(),
            "--crop-margin".into(),
            liveness.crop_margin.to_string(),
            "--identity-frames".into(),
            liveness.identity_frames.to_string(),
            "--second-face-area".into(),
            liveness.second_face_area.to_string(),
            "--frames".into(),
        ];
        args.extend(files.frames.iter().map(|p| p.display().to_string()));
        self.call(&args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_median_and_p90() {
        let s = summary(&[5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        assert_eq!(s["median"], 5.0);
        assert_eq!(s["p90"], 9.0);
        assert!(summary(&[]).is_null());
    }

    #[test]
    fn options_parse_and_refuse_unknowns() {
        let o = parse(&["--json".into(), "--runs".into(), "3".into()]).unwrap();
        assert!(o.json && o.runs == 3);
        assert!(parse(&["--bogus".into()]).is_err());
    }
}
