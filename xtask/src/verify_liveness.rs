//! `cargo xtask verify liveness FRAME... [--challenges LIST] [--json]`: runs
//! liveness on frames a person has and prints one JSON document — every
//! frame's face box, pose and scores, every check, and the decision of the
//! default rules.
//!
//! Without `--challenges` the frames are one passive capture, in order.
//! With `--challenges left,right,up,down` (any order, `turn_left` etc. also
//! accepted) the frames are split in order into one more equal part than
//! there are challenges: the first part is the person looking straight at
//! the camera (the neutral pose movements are measured from), then one part
//! per challenge. The frame count must divide evenly so no frame silently
//! changes part.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use image::RgbImage;
use kyc_verify::decision::DecisionRules;
use kyc_verify::face::default_model_dir;
use kyc_verify::liveness::{
    Challenge, ChallengeSet, FrameObservation, LivenessConfig, LivenessPipeline,
};
use serde_json::{Value, json};

const USAGE: &str = "usage: cargo xtask verify liveness FRAME... [--challenges LIST] [--json]\n\
    \x20 without --challenges: passive liveness over the frames, in capture order\n\
    \x20 --challenges left,right,up,down: active liveness; the frames are split in\n\
    \x20   order into equal parts: first looking straight ahead, then one part per\n\
    \x20   challenge (N challenges: the frame count must divide by N + 1)";

pub fn run(args: &[String]) -> Result<()> {
    let mut paths = Vec::new();
    let mut challenges: Option<ChallengeSet> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // The output is always one JSON document; accepted for symmetry.
            "--json" => {}
            "--challenges" => {
                let list = args.next().context("--challenges needs a list")?;
                let parsed = list
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(str::parse::<Challenge>)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| anyhow::anyhow!("--challenges: {e}"))?;
                if parsed.is_empty() {
                    bail!("--challenges needs at least one challenge\n{USAGE}");
                }
                challenges = Some(ChallengeSet::new(parsed));
            }
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                return Ok(());
            }
            other if other.starts_with("--") => bail!("unknown option {other:?}\n{USAGE}"),
            path => paths.push(PathBuf::from(path)),
        }
    }
    if paths.is_empty() {
        bail!("no frames given\n{USAGE}");
    }
    if let Some(set) = &challenges
        && paths.len() % (set.len() + 1) != 0
    {
        bail!(
            "{} frames do not split evenly into a neutral part and {} challenges\n{USAGE}",
            paths.len(),
            set.len()
        );
    }
    // Every file is read before any model loads, so a bad path fails fast.
    let frames = paths
        .iter()
        .map(|p| crate::verify::photo(p))
        .collect::<Result<Vec<RgbImage>>>()?;

    let config = LivenessConfig::default();
    let load_started = Instant::now();
    let pipeline =
        LivenessPipeline::load(&default_model_dir(), config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let load_ms = load_started.elapsed().as_secs_f64() * 1000.0;

    let started = Instant::now();
    let (mode, report, segments) = match &challenges {
        None => (
            "passive",
            pipeline
                .passive(&frames)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            Value::Null,
        ),
        Some(set) => {
            let per = frames.len() / (set.len() + 1);
            let (neutral, moving) = frames.split_at(per);
            let segments: Vec<Vec<RgbImage>> = moving.chunks(per).map(<[_]>::to_vec).collect();
            let report = pipeline
                .active(set, neutral, &segments)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut listed = vec![json!({"challenge": "neutral", "files": &paths[..per]})];
            listed.extend(
                set.as_slice()
                    .iter()
                    .zip(paths[per..].chunks(per))
                    .map(|(c, files)| json!({"challenge": c, "files": files})),
            );
            ("active", report, Value::Array(listed))
        }
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;

    let frames_json: Vec<Value> = paths
        .iter()
        .zip(&report.frames)
        .map(|(path, seen)| frame_json(path, seen))
        .collect();
    let decision = DecisionRules::default().decide(report.checks.clone());
    let out = json!({
        "command": "verify liveness",
        "mode": mode,
        "challenges": segments,
        "frames": frames_json,
        "checks": report.checks,
        "decision": decision,
        "timing_ms": {
            "load_models": round(load_ms),
            "liveness": round(elapsed_ms),
        },
        "config": {
            "detector_long_side": config.detector_long_side,
            "crop_margin": config.crop_margin,
            "spoof_threshold": config.spoof_threshold,
            "identity_threshold": config.identity_threshold,
            "min_motion": config.min_motion,
            "max_step": config.max_step,
            "challenge_rules": config.challenges,
        },
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn frame_json(path: &Path, seen: &FrameObservation) -> Value {
    json!({
        "file": path,
        "faces": seen.faces,
        "box": seen.face.as_ref().map(|f| f.bbox),
        "face_score": seen.face.as_ref().map(|f| f.score),
        "landmarks": seen.face.as_ref().map(|f| f.landmarks),
        "pose": seen.pose,
        "spoof": seen.spoof,
        "described": seen.descriptor.is_some(),
    })
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}
