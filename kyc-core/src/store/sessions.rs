use sqlx::{FromRow, QueryBuilder};

use super::audit::append_audit;
use super::{AuditRecord, Db, Store, StoreError, read, write_tx};
use crate::clock::Millis;
use crate::domain::{SessionSpec, SessionStatus};
use crate::flow::{self, Lifetime, Progress, StepProgress};

/// A session row.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRecord {
    pub id: String,
    pub token_hash: String,
    pub company_id: String,
    pub status: String,
    pub spec: String,
    pub progress: String,
    pub name: Option<String>,
    pub client_user_id: Option<String>,
    pub group_id: Option<String>,
    pub schedule_start: Option<i64>,
    pub schedule_end: Option<i64>,
    pub link_expires_at: i64,
    pub session_time_secs: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: Option<String>,
    pub version: i64,
}

impl SessionRecord {
    pub fn spec(&self) -> Result<SessionSpec, StoreError> {
        serde_json::from_str(&self.spec).map_err(StoreError::corrupt)
    }

    pub fn progress(&self) -> Result<Progress, StoreError> {
        serde_json::from_str(&self.progress).map_err(StoreError::corrupt)
    }

    pub fn stored_status(&self) -> Result<SessionStatus, StoreError> {
        SessionStatus::parse(&self.status)
            .ok_or_else(|| StoreError::corrupt(format!("session status {:?}", self.status)))
    }

    pub fn lifetime(&self) -> Lifetime {
        Lifetime {
            link_expires_at: Millis(self.link_expires_at),
            session_time_secs: self.session_time_secs,
            started_at: self.started_at.map(Millis),
            schedule_start: self.schedule_start.map(Millis),
            schedule_end: self.schedule_end.map(Millis),
        }
    }

    /// The status at `now`, time taken into account.
    pub fn status_at(&self, now: Millis) -> Result<SessionStatus, StoreError> {
        Ok(self.lifetime().status_at(self.stored_status()?, now))
    }
}

/// What recording a step's progress did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepRecorded {
    /// Recorded; `completed` when this made the end user's flow complete.
    Recorded {
        completed: bool,
    },
    NoSuchSession,
    NoSuchStep,
    /// The session is completed, expired or cancelled: nothing may change it.
    Closed(SessionStatus),
    /// A verification job's result was already written (a job resumed by
    /// two servers at once finishes once).
    AlreadyDone,
}

pub(super) enum Change {
    Refused(StepRecorded),
    Write { json: String, completed: bool },
}

/// What recording `progress` for step `key` does to `record`.
pub(super) fn change_progress(
    record: &SessionRecord,
    key: &str,
    progress: &StepProgress,
    now: Millis,
) -> Result<Change, StoreError> {
    let status = record.status_at(now)?;
    if status.is_final() {
        return Ok(Change::Refused(StepRecorded::Closed(status)));
    }
    let spec = record.spec()?;
    if !flow::has_step(&spec.steps, key) {
        return Ok(Change::Refused(StepRecorded::NoSuchStep));
    }
    let mut all = record.progress()?;
    all.insert(key.to_owned(), progress.clone());
    let completed = flow::end_user_flow_complete(&spec.steps, &all);
    let json = serde_json::to_string(&all).map_err(StoreError::corrupt)?;
    Ok(Change::Write { json, completed })
}

/// Writes a session's progress ($1) at $2, completing it when $3 holds; $4 is the id.
pub(super) const UPDATE_PROGRESS: &str = "UPDATE sessions SET progress = $1, updated_at = $2, \
    version = version + 1, status = CASE WHEN $3 THEN 'completed' ELSE status END, \
    completed_at = CASE WHEN $3 THEN $2 ELSE completed_at END WHERE id = $4";

/// A session about to be stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub token_hash: String,
    pub company_id: String,
    pub spec: SessionSpec,
    pub link_expires_at: Millis,
    pub session_time_secs: i64,
    pub created_at: Millis,
    pub created_by: Option<String>,
}

