//! Scoring captures off the request path. Submitting a step creates a job
//! (in the same transaction that marks the step as processing); a bounded
//! pool of workers runs the models on blocking threads and writes each
//! job's result to the session. Requests never wait for a model: the end
//! user's widget polls the session until the step leaves `processing`.
//!
//! Bounds: at most `workers` jobs run at once (each on a blocking thread),
//! and at most `queue_limit` wait; past that a submission is refused with
//! 503 and Retry-After rather than queueing without limit. A job that was
//! queued or running when the server stopped is resumed at the next start
//! (its row in `verification_jobs` is not done yet).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use image::DynamicImage;
use kyc_core::clock::Clock;
use kyc_core::domain::{SessionSpec, Step, StepKind};
use kyc_core::flow::{self, StepProgress, StepState};
use kyc_core::store::{CaptureRecord, JobRecord, Store};
use kyc_verify::decision::DecisionRules;
use kyc_verify::document::DocumentPolicy;
use kyc_verify::face::FaceMatchConfig;
use kyc_verify::intake::{Intake, IntakeLimits, intake};
use kyc_verify::liveness::{Challenge, ChallengeSet};
use kyc_verify::pipeline::{self, FaceDocumentConfig, Models, StepOutcome, StepPolicy};
use kyc_verify::quality::{self, Capture, QualityPolicy};
use kyc_verify::reason::{Check, Reason};
use serde_json::{Value, json};
use tokio::sync::{OnceCell, Semaphore};

use crate::blobs::Blobs;
use crate::config::VerificationConfig;

/// The pool and what it needs to score a job.
#[derive(Debug)]
pub struct Verifier {
    config: VerificationConfig,
    model_dir: PathBuf,
    models: OnceCell<Result<Arc<Models>, String>>,
    permits: Semaphore,
    /// Jobs accepted and not yet finished (waiting or running).
    pending: AtomicUsize,
    store: Store,
    blobs: Blobs,
    clock: Clock,
}

/// Why a step could not be submitted for scoring now.
#[derive(Debug)]
pub enum Refusal {
    ModelsMissing(String),
    Busy { pending: usize },
}

/// What each step type takes as captures.
pub fn capture_kinds(step: &Step) -> &'static [&'static str] {
    match &step.kind {
        StepKind::IdentityDocument { .. } => &["front", "back"],
        StepKind::Liveness { flags } if flags.liveness => &["frame"],
        // The specification: allow_face_upload has no effect on active liveness.
        StepKind::Liveness { flags } if flags.allow_face_upload => &["frame", "selfie"],
        StepKind::Liveness { .. } => &["frame"],
        StepKind::FaceDocument { .. } => &["photo"],
        StepKind::GeneralDocument { .. } => &["file"],
        _ => &[],
    }
}

/// Whether the step's captures need the models (a general document is only
/// checked for being a readable file).
pub fn needs_models(step: &Step) -> bool {
    !matches!(step.kind, StepKind::GeneralDocument { .. })
}

/// Least frames a passive liveness capture must have: motion and identity
/// consistency need several.
pub const MIN_PASSIVE_FRAMES: usize = 3;

/// Least frames looking straight ahead an active liveness capture needs:
/// each move is measured from the person's own neutral pose.
pub const MIN_NEUTRAL_FRAMES: usize = 2;

/// Least frames an active liveness capture needs per challenge (the move
/// is judged over time, not from one picture).
pub const MIN_CHALLENGE_FRAMES: usize = 2;

/// The challenges an active liveness step was given for its current
/// attempt, from the step's progress.
pub fn issued_challenges(progress: Option<&StepProgress>) -> Option<Vec<Challenge>> {
    let result = progress?.result.as_ref()?;
    serde_json::from_value(result.get("challenges")?.clone()).ok()
}

/// Whether a step's progress says its captures are being scored.
pub fn is_processing(progress: Option<&StepProgress>) -> bool {
    progress
        .and_then(|p| p.result.as_ref())
        .and_then(|r| r.get("status"))
        .is_some_and(|s| s == "processing")
}

