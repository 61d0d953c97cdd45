//! The staff API under `/api/staff/`: bearer tokens, roles (admin, operator),
//! and an audit record for every action, written with the action itself.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use kyc_core::api::{
    AuditEntry, Company, CompanyCredentials, CreateCompany, CreateStaff, Page, Role,
    SessionSummary, StaffAccount, StaffCredentials, StaffSession, UpdateCompany,
};
use kyc_core::auth::{self, TokenKind};
use kyc_core::clock::{Millis, parse_datetime};
use kyc_core::domain::SessionStatus;
use kyc_core::store::{
    AuditQuery, AuditRecord, CompanyChange, CompanyRecord, NewCompany, NewStaff, SessionQuery,
    SessionRecord, StaffRecord,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::app::{AppState, RequestId};
use crate::error::ApiError;
use crate::integrator::{self, IntegratorRequest};
use crate::views;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/staff/me", get(me))
        .route(
            "/api/staff/companies",
            get(list_companies).post(create_company),
        )
        .route(
            "/api/staff/companies/{id}",
            get(show_company).patch(update_company),
        )
        .route("/api/staff/companies/{id}/disable", post(disable_company))
        .route("/api/staff/companies/{id}/enable", post(enable_company))
        .route(
            "/api/staff/companies/{id}/rotate-key",
            post(rotate_company_key),
        )
        .route(
            "/api/staff/companies/{id}/secret",
            axum::routing::put(set_secret).delete(clear_secret),
        )
        .route("/api/staff/accounts", get(list_staff).post(create_staff))
        .route("/api/staff/accounts/{id}", get(show_staff))
        .route("/api/staff/accounts/{id}/disable", post(disable_staff))
        .route("/api/staff/accounts/{id}/enable", post(enable_staff))
        .route(
            "/api/staff/accounts/{id}/rotate-token",
            post(rotate_staff_token),
        )
        .route(
            "/api/staff/sessions",
            get(list_sessions).post(create_session),
        )
        .route("/api/staff/sessions/{id}", get(show_session))
        .route("/api/staff/sessions/{id}/cancel", post(cancel_session))
        .route("/api/staff/sessions/{id}/captures", get(session_captures))
        .route(
            "/api/staff/sessions/{id}/captures/{capture_id}",
            get(capture_bytes),
        )
        .route("/api/staff/audit", get(audit_log))
}

/// The staff member making a request.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub groups: Vec<String>,
    pub request_id: Option<String>,
}

impl Principal {
    fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Operator => Err(ApiError::Forbidden("this needs the admin role".into())),
        }
    }

    fn audit(&self, action: &str, target: Option<&str>, details: Value) -> AuditRecord {
        AuditRecord {
            actor_id: Some(self.id.clone()),
            actor_name: self.name.clone(),
            action: action.to_owned(),
            target: target.map(str::to_owned),
            details,
            request_id: self.request_id.clone(),
        }
    }

    /// Whether an operator may see a session of `group`.
    fn sees_group(&self, group: Option<&str>) -> bool {
        self.role == Role::Admin || group.is_none_or(|g| self.groups.iter().any(|mine| mine == g))
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "a staff token is required (Authorization: Bearer <token>)".into(),
                )
            })?;
        let record = state
            .store
            .staff_by_token_hash(&auth::token_hash(token))
            .await?
            .filter(|s| !s.disabled)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "the staff token is not valid, or its account is disabled".into(),
                )
            })?;
        Ok(Self {
            role: record.role()?,
            groups: record.groups()?,
            id: record.id,
            name: record.name,
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        })
    }
}

/// A JSON body, with errors that say what is wrong and where.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { bytes };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not valid: {e}")))
}

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::NotFound(format!("no {what} {id:?}"))
}

