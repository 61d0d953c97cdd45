//! `cargo xtask eval mrz`: how well the document pipeline reads machine-readable
//! zones. Renders synthetic documents (see `synth_mrz`), runs
//! `kyc_verify::document::read_document` on each and reports the full-MRZ read
//! rate (every check digit valid), character accuracy, and the documents
//! accepted with a wrong field (every check digit valid, a field not the
//! truth) — the one failure that must never happen.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use kyc_verify::document::{DocumentPolicy, read_document};
use kyc_verify::mrz::{Mrz, MrzFormat, parse_mrz_lines};
use kyc_verify::ocr::Ocr;
use kyc_verify::reason::Reason;
use serde::Serialize;
use time::macros::date;

use crate::synth_mrz::{
    Capture, OCR_B_PATH, Rng, load_font, photograph, random_capture, random_document, render_card,
};

const USAGE: &str = "usage: cargo xtask eval mrz [--count N] [--seed S] [--json] [--models DIR] [--font FILE] [--save DIR]\n\
\n\
  --count N     documents to render and read (default 300)\n\
  --seed S      the seed everything follows from (default 20261124)\n\
  --json        print one JSON document on stdout\n\
  --models DIR  model directory (default models/files)\n\
  --font FILE   the OCR-B font (default the fonts-ocr-b package's)\n\
  --save DIR    also write each photographed document there as JPEG\n\
  --dump FILE   also write every document's outcome there, one JSON object a line\n\
  --only LIST   evaluate only these document indexes (comma-separated, each < N)";

/// Targets: the read rate to reach, and wrong accepts allowed.
const TARGET_READ_RATE: f64 = 0.97;

struct Options {
    count: usize,
    seed: u64,
    json: bool,
    models: PathBuf,
    font: PathBuf,
    save: Option<PathBuf>,
    dump: Option<PathBuf>,
    /// Document indexes to evaluate instead of all of `0..count`.
    only: Option<Vec<usize>>,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut options = Options {
        count: 300,
        seed: 20261124,
        json: false,
        models: root.join("models/files"),
        font: PathBuf::from(OCR_B_PATH),
        save: None,
        dump: None,
        only: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--count" => options.count = value("--count")?.parse().context("--count")?,
            "--seed" => options.seed = value("--seed")?.parse().context("--seed")?,
            "--json" => options.json = true,
            "--models" => options.models = PathBuf::from(value("--models")?),
            "--font" => options.font = PathBuf::from(value("--font")?),
            "--save" => options.save = Some(PathBuf::from(value("--save")?)),
            "--dump" => options.dump = Some(PathBuf::from(value("--dump")?)),
            "--only" => {
                let list = value("--only")?;
                let indexes = list
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                    .context("--only takes comma-separated document indexes")?;
                options.only = Some(indexes);
            }
            "--help" | "-h" => {
                eprintln!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
    }
    if options.count == 0 {
        bail!("--count must be at least 1");
    }
    if let Some(only) = &options.only
        && let Some(bad) = only.iter().find(|&&i| i >= options.count)
    {
        bail!("--only {bad} is not below --count {}", options.count);
    }
    Ok(options)
}

/// What happened to one document.
#[derive(Debug, Clone, Serialize)]
struct Outcome {
    index: usize,
    format: MrzFormat,
    capture: Capture,
    /// Accepted (every check digit valid, no doubt on the unprotected fields) and every field right.
    read: bool,
    found: bool,
    wrong_accept: bool,
    /// Every check digit valid but a field wrong (a name, a country: what no
    /// check digit covers); the pipeline's legibility check should refuse these.
    digits_valid_wrong_field: bool,
    /// Edit distance of the OCR'd lines (before the parser's repairs) from the truth.
    raw_errors: usize,
    /// Edit distance of the parsed zone's lines (after its repairs) from the truth.
    parsed_errors: usize,
    truth_chars: usize,
    millis: f64,
    truth: Vec<String>,
    ocr: Vec<String>,
    /// The checks that failed, with their scores.
    failed_checks: Vec<(String, f64)>,
    /// Characters the reading doubts, as `line:column char why` (1-based):
    /// low confidence, a filler as runner-up, off the line's spacing.
    doubts: Vec<String>,
}

/// The characters of `lines` a reviewer of a failure wants to see first.
fn doubts(lines: &[kyc_verify::document::MrzLine]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for (j, c) in line.text.chars().enumerate() {
            let confidence = line.confidences.get(j).copied().unwrap_or(1.0);
            let mut why = Vec::new();
            if confidence < 0.5 {
                why.push(format!("p={confidence:.2}"));
            }
            if let Some(Some((r, p))) = line.runners_up.get(j)
                && *p >= 0.1 * confidence
            {
                why.push(format!("runner-up {r} {p:.2}"));
            }
            if line.misplaced.get(j).copied().unwrap_or(false) {
                why.push("off its place".to_string());
            }
            if !why.is_empty() {
                out.push(format!("{}:{} {c} {}", i + 1, j + 1, why.join(", ")));
            }
        }
    }
    out
}

