use sqlx::FromRow;

use super::{Store, StoreError, read};
use crate::api::AuditEntry;
use crate::clock::Millis;

/// What a staff member did, written in the same transaction as the deed.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub action: String,
    pub target: Option<String>,
    pub details: serde_json::Value,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Entries before this sequence number (for paging backwards).
    pub before: Option<i64>,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub limit: u32,
}

#[derive(FromRow)]
struct AuditRow {
    seq: i64,
    at: i64,
    actor_id: Option<String>,
    actor_name: String,
    action: String,
    target: Option<String>,
    details: String,
    request_id: Option<String>,
}

const INSERT: &str = "INSERT INTO audit_log (at, actor_id, actor_name, action, target, details, request_id) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Appends `record` inside the caller's transaction.
macro_rules! append_audit {
    ($tx:expr, $record:expr, $at:expr) => {{
        let record: &$crate::store::AuditRecord = $record;
        sqlx::query($crate::store::audit::insert_sql())
            .bind($at.0)
            .bind(&record.actor_id)
            .bind(&record.actor_name)
            .bind(&record.action)
            .bind(&record.target)
            .bind(record.details.to_string())
            .bind(&record.request_id)
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(crate) use append_audit;

pub(crate) fn insert_sql() -> &'static str {
    INSERT
}

impl Store {
    /// Records an action that changes nothing else (e.g. viewing a session).
    pub async fn audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let now = Millis::now();
        super::write_tx!(self, tx => append_audit!(tx, record, now));
        Ok(())
    }

    /// Newest first.
    pub async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = "SELECT seq, at, actor_id, actor_name, action, target, details, request_id FROM audit_log \
                   WHERE ($1 IS NULL OR seq < $1) AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR actor_id = $3) \
                   ORDER BY seq DESC LIMIT $4";
        let rows: Vec<AuditRow> = read!(self, pool => sqlx::query_as(sql)
            .bind(query.before)
            .bind(&query.action)
            .bind(&query.actor_id)
            .bind(i64::from(query.limit))
            .fetch_all(pool)
            .await?);
        rows.into_iter()
            .map(|row| {
                Ok(AuditEntry {
                    seq: row.seq,
                    at: Millis(row.at),
                    actor_id: row.actor_id,
                    actor_name: row.actor_name,
                    action: row.action,
                    target: row.target,
                    details: serde_json::from_str(&row.details).map_err(StoreError::corrupt)?,
                    request_id: row.request_id,
                })
            })
            .collect()
    }
}
