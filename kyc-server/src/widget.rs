//! The end user's side of a session, as the browser widget will call it:
//! read the session by its token, and start it (which starts the clock of
//! the session time). The widget's pages themselves are not built yet.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use kyc_core::api::SessionResult;
use kyc_core::auth;
use kyc_core::clock::Millis;
use kyc_core::domain::{SessionStatus, Step, StepKind};
use kyc_core::flow::{self, StepProgress, StepState};
use kyc_core::store::{CaptureStored, JobRecord, NewCapture, SessionRecord, StepRecorded};
use kyc_verify::intake::MediaFormat;
use kyc_verify::liveness::ChallengeSet;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::verification::{self, Refusal};

use crate::app::AppState;
use crate::error::ApiError;
use crate::views;

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    session_token: Option<String>,
}

/// The session token from `Authorization: Bearer …` or `?session_token=`.
async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
    query: &TokenQuery,
) -> Result<SessionRecord, ApiError> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = bearer
        .or(query.session_token.as_deref())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "a session token is required (Authorization: Bearer <session_token>)".into(),
            )
        })?;
    state
        .store
        .session_by_token_hash(&auth::token_hash(token))
        .await?
        .ok_or_else(|| ApiError::NotFound("no session has this token".into()))
}

/// Refuses a session the end user can no longer use.
fn usable(record: &SessionRecord, now: Millis) -> Result<(), ApiError> {
    let at = |m: Millis| m.to_rfc3339();
    match record.status_at(now)? {
        SessionStatus::Expired => {
            let lifetime = record.lifetime();
            let message = match (lifetime.deadline(), lifetime.schedule_end) {
                (_, Some(end)) if now >= end => {
                    format!("the session's schedule ended at {}", at(end))
                }
                (Some(deadline), _) => format!("the session time ran out at {}", at(deadline)),
                _ => format!(
                    "the session link expired at {} before the session was started",
                    at(lifetime.link_expires_at)
                ),
            };
            Err(ApiError::Gone {
                code: "session_expired",
                message,
            })
        }
        SessionStatus::Cancelled => Err(ApiError::Gone {
            code: "session_cancelled",
            message: "the session was cancelled".into(),
        }),
        SessionStatus::Completed => Err(ApiError::Gone {
            code: "session_completed",
            message: "the session is already completed".into(),
        }),
        SessionStatus::Created | SessionStatus::InProgress => Ok(()),
    }
}

pub async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<Json<SessionResult>, ApiError> {
    let record = session_of(&state, &headers, &query).await?;
    let now = state.clock.now();
    usable(&record, now)?;
    let mut result = views::session_result(&record, now)?;
    redact_scores(&mut result.flow);
    Ok(Json(result))
}

/// The end user sees whether a step passed and, when a retake may help,
/// why — never the scores and thresholds (they would teach a forger what
/// to tune). Integrators and staff see everything.
fn redact_scores(flow: &mut [kyc_core::api::FlowStep]) {
    for step in flow {
        if let Some(Value::Object(result)) = &mut step.result
            && result.contains_key("checks")
        {
            let retry = result.get("retry").cloned().unwrap_or(Value::Bool(false));
            let mut kept = serde_json::Map::new();
            for field in ["status", "attempt", "retry"] {
                if let Some(value) = result.get(field) {
                    kept.insert(field.to_owned(), value.clone());
                }
            }
            if retry == Value::Bool(true)
                && let Some(reasons) = result.get("reasons")
            {
                kept.insert("reasons".into(), reasons.clone());
            }
            *result = kept;
        }
        redact_scores(&mut step.steps);
    }
}

pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<Json<SessionResult>, ApiError> {
    let record = session_of(&state, &headers, &query).await?;
    let now = state.clock.now();
    usable(&record, now)?;
    if let Some(opens) = record.lifetime().schedule_start.filter(|s| now < *s) {
        return Err(ApiError::NotYetAvailable(format!(
            "the session opens at {}",
            opens.to_rfc3339()
        )));
    }
    if record.stored_status()? == SessionStatus::Created {
        state.store.start_session(&record.id, now).await?;
    }
    let record = state
        .store
        .session(&record.id)
        .await?
        .ok_or_else(|| ApiError::NotFound("the session is gone".into()))?;
    usable(&record, state.clock.now())?;
    Ok(Json(views::session_result(&record, state.clock.now())?))
}

/// A started, open session and one of its steps that takes captures.
async fn capture_step(
    state: &AppState,
    headers: &HeaderMap,
    query: &TokenQuery,
    key: &str,
) -> Result<(SessionRecord, Step), ApiError> {
    let record = session_of(state, headers, query).await?;
    let now = state.clock.now();
    usable(&record, now)?;
    if record.stored_status()? == SessionStatus::Created {
        return Err(ApiError::Conflict(
            "the session has not been started; POST /api/widget/session/start first".into(),
        ));
    }
    let spec = record.spec()?;
    let step = flow::all_steps(&spec.steps)
        .into_iter()
        .find(|s| s.key == key)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("the session has no step {key:?}")))?;
    if verification::capture_kinds(&step).is_empty() {
        return Err(ApiError::bad_request(
            "step_takes_no_captures",
            format!(
                "step {key:?} is a {} step, which takes no captures",
                step.step_type().as_str()
            ),
        ));
    }
    let progress = record.progress()?;
    let current = progress.get(key);
    if verification::is_processing(current) {
        return Err(ApiError::Conflict(format!(
            "step {key:?} is being scored; wait for its result"
        )));
    }
    match current.map(|p| p.state) {
        Some(StepState::Completed | StepState::Skipped) => {
            Err(ApiError::Conflict(format!("step {key:?} is already done")))
        }
        _ => Ok((record, step)),
    }
}

