//! `cargo xtask verify document FRONT [BACK]`: runs the identity-document
//! pipeline on photos a person has — intake (as the server does it), capture
//! quality of each side, the MRZ read from whichever side holds it (a TD1
//! card carries it on the back) — and prints the fields, the raw MRZ lines
//! with their confidences, every check and the decision as one JSON
//! document. An unreadable file is an error naming the file and the reason
//! code, with a non-zero exit. The document portrait is not looked up here
//! (`verify face` does that).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use image::DynamicImage;
use kyc_verify::decision::DecisionRules;
use kyc_verify::document::{DocumentPolicy, DocumentReading, document_type_name, read_document};
use kyc_verify::intake::{Intake, IntakeLimits, intake};
use kyc_verify::ocr::Ocr;
use kyc_verify::quality::{self, Capture, QualityPolicy};
use kyc_verify::reason::Check;
use serde_json::{Value, json};
use time::Date;

const USAGE: &str = "usage: cargo xtask verify document FRONT [BACK] [--json] [--today YYYY-MM-DD]\n\
\x20      [--types passport,id_card,...] [--countries USA,DEU,...] [--models DIR]\n\
\n\
  FRONT, BACK   photos of the document's sides (JPEG, PNG or WebP)\n\
  --json        accepted for symmetry: the output is always one JSON document\n\
  --today D     the date expiry and two-digit years are judged against (default: today, UTC)\n\
  --types L     document types the integrator allows (default: all)\n\
  --countries L issuing countries the integrator allows, ISO alpha-3 (default: all)\n\
  --models DIR  model directory (default models/files)";

struct Options {
    files: Vec<PathBuf>,
    today: Date,
    policy: DocumentPolicy,
    models: PathBuf,
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut options = Options {
        files: Vec::new(),
        today: time::OffsetDateTime::now_utc().date(),
        policy: DocumentPolicy::default(),
        models: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/files"),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--json" => {}
            "--today" => {
                let text = value("--today")?;
                let format = time::macros::format_description!("[year]-[month]-[day]");
                options.today = Date::parse(&text, format)
                    .with_context(|| format!("--today {text:?} is not YYYY-MM-DD"))?;
            }
            "--types" => options.policy.document_types = list(&value("--types")?),
            "--countries" => options.policy.document_countries = list(&value("--countries")?),
            "--models" => options.models = PathBuf::from(value("--models")?),
            "--help" | "-h" => {
                eprintln!("{USAGE}");
                std::process::exit(0);
            }
            other if other.starts_with("--") => bail!("unknown option {other:?}\n{USAGE}"),
            path => options.files.push(PathBuf::from(path)),
        }
    }
    if options.files.is_empty() || options.files.len() > 2 {
        bail!("give the front and optionally the back\n{USAGE}");
    }
    Ok(options)
}

/// A photo from a file, through the same intake the server uses.
fn photo(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match intake(&bytes, &IntakeLimits::default()) {
        Ok(Intake::Image(image)) => Ok(image.image),
        Ok(Intake::Pdf(_)) => bail!(
            "{}: a PDF; a document side must be a photo (unreadable_image)",
            path.display()
        ),
        Err(err) => bail!("{}: {err} ({})", path.display(), err.reason().as_str()),
    }
}

/// Checks named after the side they measured (`front_sharpness`, …).
fn prefixed(side: &str, checks: Vec<Check>) -> Vec<Check> {
    checks
        .into_iter()
        .map(|check| Check {
            name: format!("{side}_{}", check.name),
            ..check
        })
        .collect()
}

