//! `cargo xtask verify …`: runs a pipeline on image files a person has and
//! prints its result (fields, scores, reasons, decision) as one JSON
//! document; an unreadable file is an error with a message and a non-zero exit.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::RgbImage;
use kyc_verify::decision::DecisionRules;
use kyc_verify::face::{FaceLookup, FaceMatchConfig, FacePipeline, default_model_dir};
use kyc_verify::intake::{Intake, IntakeLimits, intake};
use serde_json::{Value, json};

pub fn run(args: &[String]) -> Result<()> {
    kyc_verify::runtime::configure(kyc_verify::runtime::available_threads());
    match args.split_first() {
        Some((what, rest)) if what == "face" => face(rest),
        Some((what, rest)) if what == "document" => crate::verify_document::run(rest),
        Some((what, rest)) if what == "liveness" => crate::verify_liveness::run(rest),
        _ => bail!(
            "usage: cargo xtask verify face SELFIE DOCUMENT [--threshold T] [--json]\n\
             \x20      cargo xtask verify document FRONT [BACK] [--json]\n\
             \x20      cargo xtask verify liveness FRAME... [--challenges left,right,up,down] [--json]"
        ),
    }
}

/// A photo from a file, through the same intake the server uses.
pub(crate) fn photo(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match intake(&bytes, &IntakeLimits::default()) {
        Ok(Intake::Image(image)) => Ok(image.image.to_rgb8()),
        Ok(Intake::Pdf(_)) => bail!("{} is a PDF; this check needs a photo", path.display()),
        Err(err) => bail!("{}: {err} ({})", path.display(), err.reason().as_str()),
    }
}

fn lookup(found: &FaceLookup) -> Value {
    match found {
        FaceLookup::Found(face) => {
            json!({"faces": 1, "box": face.face.bbox, "score": face.face.score})
        }
        FaceLookup::NoFace => json!({"faces": 0}),
        FaceLookup::SeveralFaces(n) => json!({"faces": n}),
    }
}

fn face(args: &[String]) -> Result<()> {
    let mut paths = Vec::new();
    let mut config = FaceMatchConfig::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // The output is always one JSON document; the flag is accepted for symmetry.
            "--json" => {}
            "--threshold" => {
                config.threshold = args
                    .next()
                    .context("--threshold needs a value")?
                    .parse()
                    .context("--threshold needs a number")?;
            }
            other if other.starts_with("--") => bail!("unknown option {other:?}"),
            path => paths.push(PathBuf::from(path)),
        }
    }
    let [selfie_path, document_path] = paths.as_slice() else {
        bail!("usage: cargo xtask verify face SELFIE DOCUMENT [--threshold T] [--json]");
    };
    let selfie = photo(selfie_path)?;
    let document = photo(document_path)?;
    let pipeline =
        FacePipeline::load(&default_model_dir(), config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let result = pipeline
        .compare(&selfie, &document)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let decision = DecisionRules::default().decide(vec![result.check.clone()]);
    let report = json!({
        "command": "verify face",
        "selfie": {"file": selfie_path, "found": lookup(&result.selfie)},
        "document": {"file": document_path, "found": lookup(&result.document)},
        "similarity": result.similarity,
        "threshold": result.threshold,
        "decision": decision,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