/// What is missing before `step` can be submitted with `captures`, if anything.
pub fn missing_captures(
    step: &Step,
    captures: &[CaptureRecord],
    challenges: Option<&[Challenge]>,
) -> Option<String> {
    let count = |kind: &str| captures.iter().filter(|c| c.kind == kind).count();
    let frames_for = |at: Option<i64>| {
        captures
            .iter()
            .filter(|c| c.kind == "frame" && c.challenge == at)
            .count()
    };
    match &step.kind {
        StepKind::IdentityDocument { .. } if count("front") == 0 => {
            Some("a photo of the document's front (kind=front)".into())
        }
        StepKind::Liveness { flags } if flags.liveness => {
            let Some(challenges) = challenges else {
                return Some(
                    "its challenges: POST /api/widget/steps/{key}/challenges first".into(),
                );
            };
            if frames_for(None) == 0 {
                return Some(
                    "a frame looking straight at the camera (kind=frame, no challenge)".into(),
                );
            }
            (0..challenges.len()).find_map(|i| {
                let n = frames_for(Some(i as i64));
                (n < MIN_CHALLENGE_FRAMES).then(|| {
                    format!(
                        "at least {MIN_CHALLENGE_FRAMES} frames for challenge {i} ({}), kind=frame&challenge={i}; {n} so far",
                        challenges[i].as_str()
                    )
                })
            })
        }
        StepKind::Liveness { .. }
            if count("selfie") == 0 && count("frame") < MIN_PASSIVE_FRAMES =>
        {
            Some(format!(
                "at least {MIN_PASSIVE_FRAMES} frames of the face (kind=frame); {} so far",
                count("frame")
            ))
        }
        StepKind::FaceDocument { .. } if count("photo") == 0 => {
            Some("a photo of the face with the document in hand (kind=photo)".into())
        }
        StepKind::GeneralDocument { .. } if count("file") == 0 => {
            Some("at least one file (kind=file)".into())
        }
        _ => None,
    }
}

impl Verifier {
    pub fn new(config: VerificationConfig, store: Store, blobs: Blobs, clock: Clock) -> Self {
        let workers = config.workers();
        Self {
            model_dir: config.model_dir(),
            config,
            models: OnceCell::new(),
            permits: Semaphore::new(workers),
            pending: AtomicUsize::new(0),
            store,
            blobs,
            clock,
        }
    }