fn is_active_liveness(step: &Step) -> bool {
    matches!(&step.kind, StepKind::Liveness { flags } if flags.liveness)
}

/// How many challenges an active liveness attempt asks for.
const CHALLENGES_PER_ATTEMPT: usize = 3;

/// `POST /api/widget/steps/{key}/challenges`: the moves an active liveness
/// attempt must show, drawn at random by the server and kept with the step.
/// Asking again within one attempt gives the same set; a new attempt (after
/// a retake was asked for) gets a new one, so a capture of an earlier
/// attempt answers the wrong moves.
pub async fn challenges(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<Json<Value>, ApiError> {
    let (record, step) = capture_step(&state, &headers, &query, &key).await?;
    if !is_active_liveness(&step) {
        return Err(ApiError::bad_request(
            "not_active_liveness",
            format!("step {key:?} is not an active liveness step (flags.liveness is false)"),
        ));
    }
    let attempt = state.store.step_attempts(&record.id, &key).await? + 1;
    let progress = record.progress()?;
    let current = progress.get(&key);
    let same_attempt = current
        .and_then(|p| p.result.as_ref())
        .and_then(|r| r.get("attempt"))
        .and_then(Value::as_i64)
        == Some(attempt);
    let issued = verification::issued_challenges(current).filter(|_| same_attempt);
    let list = match issued {
        Some(list) => list,
        None => {
            let seed = auth::random_u64().map_err(|e| ApiError::Internal(e.to_string()))?;
            let list = ChallengeSet::random(seed, CHALLENGES_PER_ATTEMPT)
                .as_slice()
                .to_vec();
            let now = state.clock.now();
            let progress = StepProgress {
                state: StepState::InProgress,
                result: Some(
                    json!({"status": "challenged", "attempt": attempt, "challenges": list}),
                ),
                updated_at: Some(now),
            };
            match state
                .store
                .record_step(&record.id, &key, progress, now)
                .await?
            {
                StepRecorded::Recorded { .. } => {}
                StepRecorded::Closed(status) => {
                    return Err(ApiError::Gone {
                        code: "session_closed",
                        message: format!("the session is {}", status.as_str()),
                    });
                }
                _ => return Err(ApiError::NotFound("the session or step is gone".into())),
            }
            list
        }
    };
    Ok(Json(json!({
        "step": key,
        "attempt": attempt,
        "challenges": list,
        "neutral_frames": verification::MIN_NEUTRAL_FRAMES,
        "frames_per_challenge": verification::MIN_CHALLENGE_FRAMES,
    })))
}

#[derive(Debug, Deserialize)]
pub struct CaptureQuery {
    session_token: Option<String>,
    kind: Option<String>,
    /// Active liveness: the index of the challenge the frame answers;
    /// absent for the frames looking straight ahead.
    challenge: Option<String>,
}

/// `POST /api/widget/steps/{key}/captures?kind=…`: one capture, the raw
/// bytes as the body (JPEG, PNG or WebP; PDF for general documents),
/// recognised from the bytes whatever the Content-Type says.
pub async fn upload_capture(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Query(query): Query<CaptureQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let token = TokenQuery {
        session_token: query.session_token.clone(),
    };
    let (record, step) = capture_step(&state, &headers, &token, &key).await?;
    let kinds = verification::capture_kinds(&step);
    let kind = query.kind.as_deref().ok_or_else(|| {
        ApiError::invalid("kind", format!("is required: one of {}", kinds.join(", ")))
    })?;
    if !kinds.contains(&kind) {
        return Err(ApiError::invalid(
            "kind",
            format!(
                "{kind:?} is not a capture of a {} step; it takes {}",
                step.step_type().as_str(),
                kinds.join(", ")
            ),
        ));
    }
    let challenge = match (&query.challenge, is_active_liveness(&step)) {
        (None, _) => None,
        (Some(_), false) => {
            return Err(ApiError::invalid(
                "challenge",
                "is only for the frames of an active liveness step",
            ));
        }
        (Some(text), true) => {
            let issued = verification::issued_challenges(record.progress()?.get(&key))
                .ok_or_else(|| {
                    ApiError::Conflict(format!(
                        "step {key:?} has no challenges yet: POST /api/widget/steps/{key}/challenges first"
                    ))
                })?;
            match text.parse::<usize>() {
                Ok(i) if i < issued.len() => Some(i as i64),
                _ => {
                    return Err(ApiError::invalid(
                        "challenge",
                        format!(
                            "must be a challenge index from 0 to {}, got {text:?}",
                            issued.len().saturating_sub(1)
                        ),
                    ));
                }
            }
        }
    };
    let limit = state.verifier.config().max_capture_bytes;
    let body = body.map_err(|err| match err.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge(format!("a capture may be at most {limit} bytes"))
        }
        _ => ApiError::bad_request("unreadable_body", err.body_text()),
    })?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty_capture",
            "the body is empty; send the image bytes as the body",
        ));
    }
    let format = MediaFormat::sniff(&body).ok_or_else(|| {
        ApiError::UnsupportedMediaType(
            "the body is not a JPEG, PNG, WebP or PDF file (recognised from its first bytes)"
                .into(),
        )
    })?;
    if format == MediaFormat::Pdf && kind != "file" {
        return Err(ApiError::UnsupportedMediaType(format!(
            "a {kind} capture must be a photo (JPEG, PNG or WebP), not a PDF"
        )));
    }
    let id = uuid::Uuid::now_v7().to_string();
    // Only server-made ids in the path: step keys are the integrator's
    // free text (slashes, dots…), and the row records the step anyway.
    let blob_key = format!(
        "sessions/{}/{id}.{}",
        record.id,
        format.name().to_ascii_lowercase()
    );
    let sha256 = hex::encode(Sha256::digest(&body));
    let size = body.len() as i64;
    state
        .verifier
        .blobs()
        .put(&blob_key, body)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let capture = NewCapture {
        id: id.clone(),
        session_id: record.id.clone(),
        step_key: key.clone(),
        kind: kind.to_owned(),
        challenge,
        media_type: format.content_type().to_owned(),
        size_bytes: size,
        sha256: sha256.clone(),
        blob_key,
        created_at: state.clock.now(),
    };
    match state
        .store
        .insert_capture(&capture, state.verifier.config().max_captures_per_step)
        .await?
    {
        CaptureStored::Stored => Ok((
            StatusCode::CREATED,
            Json(json!({
                "id": id,
                "step": key,
                "kind": kind,
                "media_type": capture.media_type,
                "size_bytes": size,
                "sha256": sha256,
            })),
        )),
        CaptureStored::TooMany { limit } => Err(ApiError::Conflict(format!(
            "step {key:?} already holds {limit} captures waiting; submit it first"
        ))),
    }
}