/// The raw MRZ lines with each line's and each character's confidence.
fn mrz_lines(reading: &DocumentReading) -> Value {
    reading
        .lines
        .iter()
        .map(|line| {
            json!({
                "text": line.text,
                "min_confidence": line.min_confidence,
                "confidences": line
                    .confidences
                    .iter()
                    .map(|c| (f64::from(*c) * 1000.0).round() / 1000.0)
                    .collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn fields(reading: &DocumentReading) -> Value {
    let Some(mrz) = &reading.mrz else {
        return Value::Null;
    };
    json!({
        "format": mrz.format,
        "document_type": document_type_name(mrz.document_kind),
        "document_code": mrz.document_code,
        "issuing_state": mrz.issuing_state,
        "surname": mrz.surname,
        "given_names": mrz.given_names,
        "document_number": mrz.document_number,
        "nationality": mrz.nationality,
        "birth_date": mrz.birth_date.map(|d| d.to_string()),
        "sex": mrz.sex,
        "expiry_date": mrz.expiry_date.map(|d| d.to_string()),
        "optional_data": mrz.optional_data,
        "optional_data_2": mrz.optional_data_2,
        "check_digits": mrz.check_digits,
        "corrections": mrz.corrections,
    })
}

pub fn run(args: &[String]) -> Result<()> {
    let options = parse_options(args)?;
    // Every file is read before any model is loaded: a bad file fails fast.
    let sides: Vec<(&str, &PathBuf, DynamicImage)> = ["front", "back"]
        .into_iter()
        .zip(&options.files)
        .map(|(side, path)| photo(path).map(|image| (side, path, image)))
        .collect::<Result<_>>()?;
    let ocr = Ocr::load(&options.models)
        .map_err(|err| anyhow!("{err}"))
        .context("loading the OCR models (run `cargo xtask models`)")?;
    let quality_policy = QualityPolicy {
        capture: Capture::IdentityDocument,
        require_hd: false,
    };
    let mut checks = Vec::new();
    for (side, _, image) in &sides {
        checks.extend(prefixed(side, quality::assess(image, &quality_policy)));
    }
    // The MRZ from the first side that has one; without one, the front's reading.
    let mut chosen: Option<(&str, DocumentReading)> = None;
    for (side, _, image) in &sides {
        let reading = read_document(&ocr, &image.to_rgb8(), options.today, &options.policy)
            .map_err(|err| anyhow!("reading the {side}: {err}"))?;
        let found = reading.mrz.is_some();
        if chosen.is_none() || found {
            chosen = Some((side, reading));
        }
        if found {
            break;
        }
    }
    let (side, reading) = chosen.ok_or_else(|| anyhow!("no side was read"))?;
    checks.extend(reading.checks.iter().cloned());
    let decision = DecisionRules::default().decide(checks);
    let report = json!({
        "command": "verify document",
        "files": sides
            .iter()
            .map(|(side, path, image)| json!({
                "side": side,
                "file": path,
                "width": image.width(),
                "height": image.height(),
            }))
            .collect::<Vec<_>>(),
        "today": options.today.to_string(),
        "mrz_side": reading.mrz.as_ref().map(|_| side),
        "fields": fields(&reading),
        "mrz_lines": mrz_lines(&reading),
        "parse_error": reading.parse_error,
        "lookalike_swaps": reading.lookalike_swaps,
        "checks": decision.checks,
        "decision": {"verdict": decision.verdict, "reasons": decision.reasons},
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_parse_lists_and_dates() {
        let options = parse_options(&args(&[
            "front.jpg",
            "back.jpg",
            "--json",
            "--today",
            "2026-11-24",
            "--types",
            "passport, id_card",
            "--countries",
            "USA,DEU",
        ]))
        .unwrap();
        assert_eq!(options.files.len(), 2);
        assert_eq!(options.today.to_string(), "2026-11-24");
        assert_eq!(options.policy.document_types, ["passport", "id_card"]);
        assert_eq!(options.policy.document_countries, ["USA", "DEU"]);
        assert!(parse_options(&args(&[])).is_err());
        assert!(parse_options(&args(&["a", "b", "c"])).is_err());
        assert!(parse_options(&args(&["a", "--today", "24.11.2026"])).is_err());
        assert!(parse_options(&args(&["a", "--bogus"])).is_err());
    }

    #[test]
    fn an_unreadable_file_names_itself_and_its_reason() {
        let dir = std::env::temp_dir().join(format!("verify-document-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-an-image.jpg");
        std::fs::write(&path, b"hello, this is text").unwrap();
        let message = format!("{:#}", photo(&path).unwrap_err());
        assert!(message.contains("not-an-image.jpg"), "{message}");
        assert!(message.contains('(') && message.contains(')'), "{message}");
        let missing = format!("{:#}", photo(&dir.join("missing.jpg")).unwrap_err());
        assert!(missing.contains("missing.jpg"), "{missing}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