    pub fn config(&self) -> &VerificationConfig {
        &self.config
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Whether a new job may be accepted now for `step`.
    pub fn admit(&self, step: &Step) -> Result<(), Refusal> {
        if needs_models(step) {
            let missing = Models::missing(&self.model_dir);
            if !missing.is_empty() {
                return Err(Refusal::ModelsMissing(format!(
                    "identity checks are not installed on this server: model files missing from {} ({}); \
                     the operator installs them with `{}`",
                    self.model_dir.display(),
                    missing.join(", "),
                    pipeline::INSTALL_COMMAND
                )));
            }
        }
        let pending = self.pending.load(Ordering::Relaxed);
        if pending >= self.config.queue_limit {
            return Err(Refusal::Busy { pending });
        }
        Ok(())
    }

    /// Starts scoring a job already stored as queued.
    pub fn spawn(self: &Arc<Self>, job: JobRecord) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            this.run(job).await;
            this.pending.fetch_sub(1, Ordering::Relaxed);
        });
    }

    /// Resumes the jobs a previous run of the server left unfinished.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, kyc_core::store::StoreError> {
        let jobs = self.store.unfinished_jobs().await?;
        let n = jobs.len();
        for job in jobs {
            self.spawn(job);
        }
        Ok(n)
    }

    async fn models(&self) -> Result<Arc<Models>, String> {
        self.models
            .get_or_init(|| async {
                let dir = self.model_dir.clone();
                let threshold = self.config.face_match_threshold as f32;
                let loaded = tokio::task::spawn_blocking(move || {
                    let face = FaceMatchConfig {
                        threshold,
                        ..FaceMatchConfig::default()
                    };
                    Models::load(&dir, face)
                })
                .await;
                match loaded {
                    Ok(Ok(models)) => Ok(Arc::new(models)),
                    Ok(Err(err)) => Err(err.to_string()),
                    Err(err) => Err(format!("loading the models failed: {err}")),
                }
            })
            .await
            .clone()
    }

    async fn run(&self, job: JobRecord) {
        let Ok(_permit) = self.permits.acquire().await else {
            return;
        };
        let started = std::time::Instant::now();
        let progress = match self.score(&job).await {
            Ok(progress) => progress,
            Err(message) => {
                tracing::error!(job = %job.id, session = %job.session_id, step = %job.step_key, %message, "scoring failed");
                StepProgress {
                    state: StepState::Failed,
                    result: Some(json!({
                        "status": "error",
                        "attempt": job.attempt,
                        "message": "the captures could not be scored; please try again",
                    })),
                    updated_at: Some(self.clock.now()),
                }
            }
        };
        let state = progress.state;
        match self
            .store
            .finish_job(&job.id, progress, self.clock.now())
            .await
        {
            Ok(outcome) => tracing::info!(
                job = %job.id,
                step = %job.step_key,
                ?state,
                ?outcome,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "job scored"
            ),
            Err(err) => tracing::error!(job = %job.id, %err, "cannot store a job's result"),
        }
    }

    /// Scores one job: the step's result to store.
    async fn score(&self, job: &JobRecord) -> Result<StepProgress, String> {
        let record = self
            .store
            .session(&job.session_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the session is gone")?;
        let spec = record.spec().map_err(|e| e.to_string())?;
        let step = flow::all_steps(&spec.steps)
            .into_iter()
            .find(|s| s.key == job.step_key)
            .cloned()
            .ok_or("the step is gone from the session")?;
        let captures = self
            .store
            .job_captures(&job.id)
            .await
            .map_err(|e| e.to_string())?;
        let mut files = Vec::with_capacity(captures.len());
        for capture in captures {
            let bytes = self
                .blobs
                .get(&capture.blob_key)
                .await
                .map_err(|e| e.to_string())?;
            files.push((capture, bytes));
        }
        // The identity document's front, for matching faces of other steps.
        let portrait_source = match &step.kind {
            StepKind::Liveness { .. } | StepKind::FaceDocument { .. } => {
                self.document_front(&job.session_id, &spec).await?
            }
            _ => None,
        };
        let challenges = issued_challenges(
            record
                .progress()
                .map_err(|e| e.to_string())?
                .get(&job.step_key),
        );
        let models = if needs_models(&step) {
            Some(self.models().await?)
        } else {
            None
        };
        let policy = StepPolicy {
            require_hd: spec.flags.require_hd_media,
            document: document_policy(&step),
            today: self.clock.now().to_datetime().date(),
            rules: DecisionRules {
                decline: self.config.decline.clone(),
            },
        };
        let outcome = tokio::task::spawn_blocking(move || {
            score_step(
                models.as_deref(),
                &step,
                &files,
                challenges.as_deref(),
                portrait_source.as_ref(),
                &policy,
            )
        })
        .await
        .map_err(|e| format!("the scoring thread failed: {e}"))??;
        let retry = outcome.retryable() && job.attempt < self.config.max_attempts;
        let mut result = serde_json::to_value(&outcome).map_err(|e| e.to_string())?;
        if let Value::Object(map) = &mut result {
            map.insert("status".into(), json!("scored"));
            map.insert("attempt".into(), json!(job.attempt));
            map.insert("retry".into(), json!(retry));
        }
        Ok(StepProgress {
            state: if retry {
                StepState::Failed
            } else {
                StepState::Completed
            },
            result: Some(result),
            updated_at: Some(self.clock.now()),
        })
    }

    /// The newest scored front photo of the session's identity document, if
    /// the flow has one.
    async fn document_front(
        &self,
        session_id: &str,
        spec: &SessionSpec,
    ) -> Result<Option<DynamicImage>, String> {
        let document_keys: Vec<&str> = flow::all_steps(&spec.steps)
            .into_iter()
            .filter(|s| matches!(s.kind, StepKind::IdentityDocument { .. }))
            .map(|s| s.key.as_str())
            .collect();
        if document_keys.is_empty() {
            return Ok(None);
        }
        let captures = self
            .store
            .session_captures(session_id)
            .await
            .map_err(|e| e.to_string())?;
        let Some(front) = captures.iter().rev().find(|c| {
            c.kind == "front" && c.job_id.is_some() && document_keys.contains(&c.step_key.as_str())
        }) else {
            return Ok(None);
        };
        let bytes = self
            .blobs
            .get(&front.blob_key)
            .await
            .map_err(|e| e.to_string())?;
        match intake(&bytes, &IntakeLimits::default()) {
            Ok(Intake::Image(image)) => Ok(Some(image.image)),
            _ => Ok(None),
        }
    }
}

