use sqlx::FromRow;

use super::audit::append_audit;
use super::{AuditRecord, Store, StoreError, is_unique_violation, read, write_tx};
use crate::api::{Role, StaffAccount};
use crate::clock::Millis;

#[derive(Debug, Clone, FromRow)]
pub struct StaffRecord {
    pub id: String,
    pub name: String,
    pub role: String,
    pub groups: String,
    pub token_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl StaffRecord {
    pub fn role(&self) -> Result<Role, StoreError> {
        Role::parse(&self.role)
            .ok_or_else(|| StoreError::corrupt(format!("staff role {:?}", self.role)))
    }

    pub fn groups(&self) -> Result<Vec<String>, StoreError> {
        serde_json::from_str(&self.groups).map_err(StoreError::corrupt)
    }

    pub fn to_api(&self) -> Result<StaffAccount, StoreError> {
        Ok(StaffAccount {
            id: self.id.clone(),
            name: self.name.clone(),
            role: self.role()?,
            groups: self.groups()?,
            disabled: self.disabled,
            created_at: Millis(self.created_at),
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewStaff {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub groups: Vec<String>,
    pub token_hash: String,
}

const COLUMNS: &str = "id, name, role, groups, token_hash, disabled, created_at, updated_at";

impl Store {
    /// Creates a staff account. The first admin is created by the server
    /// itself and audited with the system as its actor.
    pub async fn create_staff(
        &self,
        staff: &NewStaff,
        audit: &AuditRecord,
    ) -> Result<StaffRecord, StoreError> {
        let now = Millis::now();
        let groups = serde_json::to_string(&staff.groups).map_err(StoreError::corrupt)?;
        let result: Result<(), StoreError> = write_tx!(self, tx => {
            sqlx::query(
                "INSERT INTO staff (id, name, role, groups, token_hash, disabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, FALSE, $6, $6)",
            )
            .bind(&staff.id)
            .bind(&staff.name)
            .bind(staff.role.as_str())
            .bind(&groups)
            .bind(&staff.token_hash)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| if is_unique_violation(&e) {
                StoreError::Conflict(format!("a staff account named {:?}", staff.name))
            } else {
                e.into()
            })?;
            append_audit!(tx, audit, now);
            Ok(())
        });
        result?;
        self.staff(&staff.id)
            .await?
            .ok_or_else(|| StoreError::corrupt("staff account vanished after insert"))
    }

    pub async fn staff(&self, id: &str) -> Result<Option<StaffRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM staff WHERE id = $1 OR name = $1");
        Ok(read!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
    }

    pub async fn staff_by_token_hash(&self, hash: &str) -> Result<Option<StaffRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM staff WHERE token_hash = $1");
        Ok(read!(self, pool => sqlx::query_as(&sql).bind(hash).fetch_optional(pool).await?))
    }

    pub async fn staff_list(&self) -> Result<Vec<StaffRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM staff ORDER BY created_at, id");
        Ok(read!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?))
    }

    pub async fn count_staff(&self) -> Result<i64, StoreError> {
        Ok(
            read!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM staff").fetch_one(pool).await?),
        )
    }

    /// Sets `disabled` or replaces the token hash; `None` when there is no such account.
    pub async fn update_staff(
        &self,
        id: &str,
        disabled: Option<bool>,
        token_hash: Option<&str>,
        audit: &AuditRecord,
    ) -> Result<Option<StaffRecord>, StoreError> {
        let now = Millis::now();
        let updated: u64 = write_tx!(self, tx => {
            let done = sqlx::query(
                "UPDATE staff SET disabled = COALESCE($1, disabled), token_hash = COALESCE($2, token_hash), \
                 updated_at = $3 WHERE id = $4",
            )
            .bind(disabled)
            .bind(token_hash)
            .bind(now.0)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                append_audit!(tx, audit, now);
            }
            done.rows_affected()
        });
        if updated == 0 {
            return Ok(None);
        }
        self.staff(id).await
    }
}
