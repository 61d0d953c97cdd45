use sqlx::FromRow;

use super::audit::append_audit;
use super::{AuditRecord, Store, StoreError, is_unique_violation, read, write_tx};
use crate::api::Company;
use crate::clock::Millis;

/// A company as stored: its credentials only as a hash and a sealed secret.
#[derive(Debug, Clone, FromRow)]
pub struct CompanyRecord {
    pub id: String,
    pub name: String,
    pub key_hash: String,
    pub key_hint: String,
    pub secret_sealed: Option<String>,
    pub disabled: bool,
    pub link_ttl_secs: i64,
    pub session_time_secs: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl CompanyRecord {
    pub fn to_api(&self) -> Company {
        Company {
            id: self.id.clone(),
            name: self.name.clone(),
            key_hint: self.key_hint.clone(),
            hmac: self.secret_sealed.is_some(),
            disabled: self.disabled,
            link_ttl_secs: self.link_ttl_secs,
            session_time_secs: self.session_time_secs,
            created_at: Millis(self.created_at),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewCompany {
    pub id: String,
    pub name: String,
    pub key_hash: String,
    pub key_hint: String,
    pub secret_sealed: Option<String>,
    pub link_ttl_secs: i64,
    pub session_time_secs: i64,
}

const COLUMNS: &str = "id, name, key_hash, key_hint, secret_sealed, disabled, link_ttl_secs, \
                       session_time_secs, created_at, updated_at";

impl Store {
    pub async fn create_company(
        &self,
        company: &NewCompany,
        audit: &AuditRecord,
    ) -> Result<CompanyRecord, StoreError> {
        let now = Millis::now();
        let sql = "INSERT INTO companies (id, name, key_hash, key_hint, secret_sealed, disabled, \
                   link_ttl_secs, session_time_secs, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, FALSE, $6, $7, $8, $8)";
        let result: Result<(), StoreError> = write_tx!(self, tx => {
            sqlx::query(sql)
                .bind(&company.id)
                .bind(&company.name)
                .bind(&company.key_hash)
                .bind(&company.key_hint)
                .bind(&company.secret_sealed)
                .bind(company.link_ttl_secs)
                .bind(company.session_time_secs)
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(|e| if is_unique_violation(&e) {
                    StoreError::Conflict("a company with this key".into())
                } else {
                    e.into()
                })?;
            append_audit!(tx, audit, now);
            Ok(())
        });
        result?;
        self.company(&company.id)
            .await?
            .ok_or_else(|| StoreError::corrupt("company vanished after insert"))
    }

    pub async fn company(&self, id: &str) -> Result<Option<CompanyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM companies WHERE id = $1");
        Ok(read!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
    }

    pub async fn company_by_key_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<CompanyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM companies WHERE key_hash = $1");
        Ok(read!(self, pool => sqlx::query_as(&sql).bind(key_hash).fetch_optional(pool).await?))
    }

    pub async fn companies(&self) -> Result<Vec<CompanyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM companies ORDER BY created_at, id");
        Ok(read!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?))
    }

    /// Applies `change` to the company's row; `None` when there is no such company.
    pub async fn update_company(
        &self,
        id: &str,
        change: CompanyChange<'_>,
        audit: &AuditRecord,
    ) -> Result<Option<CompanyRecord>, StoreError> {
        let now = Millis::now();
        let updated: u64 = write_tx!(self, tx => {
            let done = match &change {
                CompanyChange::Disabled(disabled) => sqlx::query(
                    "UPDATE companies SET disabled = $1, updated_at = $2 WHERE id = $3",
                )
                .bind(*disabled)
                .bind(now.0)
                .bind(id)
                .execute(&mut *tx)
                .await?,
                CompanyChange::Key { hash, hint } => sqlx::query(
                    "UPDATE companies SET key_hash = $1, key_hint = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(*hash)
                .bind(*hint)
                .bind(now.0)
                .bind(id)
                .execute(&mut *tx)
                .await?,
                CompanyChange::Secret(sealed) => sqlx::query(
                    "UPDATE companies SET secret_sealed = $1, updated_at = $2 WHERE id = $3",
                )
                .bind(*sealed)
                .bind(now.0)
                .bind(id)
                .execute(&mut *tx)
                .await?,
                CompanyChange::Settings { name, link_ttl_secs, session_time_secs } => sqlx::query(
                    "UPDATE companies SET name = COALESCE($1, name), \
                     link_ttl_secs = COALESCE($2, link_ttl_secs), \
                     session_time_secs = COALESCE($3, session_time_secs), updated_at = $4 WHERE id = $5",
                )
                .bind(*name)
                .bind(*link_ttl_secs)
                .bind(*session_time_secs)
                .bind(now.0)
                .bind(id)
                .execute(&mut *tx)
                .await?,
            };
            if done.rows_affected() > 0 {
                append_audit!(tx, audit, now);
            }
            done.rows_affected()
        });
        if updated == 0 {
            return Ok(None);
        }
        self.company(id).await
    }
}

/// One change to a company.
#[derive(Debug, Clone)]
pub enum CompanyChange<'a> {
    Disabled(bool),
    Key {
        hash: &'a str,
        hint: &'a str,
    },
    Secret(Option<&'a str>),
    Settings {
        name: Option<&'a str>,
        link_ttl_secs: Option<i64>,
        session_time_secs: Option<i64>,
    },
}