fn document_policy(step: &Step) -> DocumentPolicy {
    match &step.kind {
        StepKind::IdentityDocument { flags } => DocumentPolicy {
            document_types: flags
                .document_types
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            document_countries: flags.document_countries.clone(),
        },
        _ => DocumentPolicy::default(),
    }
}

/// A capture that intake refused, as a failed check.
fn unreadable(name: &str, reason: Reason) -> Check {
    Check {
        name: format!("{name}.readable"),
        passed: false,
        score: 0.0,
        threshold: 1.0,
        reason: Some(reason),
    }
}

/// Runs the step's pipeline on its decoded captures (blocking: models).
pub fn score_step(
    models: Option<&Models>,
    step: &Step,
    files: &[(CaptureRecord, bytes::Bytes)],
    challenges: Option<&[Challenge]>,
    document_front: Option<&DynamicImage>,
    policy: &StepPolicy,
) -> Result<StepOutcome, String> {
    let limits = IntakeLimits::default();
    let mut images: BTreeMap<&str, Vec<DynamicImage>> = BTreeMap::new();
    // Active liveness frames by challenge (None: the neutral frames).
    let mut by_challenge: BTreeMap<Option<i64>, Vec<DynamicImage>> = BTreeMap::new();
    let mut refused: Vec<Check> = Vec::new();
    let mut documents = 0usize;
    for (capture, bytes) in files {
        match intake(bytes, &limits) {
            Ok(Intake::Image(image)) => {
                if capture.kind == "frame" {
                    by_challenge
                        .entry(capture.challenge)
                        .or_default()
                        .push(image.image.clone());
                }
                images
                    .entry(capture.kind.as_str())
                    .or_default()
                    .push(image.image)
            }
            Ok(Intake::Pdf(pdf)) if capture.kind == "file" => {
                documents += 1;
                refused.push(Check {
                    name: format!("file_{documents}.pdf_pages"),
                    passed: pdf.pages > 0,
                    score: f64::from(pdf.pages),
                    threshold: 1.0,
                    reason: (pdf.pages == 0).then_some(Reason::UnreadableImage),
                });
            }
            Ok(Intake::Pdf(_)) => refused.push(unreadable(&capture.kind, Reason::UnreadableImage)),
            Err(err) => refused.push(unreadable(&capture.kind, err.reason())),
        }
    }
    let last = |kind: &str| images.get(kind).and_then(|v| v.last());
    let need = || models.ok_or_else(|| "the models are not loaded".to_owned());
    let with_refused = |mut outcome: StepOutcome| {
        if !refused.is_empty() {
            let mut checks = refused.clone();
            checks.append(&mut outcome.decision.checks);
            outcome.decision = policy.rules.decide(checks);
        }
        outcome
    };
    let portrait = |models: &Models| -> Result<_, String> {
        match document_front {
            Some(front) => pipeline::document_portrait(models, &front.to_rgb8()).map_err(|e| e.0),
            None => Ok(None),
        }
    };
    match &step.kind {
        StepKind::IdentityDocument { .. } => {
            let models = need()?;
            let Some(front) = last("front") else {
                return only_refused(&refused, policy, "a readable front photo");
            };
            let (outcome, _) = pipeline::identity_document(models, front, last("back"), policy)
                .map_err(|e| e.0)?;
            Ok(with_refused(outcome))
        }
        StepKind::Liveness { flags } if flags.liveness => {
            let models = need()?;
            let portrait = portrait(models)?;
            let Some(challenges) = challenges else {
                return Err("the step's challenges are not on record".into());
            };
            let neutral = by_challenge.get(&None).cloned().unwrap_or_default();
            if neutral.is_empty() {
                return only_refused(&refused, policy, "a readable neutral frame");
            }
            let segments: Vec<Vec<DynamicImage>> = (0..challenges.len())
                .map(|i| {
                    by_challenge
                        .get(&Some(i as i64))
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            let outcome = pipeline::active_liveness(
                models,
                &ChallengeSet::new(challenges.to_vec()),
                &neutral,
                &segments,
                portrait.as_ref(),
                policy,
            )
            .map_err(|e| e.0)?;
            Ok(with_refused(outcome))
        }
        StepKind::Liveness { .. } => {
            let models = need()?;
            let portrait = portrait(models)?;
            let frames = images.get("frame").cloned().unwrap_or_default();
            if frames.len() >= MIN_PASSIVE_FRAMES {
                let outcome =
                    pipeline::passive_liveness(models, &frames, portrait.as_ref(), policy)
                        .map_err(|e| e.0)?;
                return Ok(with_refused(outcome));
            }
            let Some(selfie) = last("selfie") else {
                return only_refused(&refused, policy, "readable frames or a selfie");
            };
            let outcome =
                pipeline::selfie(models, selfie, portrait.as_ref(), policy).map_err(|e| e.0)?;
            Ok(with_refused(outcome))
        }
        StepKind::FaceDocument { .. } => {
            let models = need()?;
            let Some(photo) = last("photo") else {
                return only_refused(&refused, policy, "a readable photo");
            };
            let (mut outcome, holder) =
                pipeline::face_document(models, photo, &FaceDocumentConfig::default(), policy)
                    .map_err(|e| e.0)?;
            if let (Some(holder), Some(portrait)) = (holder, portrait(models)?) {
                let (check, similarity) = pipeline::match_against_portrait(
                    models,
                    &holder,
                    &portrait,
                    "holder_matches_identity_document",
                );
                let mut checks = outcome.decision.checks;
                checks.push(check);
                outcome.decision = policy.rules.decide(checks);
                outcome.face_similarity = similarity.or(outcome.face_similarity);
            }
            Ok(with_refused(outcome))
        }
        StepKind::GeneralDocument { .. } => {
            let quality_policy = QualityPolicy {
                capture: Capture::GeneralDocument,
                require_hd: false,
            };
            let mut checks = Vec::new();
            for (i, image) in images.get("file").into_iter().flatten().enumerate() {
                for mut check in quality::assess(image, &quality_policy) {
                    check.name = format!("image_{}.{}", i + 1, check.name);
                    checks.push(check);
                }
            }
            if checks.is_empty() && refused.is_empty() {
                return Err("the step has no files".into());
            }
            Ok(with_refused(policy_only(policy, checks)))
        }
        _ => Err(format!(
            "a {} step takes no captures",
            step.step_type().as_str()
        )),
    }
}

/// The outcome when the capture a step needs was refused by intake: the
/// refusals are the evidence. With no refusal either, there was nothing to
/// score, which submission should have prevented.
fn only_refused(refused: &[Check], policy: &StepPolicy, what: &str) -> Result<StepOutcome, String> {
    if refused.is_empty() {
        return Err(format!("the job has no captures: it needs {what}"));
    }
    Ok(policy_only(policy, refused.to_vec()))
}

fn policy_only(policy: &StepPolicy, checks: Vec<Check>) -> StepOutcome {
    StepOutcome {
        decision: policy.rules.decide(checks),
        document: None,
        face_similarity: None,
    }
}