/// Filters of a session listing; newest first.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub company_id: Option<String>,
    pub status: Option<SessionStatus>,
    pub group_id: Option<String>,
    pub client_user_id: Option<String>,
    pub created_after: Option<Millis>,
    pub created_before: Option<Millis>,
    /// Only sessions without a group or in one of these (an operator's view).
    pub visible_to_groups: Option<Vec<String>>,
    /// Sessions with ids below this one (the previous page's last id).
    pub cursor: Option<String>,
    pub limit: u32,
}

pub(super) const INSERT: &str = "INSERT INTO sessions (id, token_hash, company_id, status, spec, progress, \
    name, client_user_id, group_id, schedule_start, schedule_end, link_expires_at, session_time_secs, \
    created_at, updated_at, created_by, version) \
    VALUES ($1, $2, $3, 'created', $4, '{}', $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, 0)";

const COLUMNS: &str = "id, token_hash, company_id, status, spec, progress, name, client_user_id, group_id, \
    schedule_start, schedule_end, link_expires_at, session_time_secs, started_at, completed_at, created_at, \
    updated_at, created_by, version";

/// Binds a [`NewSession`] to [`INSERT`] and runs it on `$executor`.
macro_rules! insert_session {
    ($executor:expr, $session:expr, $spec_json:expr) => {{
        let s: &$crate::store::NewSession = $session;
        sqlx::query($crate::store::sessions::INSERT)
            .bind(&s.id)
            .bind(&s.token_hash)
            .bind(&s.company_id)
            .bind($spec_json)
            .bind(&s.spec.params.name)
            .bind(&s.spec.params.client_user_id)
            .bind(&s.spec.params.group_id)
            .bind(s.spec.params.schedule_start.map(|m| m.0))
            .bind(s.spec.params.schedule_end.map(|m| m.0))
            .bind(s.link_expires_at.0)
            .bind(s.session_time_secs)
            .bind(s.created_at.0)
            .bind(&s.created_by)
            .execute($executor)
            .await
    }};
}
pub(crate) use insert_session;

/// SQL for the status at `$now` (bound first), mirroring [`Lifetime::status_at`].
fn push_effective_status<'a, DB>(q: &mut QueryBuilder<'a, DB>, now: i64)
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push("(CASE WHEN status = 'created' AND (link_expires_at <= ");
    q.push_bind(now);
    q.push(" OR (schedule_end IS NOT NULL AND schedule_end <= ");
    q.push_bind(now);
    q.push(")) THEN 'expired' WHEN status = 'in_progress' AND (started_at + session_time_secs * 1000 <= ");
    q.push_bind(now);
    q.push(" OR (schedule_end IS NOT NULL AND schedule_end <= ");
    q.push_bind(now);
    q.push(")) THEN 'expired' ELSE status END)");
}

fn list_query<'a, DB>(query: &SessionQuery, now: i64) -> QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM sessions WHERE 1 = 1"));
    if let Some(company) = &query.company_id {
        q.push(" AND company_id = ").push_bind(company.clone());
    }
    if let Some(status) = query.status {
        q.push(" AND ");
        push_effective_status(&mut q, now);
        q.push(" = ").push_bind(status.as_str().to_owned());
    }
    if let Some(group) = &query.group_id {
        q.push(" AND group_id = ").push_bind(group.clone());
    }
    if let Some(client) = &query.client_user_id {
        q.push(" AND client_user_id = ").push_bind(client.clone());
    }
    if let Some(after) = query.created_after {
        q.push(" AND created_at >= ").push_bind(after.0);
    }
    if let Some(before) = query.created_before {
        q.push(" AND created_at < ").push_bind(before.0);
    }
    if let Some(groups) = &query.visible_to_groups {
        q.push(" AND (group_id IS NULL");
        for group in groups {
            q.push(" OR group_id = ").push_bind(group.clone());
        }
        q.push(")");
    }
    if let Some(cursor) = &query.cursor {
        q.push(" AND id < ").push_bind(cursor.clone());
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(query.limit));
    q
}

