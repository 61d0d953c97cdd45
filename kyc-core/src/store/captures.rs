//! Captures and verification jobs. The image bytes live in the blob store;
//! a row here says what the capture is, where its bytes are and which job
//! scored it. Submitting a step moves every waiting capture into a new job
//! and marks the step as processing in one transaction, so a capture is
//! scored exactly once and a crash between the two cannot happen.

use sqlx::FromRow;

use super::sessions::{Change, change_progress};
use super::{Store, StoreError, read, write_tx};
use crate::clock::Millis;
use crate::flow::StepProgress;
use crate::store::{SessionRecord, StepRecorded};

/// A capture about to be stored (its bytes already are).
#[derive(Debug, Clone)]
pub struct NewCapture {
    pub id: String,
    pub session_id: String,
    pub step_key: String,
    pub kind: String,
    pub challenge: Option<i64>,
    pub media_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub blob_key: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CaptureRecord {
    pub id: String,
    pub session_id: String,
    pub step_key: String,
    pub kind: String,
    pub challenge: Option<i64>,
    pub media_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub blob_key: String,
    pub job_id: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct JobRecord {
    pub id: String,
    pub session_id: String,
    pub step_key: String,
    pub attempt: i64,
    pub state: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// What storing a capture did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureStored {
    Stored,
    /// The step already holds `limit` captures waiting for submission.
    TooMany {
        limit: i64,
    },
}

const CAPTURE_COLUMNS: &str = "id, session_id, step_key, kind, challenge, media_type, size_bytes, \
    sha256, blob_key, job_id, created_at";
const JOB_COLUMNS: &str = "id, session_id, step_key, attempt, state, created_at, finished_at";
const SESSION_COLUMNS: &str = "id, token_hash, company_id, status, spec, progress, name, client_user_id, \
    group_id, schedule_start, schedule_end, link_expires_at, session_time_secs, started_at, completed_at, \
    created_at, updated_at, created_by, version";

impl Store {
    /// Stores a capture unless its step already has `limit` waiting ones.
    pub async fn insert_capture(
        &self,
        capture: &NewCapture,
        limit: i64,
    ) -> Result<CaptureStored, StoreError> {
        let count = "SELECT COUNT(*) FROM captures WHERE session_id = $1 AND step_key = $2 \
                     AND job_id IS NULL";
        let insert = format!(
            "INSERT INTO captures ({CAPTURE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10)"
        );
        let outcome = write_tx!(self, tx => {
            let waiting: i64 = sqlx::query_scalar(count)
                .bind(&capture.session_id)
                .bind(&capture.step_key)
                .fetch_one(&mut *tx)
                .await?;
            if waiting >= limit {
                CaptureStored::TooMany { limit }
            } else {
                sqlx::query(&insert)
                    .bind(&capture.id)
                    .bind(&capture.session_id)
                    .bind(&capture.step_key)
                    .bind(&capture.kind)
                    .bind(capture.challenge)
                    .bind(&capture.media_type)
                    .bind(capture.size_bytes)
                    .bind(&capture.sha256)
                    .bind(&capture.blob_key)
                    .bind(capture.created_at.0)
                    .execute(&mut *tx)
                    .await?;
                CaptureStored::Stored
            }
        });
        Ok(outcome)
    }

    /// The captures of a step not yet in a job, oldest first.
    pub async fn waiting_captures(
        &self,
        session_id: &str,
        step_key: &str,
    ) -> Result<Vec<CaptureRecord>, StoreError> {
        let sql = format!(
            "SELECT {CAPTURE_COLUMNS} FROM captures WHERE session_id = $1 AND step_key = $2 \
             AND job_id IS NULL ORDER BY created_at, id"
        );
        Ok(read!(self, pool => sqlx::query_as(&sql)
            .bind(session_id)
            .bind(step_key)
            .fetch_all(pool)
            .await?))
    }

    /// The captures a job scores, oldest first.
    pub async fn job_captures(&self, job_id: &str) -> Result<Vec<CaptureRecord>, StoreError> {
        let sql = format!(
            "SELECT {CAPTURE_COLUMNS} FROM captures WHERE job_id = $1 ORDER BY created_at, id"
        );
        Ok(read!(self, pool => sqlx::query_as(&sql).bind(job_id).fetch_all(pool).await?))
    }

    /// Every capture of a session, oldest first (for staff).
    pub async fn session_captures(
        &self,
        session_id: &str,
    ) -> Result<Vec<CaptureRecord>, StoreError> {
        let sql = format!(
            "SELECT {CAPTURE_COLUMNS} FROM captures WHERE session_id = $1 ORDER BY created_at, id"
        );
        Ok(read!(self, pool => sqlx::query_as(&sql).bind(session_id).fetch_all(pool).await?))
    }

    /// How many jobs a step has had (the next one's attempt is this plus one).
    pub async fn step_attempts(&self, session_id: &str, step_key: &str) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM verification_jobs WHERE session_id = $1 AND step_key = $2";
        Ok(read!(self, pool => sqlx::query_scalar(sql)
            .bind(session_id)
            .bind(step_key)
            .fetch_one(pool)
            .await?))
    }

    /// Submits a step: a new job takes every waiting capture of the step and
    /// the step's progress becomes `progress`, in one transaction. Refused
    /// like [`Store::record_step`] when the session is closed.
    pub async fn submit_step(
        &self,
        job: &JobRecord,
        progress: StepProgress,
        now: Millis,
    ) -> Result<StepRecorded, StoreError> {
        let lock = self.row_lock();
        let select = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1{lock}");
        let insert_job = format!(
            "INSERT INTO verification_jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL)"
        );
        let claim = "UPDATE captures SET job_id = $1 WHERE session_id = $2 AND step_key = $3 \
                     AND job_id IS NULL";
        let outcome = write_tx!(self, tx => {
            let record: Option<SessionRecord> = sqlx::query_as(&select)
                .bind(&job.session_id)
                .fetch_optional(&mut *tx)
                .await?;
            match record {
                None => StepRecorded::NoSuchSession,
                Some(record) => match change_progress(&record, &job.step_key, &progress, now)? {
                    Change::Refused(outcome) => outcome,
                    Change::Write { json, completed } => {
                        sqlx::query(&insert_job)
                            .bind(&job.id)
                            .bind(&job.session_id)
                            .bind(&job.step_key)
                            .bind(job.attempt)
                            .bind(&job.state)
                            .bind(job.created_at)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(claim)
                            .bind(&job.id)
                            .bind(&job.session_id)
                            .bind(&job.step_key)
                            .execute(&mut *tx)
                            .await?;
                        write_progress!(tx, &job.session_id, &json, completed, now);
                        StepRecorded::Recorded { completed }
                    }
                },
            }
        });
        Ok(outcome)
    }

    /// Writes a job's result to its step and marks the job done, in one
    /// transaction. The result is kept even when the session closed while
    /// the job ran (it is evidence); it completes the session only while
    /// the session is open.
    pub async fn finish_job(
        &self,
        job_id: &str,
        progress: StepProgress,
        now: Millis,
    ) -> Result<StepRecorded, StoreError> {
        let lock = self.row_lock();
        let job_sql = format!("SELECT {JOB_COLUMNS} FROM verification_jobs WHERE id = $1");
        let select = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1{lock}");
        let done = "UPDATE verification_jobs SET state = 'done', finished_at = $1 WHERE id = $2";
        let outcome = write_tx!(self, tx => {
            let job: Option<JobRecord> =
                sqlx::query_as(&job_sql).bind(job_id).fetch_optional(&mut *tx).await?;
            let record: Option<SessionRecord> = match &job {
                Some(job) => sqlx::query_as(&select)
                    .bind(&job.session_id)
                    .fetch_optional(&mut *tx)
                    .await?,
                None => None,
            };
            match (job, record) {
                (Some(job), _) if job.state == "done" => StepRecorded::AlreadyDone,
                (Some(job), Some(record)) => {
                    let outcome = match change_progress(&record, &job.step_key, &progress, now)? {
                        Change::Write { json, completed } => {
                            write_progress!(tx, &record.id, &json, completed, now);
                            StepRecorded::Recorded { completed }
                        }
                        Change::Refused(StepRecorded::Closed(status)) => {
                            let mut all = record.progress()?;
                            all.insert(job.step_key.clone(), progress.clone());
                            let json = serde_json::to_string(&all).map_err(StoreError::corrupt)?;
                            write_progress!(tx, &record.id, &json, false, now);
                            StepRecorded::Closed(status)
                        }
                        Change::Refused(other) => other,
                    };
                    sqlx::query(done).bind(now.0).bind(job_id).execute(&mut *tx).await?;
                    outcome
                }
                _ => StepRecorded::NoSuchSession,
            }
        });
        Ok(outcome)
    }

    /// Jobs not yet done, oldest first: what a restarted server resumes.
    pub async fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM verification_jobs WHERE state <> 'done' ORDER BY created_at, id"
        );
        Ok(read!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?))
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM verification_jobs WHERE id = $1");
        Ok(read!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
    }
}

/// The session update both submitting and finishing make, inside `$tx`.
macro_rules! write_progress {
    ($tx:expr, $id:expr, $json:expr, $completed:expr, $now:expr) => {
        sqlx::query(super::sessions::UPDATE_PROGRESS)
            .bind($json)
            .bind($now.0)
            .bind($completed)
            .bind($id)
            .execute(&mut *$tx)
            .await?
    };
}
use write_progress;