#[derive(Debug, Serialize)]
struct FormatFigures {
    format: MrzFormat,
    documents: usize,
    read: usize,
    read_rate: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    documents: usize,
    seed: u64,
    read: usize,
    read_rate: f64,
    not_found: usize,
    wrong_accepts: usize,
    /// Documents whose check digits all held with a field wrong, before the
    /// pipeline's legibility check on the fields no check digit covers.
    digits_valid_wrong_field: usize,
    /// 1 − edit distance / characters, over every document's OCR'd lines.
    raw_char_accuracy: f64,
    /// The same after the MRZ parser's check-digit-proved repairs.
    parsed_char_accuracy: f64,
    per_format: Vec<FormatFigures>,
    mean_ms_per_document: f64,
    target_read_rate: f64,
    target_met: bool,
    /// Up to 20 documents that were not read or were accepted wrongly.
    failures: Vec<Outcome>,
}

pub fn run(args: &[String]) -> Result<()> {
    let options = parse_options(args)?;
    let font = load_font(&options.font)?;
    let ocr =
        Ocr::load(&options.models).context("loading the OCR models (run `cargo xtask models`)")?;
    if let Some(dir) = &options.save {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let today = date!(2026 - 11 - 24);
    // Every document follows from the seed and its index alone, so a subset
    // (`--only`) reproduces exactly the documents of a full run.
    let indexes: Vec<usize> = options
        .only
        .clone()
        .unwrap_or_else(|| (0..options.count).collect());
    let next = Mutex::new(0usize);
    let outcomes = Mutex::new(Vec::with_capacity(indexes.len()));
    let failure = Mutex::new(None::<anyhow::Error>);
    let workers = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(8);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = {
                        let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
                        let Some(&index) = indexes.get(*n) else {
                            return;
                        };
                        *n += 1;
                        index
                    };
                    match evaluate_one(&options, &ocr, &font, today, index) {
                        Ok(outcome) => {
                            if !options.json && index % 25 == 0 {
                                eprintln!("document {index}…");
                            }
                            outcomes
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(outcome);
                        }
                        Err(err) => {
                            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
                            *next.lock().unwrap_or_else(|p| p.into_inner()) = indexes.len();
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(err) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(err);
    }
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
    outcomes.sort_by_key(|o| o.index);
    if let Some(path) = &options.dump {
        let mut text = String::new();
        for outcome in &outcomes {
            text.push_str(&serde_json::to_string(outcome)?);
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let report = summarise(&options, outcomes);
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    Ok(())
}

fn evaluate_one(
    options: &Options,
    ocr: &Ocr,
    font: &ab_glyph::FontVec,
    today: time::Date,
    index: usize,
) -> Result<Outcome> {
    let mut rng = Rng::new(options.seed ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let doc = random_document(&mut rng, today)?;
    let card = render_card(&mut rng, font, &doc);
    let capture = random_capture(&mut rng);
    let photo = photograph(&mut rng, &card, &capture)?;
    if let Some(dir) = &options.save {
        let path = dir.join(format!("{index:04}.jpg"));
        photo
            .save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let truth_refs: Vec<&str> = doc.lines.iter().map(String::as_str).collect();
    let truth = parse_mrz_lines(&truth_refs, today)
        .map_err(|err| anyhow!("generated zone does not parse: {err}"))?;
    let started = Instant::now();
    let reading = read_document(ocr, &photo, today, &DocumentPolicy::default())?;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    let ocr_lines: Vec<String> = reading.lines.iter().map(|l| l.text.clone()).collect();
    let truth_text = doc.lines.join("\n");
    let truth_chars = doc.lines.iter().map(String::len).sum();
    let raw_errors = edit_distance(&ocr_lines.join("\n"), &truth_text).min(truth_chars);
    // Accepted: every check digit holds and the fields no check digit covers
    // were read without doubt — no reason about reading the zone at all
    // (`mrz_illegible` is the legibility check's; an expired document or a
    // type the policy refuses is still a zone read).
    let accepted = !reading.reasons.iter().any(|r| {
        matches!(
            r,
            Reason::MrzCheckDigit | Reason::MrzIllegible | Reason::MrzNotFound
        )
    });
    let (read, wrong_accept, digits_valid_wrong_field, parsed_errors) = match &reading.mrz {
        Some(mrz) => {
            let valid = mrz.all_check_digits_valid();
            let same = same_fields(mrz, &truth);
            let errors = edit_distance(&mrz.lines.join("\n"), &truth_text).min(truth_chars);
            (
                valid && accepted && same,
                valid && accepted && !same,
                valid && !same,
                errors,
            )
        }
        None => (false, false, false, raw_errors),
    };
    Ok(Outcome {
        index,
        format: doc.format,
        capture,
        read,
        found: reading.mrz.is_some(),
        wrong_accept,
        digits_valid_wrong_field,
        raw_errors,
        parsed_errors,
        truth_chars,
        millis,
        truth: doc.lines,
        ocr: ocr_lines,
        failed_checks: reading
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| (c.name.clone(), c.score))
            .collect(),
        doubts: doubts(&reading.lines),
    })
}

/// Whether every field a decision could use is the truth's.
fn same_fields(read: &Mrz, truth: &Mrz) -> bool {
    read.format == truth.format
        && read.document_code == truth.document_code
        && read.issuing_state == truth.issuing_state
        && read.surname == truth.surname
        && read.given_names == truth.given_names
        && read.document_number == truth.document_number
        && read.nationality == truth.nationality
        && read.birth_date == truth.birth_date
        && read.sex == truth.sex
        && read.expiry_date == truth.expiry_date
        && read.optional_data == truth.optional_data
        && read.optional_data_2 == truth.optional_data_2
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

fn summarise(options: &Options, outcomes: Vec<Outcome>) -> Report {
    let documents = outcomes.len();
    let read = outcomes.iter().filter(|o| o.read).count();
    let chars: usize = outcomes.iter().map(|o| o.truth_chars).sum();
    let raw: usize = outcomes.iter().map(|o| o.raw_errors).sum();
    let parsed: usize = outcomes.iter().map(|o| o.parsed_errors).sum();
    let per_format = [MrzFormat::Td1, MrzFormat::Td2, MrzFormat::Td3]
        .into_iter()
        .map(|format| {
            let of: Vec<&Outcome> = outcomes.iter().filter(|o| o.format == format).collect();
            let read = of.iter().filter(|o| o.read).count();
            FormatFigures {
                format,
                documents: of.len(),
                read,
                read_rate: ratio(read, of.len()),
            }
        })
        .collect();
    let wrong_accepts = outcomes.iter().filter(|o| o.wrong_accept).count();
    let read_rate = ratio(read, documents);
    Report {
        documents,
        seed: options.seed,
        read,
        read_rate,
        not_found: outcomes.iter().filter(|o| !o.found).count(),
        wrong_accepts,
        digits_valid_wrong_field: outcomes
            .iter()
            .filter(|o| o.digits_valid_wrong_field)
            .count(),
        raw_char_accuracy: 1.0 - ratio(raw, chars),
        parsed_char_accuracy: 1.0 - ratio(parsed, chars),
        per_format,
        mean_ms_per_document: outcomes.iter().map(|o| o.millis).sum::<f64>()
            / documents.max(1) as f64,
        target_read_rate: TARGET_READ_RATE,
        target_met: read_rate >= TARGET_READ_RATE && wrong_accepts == 0,
        failures: outcomes
            .into_iter()
            .filter(|o| !o.read || o.wrong_accept)
            .take(20)
            .collect(),
    }
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

fn print_human(report: &Report) {
    println!(
        "MRZ evaluation: {} synthetic documents, seed {}",
        report.documents, report.seed
    );
    println!(
        "  read (accepted, every check digit valid, every field right): {} = {:.1}% (target {:.0}%)",
        report.read,
        report.read_rate * 100.0,
        report.target_read_rate * 100.0
    );
    for f in &report.per_format {
        println!(
            "    {}: {}/{} = {:.1}%",
            f.format,
            f.read,
            f.documents,
            f.read_rate * 100.0
        );
    }
    println!("  MRZ not found: {}", report.not_found);
    println!("  accepted with a wrong field: {}", report.wrong_accepts);
    println!(
        "  check digits valid with a wrong field (refused by the legibility check unless counted above): {}",
        report.digits_valid_wrong_field
    );
    println!(
        "  character accuracy: {:.2}% as OCR'd, {:.2}% after check-digit repairs",
        report.raw_char_accuracy * 100.0,
        report.parsed_char_accuracy * 100.0
    );
    println!(
        "  mean time per document: {:.0} ms",
        report.mean_ms_per_document
    );
    for o in report.failures.iter().take(5) {
        println!(
            "  not read #{} ({}): truth {:?} ocr {:?}",
            o.index, o.format, o.truth, o.ocr
        );
    }
    println!(
        "  target met: {}",
        if report.target_met { "yes" } else { "no" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("ABC", "ABC"), 0);
        assert_eq!(edit_distance("ABC", "ABD"), 1);
        assert_eq!(edit_distance("AB<<C", "AB<C"), 1);
        assert_eq!(edit_distance("", "ABC"), 3);
        assert_eq!(edit_distance("KITTEN", "SITTING"), 3);
    }
}