impl Store {
    /// Stores a session created through `/begin/`. On SQLite it joins the
    /// next group commit; on PostgreSQL it is a plain insert.
    pub async fn insert_session(&self, session: NewSession) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite { .. } => self.writer.insert(session).await,
            Db::Postgres(pool) => {
                let spec = serde_json::to_string(&session.spec).map_err(StoreError::corrupt)?;
                insert_session!(pool, &session, spec)?;
                Ok(())
            }
        }
    }

    /// Stores a session created by staff, with its audit record.
    pub async fn insert_session_audited(
        &self,
        session: &NewSession,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let spec = serde_json::to_string(&session.spec).map_err(StoreError::corrupt)?;
        let now = Millis::now();
        write_tx!(self, tx => {
            insert_session!(&mut *tx, session, &spec)?;
            append_audit!(tx, audit, now);
        });
        Ok(())
    }

    pub async fn session_by_token_hash(
        &self,
        hash: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE token_hash = $1");
        Ok(read!(self, pool => sqlx::query_as(&sql).bind(hash).fetch_optional(pool).await?))
    }

    pub async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id = $1");
        Ok(read!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
    }

    pub async fn sessions(
        &self,
        query: &SessionQuery,
        now: Millis,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(read!(self, pool => list_query(query, now.0)
            .build_query_as::<SessionRecord>()
            .fetch_all(pool)
            .await?))
    }

    pub async fn count_sessions(&self) -> Result<i64, StoreError> {
        Ok(
            read!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(pool).await?),
        )
    }

    /// Marks a session started by its end user, if it may start at `now`.
    /// Returns whether this call started it.
    pub async fn start_session(&self, id: &str, now: Millis) -> Result<bool, StoreError> {
        let sql = "UPDATE sessions SET status = 'in_progress', started_at = $1, updated_at = $1, \
                   version = version + 1 WHERE id = $2 AND status = 'created' AND link_expires_at > $1 \
                   AND (schedule_start IS NULL OR schedule_start <= $1) \
                   AND (schedule_end IS NULL OR schedule_end > $1)";
        let started = write_tx!(self, tx => sqlx::query(sql)
            .bind(now.0)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected());
        Ok(started == 1)
    }

    /// Records the progress of one step (a capture scored, a form
    /// answered…), completing the session when that settles the end user's
    /// last step. The read and the write happen in one transaction holding
    /// the row (`FOR UPDATE` on PostgreSQL; SQLite has a single writer), so
    /// writers racing on one session (the widget, a scoring job) never lose
    /// each other's updates.
    pub async fn record_step(
        &self,
        id: &str,
        key: &str,
        progress: StepProgress,
        now: Millis,
    ) -> Result<StepRecorded, StoreError> {
        let lock = self.row_lock();
        let select = format!("SELECT {COLUMNS} FROM sessions WHERE id = $1{lock}");
        let update = UPDATE_PROGRESS;
        let outcome = write_tx!(self, tx => {
            let record: Option<SessionRecord> =
                sqlx::query_as(&select).bind(id).fetch_optional(&mut *tx).await?;
            match record {
                None => StepRecorded::NoSuchSession,
                Some(record) => match change_progress(&record, key, &progress, now)? {
                    Change::Refused(outcome) => outcome,
                    Change::Write { json, completed } => {
                        sqlx::query(update)
                            .bind(&json)
                            .bind(now.0)
                            .bind(completed)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        StepRecorded::Recorded { completed }
                    }
                },
            }
        });
        Ok(outcome)
    }

    /// Sets the status of a session (e.g. cancelled by staff) if its stored
    /// version is still `version`; returns whether it changed.
    pub async fn set_session_status(
        &self,
        id: &str,
        version: i64,
        status: SessionStatus,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let now = Millis::now();
        let sql = "UPDATE sessions SET status = $1, updated_at = $2, version = version + 1, \
                   completed_at = CASE WHEN $1 = 'completed' THEN $2 ELSE completed_at END \
                   WHERE id = $3 AND version = $4";
        let changed = write_tx!(self, tx => {
            let done = sqlx::query(sql)
                .bind(status.as_str())
                .bind(now.0)
                .bind(id)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 1 {
                append_audit!(tx, audit, now);
            }
            done.rows_affected() == 1
        });
        Ok(changed)
    }
}