async fn me(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<StaffAccount>, ApiError> {
    let record = state
        .store
        .staff(&principal.id)
        .await?
        .ok_or_else(|| not_found("staff account", &principal.id))?;
    Ok(Json(record.to_api()?))
}

// --- companies ---------------------------------------------------------------

async fn list_companies(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<Vec<Company>>, ApiError> {
    principal.require_admin()?;
    Ok(Json(
        state
            .store
            .companies()
            .await?
            .iter()
            .map(CompanyRecord::to_api)
            .collect(),
    ))
}

async fn show_company(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Company>, ApiError> {
    principal.require_admin()?;
    let company = state
        .store
        .company(&id)
        .await?
        .ok_or_else(|| not_found("company", &id))?;
    Ok(Json(company.to_api()))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        Err(ApiError::invalid("name", "must not be empty"))
    } else if name.chars().count() > 200 {
        Err(ApiError::invalid("name", "must be at most 200 characters"))
    } else {
        Ok(())
    }
}

fn check_company_times(
    state: &AppState,
    link_ttl: Option<i64>,
    session_time: Option<i64>,
) -> Result<(), ApiError> {
    let s = &state.config.sessions;
    if let Some(ttl) = link_ttl.filter(|t| !(60..=s.staff_link_ttl_max_secs).contains(t)) {
        return Err(ApiError::invalid(
            "link_ttl_secs",
            format!(
                "must be from 60 to {} seconds, got {ttl}",
                s.staff_link_ttl_max_secs
            ),
        ));
    }
    if let Some(time) =
        session_time.filter(|t| !(s.session_time_min_secs..=s.session_time_max_secs).contains(t))
    {
        return Err(ApiError::invalid(
            "session_time_secs",
            format!(
                "must be from {} to {} seconds, got {time}",
                s.session_time_min_secs, s.session_time_max_secs
            ),
        ));
    }
    Ok(())
}

fn new_secret(state: &AppState) -> Result<(String, String), ApiError> {
    let secret =
        auth::new_token(TokenKind::CompanySecret).map_err(|e| ApiError::Internal(e.to_string()))?;
    let sealed = state
        .sealer
        .seal(&secret)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((secret, sealed))
}

async fn create_company(
    principal: Principal,
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<Json<CompanyCredentials>, ApiError> {
    principal.require_admin()?;
    let req: CreateCompany = body(&bytes)?;
    check_name(&req.name)?;
    check_company_times(&state, req.link_ttl_secs, req.session_time_secs)?;
    let key =
        auth::new_token(TokenKind::CompanyKey).map_err(|e| ApiError::Internal(e.to_string()))?;
    let secret = if req.hmac {
        Some(new_secret(&state)?)
    } else {
        None
    };
    let company = NewCompany {
        id: uuid::Uuid::now_v7().to_string(),
        name: req.name.trim().to_owned(),
        key_hash: auth::token_hash(&key),
        key_hint: auth::token_hint(&key),
        secret_sealed: secret.as_ref().map(|(_, sealed)| sealed.clone()),
        link_ttl_secs: req
            .link_ttl_secs
            .unwrap_or(state.config.sessions.link_ttl_secs),
        session_time_secs: req
            .session_time_secs
            .unwrap_or(state.config.sessions.session_time_secs),
    };
    let audit = principal.audit(
        "company.create",
        Some(&company.id),
        json!({"name": company.name, "hmac": req.hmac}),
    );
    let record = state.store.create_company(&company, &audit).await?;
    Ok(Json(CompanyCredentials {
        company: record.to_api(),
        company_key: Some(key),
        secret_key: secret.map(|(secret, _)| secret),
    }))
}

async fn change_company(
    state: &AppState,
    principal: &Principal,
    id: &str,
    change: CompanyChange<'_>,
    audit: AuditRecord,
) -> Result<Company, ApiError> {
    principal.require_admin()?;
    let record = state
        .store
        .update_company(id, change, &audit)
        .await?
        .ok_or_else(|| not_found("company", id))?;
    Ok(record.to_api())
}

async fn update_company(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Company>, ApiError> {
    principal.require_admin()?;
    let req: UpdateCompany = body(&bytes)?;
    if let Some(name) = &req.name {
        check_name(name)?;
    }
    check_company_times(&state, req.link_ttl_secs, req.session_time_secs)?;
    let audit = principal.audit(
        "company.update",
        Some(&id),
        serde_json::to_value(&req).unwrap_or(Value::Null),
    );
    let change = CompanyChange::Settings {
        name: req.name.as_deref().map(str::trim),
        link_ttl_secs: req.link_ttl_secs,
        session_time_secs: req.session_time_secs,
    };
    Ok(Json(
        change_company(&state, &principal, &id, change, audit).await?,
    ))
}

async fn disable_company(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Company>, ApiError> {
    let audit = principal.audit("company.disable", Some(&id), json!({}));
    Ok(Json(
        change_company(
            &state,
            &principal,
            &id,
            CompanyChange::Disabled(true),
            audit,
        )
        .await?,
    ))
}

async fn enable_company(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Company>, ApiError> {
    let audit = principal.audit("company.enable", Some(&id), json!({}));
    Ok(Json(
        change_company(
            &state,
            &principal,
            &id,
            CompanyChange::Disabled(false),
            audit,
        )
        .await?,
    ))
}

async fn rotate_company_key(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CompanyCredentials>, ApiError> {
    let key =
        auth::new_token(TokenKind::CompanyKey).map_err(|e| ApiError::Internal(e.to_string()))?;
    let (hash, hint) = (auth::token_hash(&key), auth::token_hint(&key));
    let audit = principal.audit("company.rotate_key", Some(&id), json!({"key_hint": hint}));
    let change = CompanyChange::Key {
        hash: &hash,
        hint: &hint,
    };
    let company = change_company(&state, &principal, &id, change, audit).await?;
    Ok(Json(CompanyCredentials {
        company,
        company_key: Some(key),
        secret_key: None,
    }))
}

async fn set_secret(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CompanyCredentials>, ApiError> {
    let (secret, sealed) = new_secret(&state)?;
    let audit = principal.audit("company.set_secret", Some(&id), json!({}));
    let company = change_company(
        &state,
        &principal,
        &id,
        CompanyChange::Secret(Some(&sealed)),
        audit,
    )
    .await?;
    Ok(Json(CompanyCredentials {
        company,
        company_key: None,
        secret_key: Some(secret),
    }))
}

async fn clear_secret(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Company>, ApiError> {
    let audit = principal.audit("company.clear_secret", Some(&id), json!({}));
    Ok(Json(
        change_company(&state, &principal, &id, CompanyChange::Secret(None), audit).await?,
    ))
}

// --- staff accounts ----------------------------------------------------------

async fn list_staff(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<Vec<StaffAccount>>, ApiError> {
    principal.require_admin()?;
    let accounts = state.store.staff_list().await?;
    Ok(Json(
        accounts
            .iter()
            .map(StaffRecord::to_api)
            .collect::<Result<_, _>>()?,
    ))
}

async fn show_staff(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StaffAccount>, ApiError> {
    principal.require_admin()?;
    let record = state
        .store
        .staff(&id)
        .await?
        .ok_or_else(|| not_found("staff account", &id))?;
    Ok(Json(record.to_api()?))
}

async fn create_staff(
    principal: Principal,
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<Json<StaffCredentials>, ApiError> {
    principal.require_admin()?;
    let req: CreateStaff = body(&bytes)?;
    check_name(&req.name)?;
    for (i, group) in req.groups.iter().enumerate() {
        if group.trim().is_empty() || group.chars().count() > 100 {
            return Err(ApiError::invalid(
                &format!("groups[{i}]"),
                "must be a non-empty group id of at most 100 characters",
            ));
        }
    }
    let token = auth::new_token(TokenKind::Staff).map_err(|e| ApiError::Internal(e.to_string()))?;
    let staff = NewStaff {
        id: uuid::Uuid::now_v7().to_string(),
        name: req.name.trim().to_owned(),
        role: req.role,
        groups: req.groups.clone(),
        token_hash: auth::token_hash(&token),
    };
    let audit = principal.audit(
        "staff.create",
        Some(&staff.id),
        json!({"name": staff.name, "role": staff.role, "groups": staff.groups}),
    );
    let record = state.store.create_staff(&staff, &audit).await?;
    Ok(Json(StaffCredentials {
        account: record.to_api()?,
        token,
    }))
}

async fn set_staff_disabled(
    state: &AppState,
    principal: &Principal,
    id: &str,
    disabled: bool,
) -> Result<StaffAccount, ApiError> {
    principal.require_admin()?;
    let target = state
        .store
        .staff(id)
        .await?
        .ok_or_else(|| not_found("staff account", id))?;
    if disabled && target.role()? == Role::Admin {
        let admins = state.store.staff_list().await?;
        let enabled_admins = admins
            .iter()
            .filter(|s| !s.disabled && s.role == "admin")
            .count();
        if enabled_admins <= 1 && !target.disabled {
            return Err(ApiError::Conflict(
                "this is the last enabled admin; create another admin first".into(),
            ));
        }
    }
    let action = if disabled {
        "staff.disable"
    } else {
        "staff.enable"
    };
    let audit = principal.audit(action, Some(&target.id), json!({"name": target.name}));
    let record = state
        .store
        .update_staff(&target.id, Some(disabled), None, &audit)
        .await?
        .ok_or_else(|| not_found("staff account", id))?;
    Ok(record.to_api()?)
}

async fn disable_staff(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StaffAccount>, ApiError> {
    Ok(Json(
        set_staff_disabled(&state, &principal, &id, true).await?,
    ))
}

async fn enable_staff(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StaffAccount>, ApiError> {
    Ok(Json(
        set_staff_disabled(&state, &principal, &id, false).await?,
    ))
}

async fn rotate_staff_token(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StaffCredentials>, ApiError> {
    let target = state
        .store
        .staff(&id)
        .await?
        .ok_or_else(|| not_found("staff account", &id))?;
    if target.id != principal.id {
        principal.require_admin()?;
    }
    let token = auth::new_token(TokenKind::Staff).map_err(|e| ApiError::Internal(e.to_string()))?;
    let audit = principal.audit(
        "staff.rotate_token",
        Some(&target.id),
        json!({"name": target.name}),
    );
    let record = state
        .store
        .update_staff(&target.id, None, Some(&auth::token_hash(&token)), &audit)
        .await?
        .ok_or_else(|| not_found("staff account", &id))?;
    Ok(Json(StaffCredentials {
        account: record.to_api()?,
        token,
    }))
}

// --- sessions ----------------------------------------------------------------

/// Fields of a staff session request besides those of `/begin/`.
const STAFF_SESSION_FIELDS: &[&str] = &["company_id", "link_expiry_secs", "session_time_secs"];

fn whole_seconds(req: &IntegratorRequest, name: &str) -> Result<Option<i64>, ApiError> {
    match req.fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::invalid(name, "must be a whole number of seconds")),
        Some(_) => Err(ApiError::invalid(name, "must be a whole number of seconds")),
    }
}

async fn create_session(
    principal: Principal,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    bytes: Bytes,
) -> Result<Json<kyc_core::api::BeginResponse>, ApiError> {
    let req = integrator::decode(&headers, None, &bytes)?;
    // The company: by id, or by its key as the integrator would name it.
    let company = match (req.fields.get("company_id"), req.fields.get("company_key")) {
        (Some(Value::String(id)), _) => state
            .store
            .company(id)
            .await?
            .ok_or_else(|| not_found("company", id))?,
        (None, Some(Value::String(key))) => state
            .store
            .company_by_key_hash(&auth::token_hash(key))
            .await?
            .ok_or_else(|| ApiError::invalid("company_key", "names no company"))?,
        _ => {
            return Err(ApiError::invalid(
                "company_id",
                "give company_id (or company_key) as a string",
            ));
        }
    };
    if company.disabled {
        return Err(ApiError::Conflict(format!(
            "company {:?} is disabled",
            company.name
        )));
    }
    let limits = &state.config.sessions;
    let link_ttl =
        whole_seconds(&req, "link_expiry_secs")?.unwrap_or(limits.staff_link_ttl_min_secs);
    if !(limits.staff_link_ttl_min_secs..=limits.staff_link_ttl_max_secs).contains(&link_ttl) {
        return Err(ApiError::invalid(
            "link_expiry_secs",
            format!(
                "must be from {} (1 hour) to {} (30 days) seconds, got {link_ttl}",
                limits.staff_link_ttl_min_secs, limits.staff_link_ttl_max_secs
            ),
        ));
    }
    let session_time =
        whole_seconds(&req, "session_time_secs")?.unwrap_or(company.session_time_secs);
    if !(limits.session_time_min_secs..=limits.session_time_max_secs).contains(&session_time) {
        return Err(ApiError::invalid(
            "session_time_secs",
            format!(
                "must be from {} (5 minutes) to {} (60 minutes) seconds, got {session_time}",
                limits.session_time_min_secs, limits.session_time_max_secs
            ),
        ));
    }
    let now = state.clock.now();
    let valid = integrator::validate(&req, STAFF_SESSION_FIELDS, now)?;
    if !principal.sees_group(valid.spec.params.group_id.as_deref()) {
        return Err(ApiError::Forbidden(format!(
            "operators may only create sessions of their own groups ({})",
            principal.groups.join(", ")
        )));
    }
    let (token, session) = integrator::new_session(
        &company,
        valid.spec,
        link_ttl,
        session_time,
        Some(principal.id.clone()),
        now,
    )?;
    let audit = principal.audit(
        "session.create",
        Some(&session.id),
        json!({"company_id": company.id, "link_expiry_secs": link_ttl, "session_time_secs": session_time}),
    );
    state.store.insert_session_audited(&session, &audit).await?;
    Ok(Json(kyc_core::api::BeginResponse {
        session_url: integrator::session_url(&state, &token),
        session_token: token,
        expires_at: session.link_expires_at,
        warnings: valid.warnings,
    }))
}

fn query_text(params: &HashMap<String, String>, name: &str) -> Option<String> {
    params.get(name).filter(|v| !v.is_empty()).cloned()
}

fn query_instant(params: &HashMap<String, String>, name: &str) -> Result<Option<Millis>, ApiError> {
    query_text(params, name)
        .map(|v| parse_datetime(&v).map_err(|m| ApiError::invalid(name, m)))
        .transpose()
}

fn query_limit(params: &HashMap<String, String>) -> Result<u32, ApiError> {
    match query_text(params, "limit") {
        None => Ok(50),
        Some(text) => match text.parse::<u32>() {
            Ok(n @ 1..=500) => Ok(n),
            _ => Err(ApiError::invalid(
                "limit",
                format!("must be a whole number from 1 to 500, got {text:?}"),
            )),
        },
    }
}

async fn list_sessions(
    principal: Principal,
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Page<SessionSummary>>, ApiError> {
    let status = query_text(&params, "status")
        .map(|s| {
            SessionStatus::parse(&s).ok_or_else(|| {
                let known: Vec<&str> = SessionStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::invalid(
                    "status",
                    format!(
                        "unknown status {s:?}; expected one of: {}",
                        known.join(", ")
                    ),
                )
            })
        })
        .transpose()?;
    let limit = query_limit(&params)?;
    let query = SessionQuery {
        company_id: query_text(&params, "company_id"),
        status,
        group_id: query_text(&params, "group_id"),
        client_user_id: query_text(&params, "client_user_id"),
        created_after: query_instant(&params, "created_after")?,
        created_before: query_instant(&params, "created_before")?,
        visible_to_groups: (principal.role == Role::Operator).then(|| principal.groups.clone()),
        cursor: query_text(&params, "cursor"),
        limit,
    };
    let now = state.clock.now();
    let records = state.store.sessions(&query, now).await?;
    let next_cursor = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.id.clone()))
        .flatten();
    let items = records
        .iter()
        .map(|r| views::session_summary(r, now))
        .collect::<Result<_, _>>()?;
    Ok(Json(Page { items, next_cursor }))
}

/// A session by id, or by its token (`kst_…`).
async fn find_session(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<SessionRecord, ApiError> {
    let record = if id.starts_with(TokenKind::Session.prefix()) {
        state
            .store
            .session_by_token_hash(&auth::token_hash(id))
            .await?
    } else {
        state.store.session(id).await?
    };
    // An operator outside the session's group learns nothing, not even that it exists.
    record
        .filter(|r| principal.sees_group(r.group_id.as_deref()))
        .ok_or_else(|| ApiError::NotFound("no such session".into()))
}

async fn show_session(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StaffSession>, ApiError> {
    let record = find_session(&state, &principal, &id).await?;
    state
        .store
        .audit(&principal.audit("session.view", Some(&record.id), json!({})))
        .await?;
    Ok(Json(staff_session(&state, &record).await?))
}

/// The captures of a session (what each is, never the bytes), oldest first.
async fn session_captures(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = find_session(&state, &principal, &id).await?;
    let captures = state.store.session_captures(&record.id).await?;
    state
        .store
        .audit(&principal.audit("session.captures", Some(&record.id), json!({})))
        .await?;
    let list: Vec<Value> = captures
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "step": c.step_key,
                "kind": c.kind,
                "challenge": c.challenge,
                "media_type": c.media_type,
                "size_bytes": c.size_bytes,
                "sha256": c.sha256,
                "job_id": c.job_id,
                "created_at": kyc_core::clock::Millis(c.created_at).to_rfc3339(),
            })
        })
        .collect();
    Ok(Json(json!({"captures": list})))
}

/// One capture's bytes, as uploaded; each view is audited.
async fn capture_bytes(
    principal: Principal,
    State(state): State<AppState>,
    Path((id, capture_id)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    let record = find_session(&state, &principal, &id).await?;
    let captures = state.store.session_captures(&record.id).await?;
    let capture = captures
        .into_iter()
        .find(|c| c.id == capture_id)
        .ok_or_else(|| ApiError::NotFound(format!("the session has no capture {capture_id:?}")))?;
    let bytes = state
        .verifier
        .blobs()
        .get(&capture.blob_key)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .store
        .audit(&principal.audit(
            "capture.view",
            Some(&record.id),
            json!({"capture": capture.id, "step": capture.step_key, "kind": capture.kind}),
        ))
        .await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, capture.media_type),
            (
                axum::http::header::CACHE_CONTROL,
                "private, no-store".to_owned(),
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn cancel_session(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StaffSession>, ApiError> {
    let record = find_session(&state, &principal, &id).await?;
    let now = state.clock.now();
    let status = record.status_at(now)?;
    if status.is_final() {
        return Err(ApiError::Conflict(format!(
            "the session is already {}",
            status.as_str()
        )));
    }
    let audit = principal.audit(
        "session.cancel",
        Some(&record.id),
        json!({"was": status.as_str()}),
    );
    if !state
        .store
        .set_session_status(&record.id, record.version, SessionStatus::Cancelled, &audit)
        .await?
    {
        return Err(ApiError::Conflict(
            "the session changed meanwhile; read it again and retry".into(),
        ));
    }
    let record = state
        .store
        .session(&record.id)
        .await?
        .ok_or_else(|| not_found("session", &id))?;
    Ok(Json(staff_session(&state, &record).await?))
}

async fn staff_session(state: &AppState, record: &SessionRecord) -> Result<StaffSession, ApiError> {
    let company = state.store.company(&record.company_id).await?;
    Ok(StaffSession {
        company_name: company.map(|c| c.name).unwrap_or_default(),
        company_id: record.company_id.clone(),
        created_by: record.created_by.clone(),
        session_time_secs: record.session_time_secs,
        result: views::session_result(record, state.clock.now())?,
    })
}

// --- audit -------------------------------------------------------------------

async fn audit_log(
    principal: Principal,
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    principal.require_admin()?;
    let limit = query_limit(&params)?;
    let before = query_text(&params, "cursor")
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::invalid("cursor", "must be a sequence number"))
        })
        .transpose()?;
    let entries = state
        .store
        .audit_entries(&AuditQuery {
            before,
            action: query_text(&params, "action"),
            actor_id: query_text(&params, "actor_id"),
            limit,
        })
        .await?;
    let next_cursor = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(Json(Page {
        items: entries,
        next_cursor,
    }))
}