/// `POST /api/widget/steps/{key}/submit`: the step's captures go to the
/// scoring pool; answered 202 at once, the result arrives in the session.
pub async fn submit_step(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (record, step) = capture_step(&state, &headers, &query, &key).await?;
    let captures = state.store.waiting_captures(&record.id, &key).await?;
    let issued = if is_active_liveness(&step) {
        verification::issued_challenges(record.progress()?.get(&key))
    } else {
        None
    };
    if let Some(missing) = verification::missing_captures(&step, &captures, issued.as_deref()) {
        return Err(ApiError::bad_request(
            "captures_missing",
            format!("step {key:?} cannot be submitted yet: it needs {missing}"),
        ));
    }
    let attempts = state.store.step_attempts(&record.id, &key).await?;
    let max = state.verifier.config().max_attempts;
    if attempts >= max {
        return Err(ApiError::Conflict(format!(
            "step {key:?} has been submitted {attempts} times, the most allowed"
        )));
    }
    state
        .verifier
        .admit(&step)
        .map_err(|refusal| match refusal {
            Refusal::ModelsMissing(message) => ApiError::Unavailable {
                code: "models_missing",
                message,
                retry_after: None,
            },
            Refusal::Busy { pending } => ApiError::Unavailable {
                code: "busy",
                message: format!(
                    "{pending} submissions are waiting to be scored; try again shortly"
                ),
                retry_after: Some(5),
            },
        })?;
    let now = state.clock.now();
    let job = JobRecord {
        id: uuid::Uuid::now_v7().to_string(),
        session_id: record.id.clone(),
        step_key: key.clone(),
        attempt: attempts + 1,
        state: "queued".into(),
        created_at: now.0,
        finished_at: None,
    };
    let progress = StepProgress {
        state: StepState::InProgress,
        result: Some(match &issued {
            // The challenges travel with the job: the worker checks the
            // frames against what was asked.
            Some(list) => {
                json!({"status": "processing", "attempt": job.attempt, "challenges": list})
            }
            None => json!({"status": "processing", "attempt": job.attempt}),
        }),
        updated_at: Some(now),
    };
    match state.store.submit_step(&job, progress, now).await? {
        StepRecorded::Recorded { .. } => {}
        StepRecorded::Closed(status) => {
            return Err(ApiError::Gone {
                code: "session_closed",
                message: format!("the session is {}", status.as_str()),
            });
        }
        StepRecorded::NoSuchSession | StepRecorded::NoSuchStep | StepRecorded::AlreadyDone => {
            return Err(ApiError::NotFound("the session or step is gone".into()));
        }
    }
    let attempt = job.attempt;
    state.verifier.spawn(job);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "step": key,
            "status": "processing",
            "attempt": attempt,
            "captures": captures.len(),
        })),
    ))
}
