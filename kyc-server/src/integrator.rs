//! The integrator API: `POST /begin/` and `POST /result/`, each accepting its
//! parameters as a query string, a form or a JSON body, authenticated by the
//! company key and, when the company has a secret, an HMAC signature.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use kyc_core::api::{BeginResponse, SessionResult};
use kyc_core::auth::{self, TokenKind};
use kyc_core::clock::Millis;
use kyc_core::domain::SessionSpec;
use kyc_core::request::{self, Problem, Rejected};
use kyc_core::store::{CompanyRecord, NewSession};
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::error::ApiError;
use crate::views;

/// An integrator request brought to one shape, whatever its encoding.
pub(crate) struct IntegratorRequest {
    pub fields: Map<String, Value>,
    /// Problems found while decoding (e.g. `steps` that is not JSON text).
    pub decode_problems: Vec<Problem>,
    /// What the HMAC signature covers: the body, or the raw query string.
    pub signed: Vec<u8>,
}

/// Decodes a query-string, form or JSON request.
pub(crate) fn decode(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<IntegratorRequest, ApiError> {
    let query = query.unwrap_or("");
    if body.is_empty() {
        let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(query).map_err(|e| {
            ApiError::bad_request(
                "invalid_query",
                format!("the query string cannot be decoded: {e}"),
            )
        })?;
        let (fields, decode_problems) = request::fields_from_pairs(pairs);
        return Ok(IntegratorRequest {
            fields,
            decode_problems,
            signed: query.as_bytes().to_vec(),
        });
    }
    if !query.is_empty() {
        return Err(ApiError::bad_request(
            "parameters_in_query_and_body",
            "parameters were given both in the query string and in the body; give them in one place",
        ));
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (fields, decode_problems) = match content_type.as_str() {
        "application/json" => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => (fields, Vec::new()),
            Ok(other) => {
                return Err(ApiError::bad_request(
                    "invalid_json",
                    format!(
                        "the body must be a JSON object, got {}",
                        request::json_type_name(&other)
                    ),
                ));
            }
            Err(e) => {
                return Err(ApiError::bad_request(
                    "invalid_json",
                    format!("the body is not valid JSON: {e}"),
                ));
            }
        },
        "application/x-www-form-urlencoded" => {
            let pairs =
                serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).map_err(|e| {
                    ApiError::bad_request(
                        "invalid_form",
                        format!("the form body cannot be decoded: {e}"),
                    )
                })?;
            request::fields_from_pairs(pairs)
        }
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type must be application/json or application/x-www-form-urlencoded, got {:?}",
                if other.is_empty() { "none" } else { other }
            )));
        }
    };
    Ok(IntegratorRequest {
        fields,
        decode_problems,
        signed: body.to_vec(),
    })
}

/// The company behind `company_key`, once its signature (if it has a secret) holds.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    req: &IntegratorRequest,
) -> Result<CompanyRecord, ApiError> {
    let key = match req.fields.get("company_key") {
        Some(Value::String(key)) if !key.is_empty() => key,
        Some(Value::String(_)) | None => {
            return Err(ApiError::Unauthorized("company_key is required".into()));
        }
        Some(_) => {
            return Err(ApiError::Unauthorized(
                "company_key must be a string".into(),
            ));
        }
    };
    let company = state
        .store
        .company_by_key_hash(&auth::token_hash(key))
        .await?
        .filter(|c| !c.disabled)
        .ok_or_else(|| {
            ApiError::Unauthorized("company_key is not valid, or its company is disabled".into())
        })?;
    if let Some(sealed) = &company.secret_sealed {
        let secret = state
            .sealer
            .unseal(sealed)
            .map_err(|e| ApiError::Internal(format!("company {}: {e}", company.id)))?;
        let header = headers.get("x-signature").and_then(|v| v.to_str().ok());
        let now = state.clock.now().0 / 1000;
        auth::verify_signature(header, secret.as_bytes(), &req.signed, now)
            .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    }
    Ok(company)
}

/// Validates the fields of a begin request, decoding problems included.
pub(crate) fn validate(
    req: &IntegratorRequest,
    extra_fields: &[&str],
    now: Millis,
) -> Result<request::Validated, ApiError> {
    match request::validate_begin(&req.fields, extra_fields, now) {
        Ok(valid) if req.decode_problems.is_empty() => Ok(valid),
        Ok(valid) => Err(ApiError::Invalid(Rejected {
            problems: req.decode_problems.clone(),
            warnings: valid.warnings,
        })),
        Err(mut rejected) => {
            let mut problems = req.decode_problems.clone();
            problems.append(&mut rejected.problems);
            rejected.problems = problems;
            Err(ApiError::Invalid(rejected))
        }
    }
}

/// A new session's token and row.
pub(crate) fn new_session(
    company: &CompanyRecord,
    spec: SessionSpec,
    link_ttl_secs: i64,
    session_time_secs: i64,
    created_by: Option<String>,
    now: Millis,
) -> Result<(String, NewSession), ApiError> {
    let token =
        auth::new_token(TokenKind::Session).map_err(|e| ApiError::Internal(e.to_string()))?;
    let session = NewSession {
        id: uuid::Uuid::now_v7().to_string(),
        token_hash: auth::token_hash(&token),
        company_id: company.id.clone(),
        spec,
        link_expires_at: now.plus_secs(link_ttl_secs),
        session_time_secs,
        created_at: now,
        created_by,
    };
    Ok((token, session))
}

pub(crate) fn session_url(state: &AppState, token: &str) -> String {
    format!("{}/?session_token={token}", state.public_url)
}

pub async fn begin(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<BeginResponse>, ApiError> {
    let req = decode(&headers, query.as_deref(), &body)?;
    let company = authenticate(&state, &headers, &req).await?;
    let now = state.clock.now();
    let valid = validate(&req, &[], now)?;
    let (token, session) = new_session(
        &company,
        valid.spec,
        company.link_ttl_secs,
        company.session_time_secs,
        None,
        now,
    )?;
    let expires_at = session.link_expires_at;
    state.store.insert_session(session).await?;
    Ok(Json(BeginResponse {
        session_url: session_url(&state, &token),
        session_token: token,
        expires_at,
        warnings: valid.warnings,
    }))
}

pub async fn result(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<SessionResult>, ApiError> {
    let req = decode(&headers, query.as_deref(), &body)?;
    let company = authenticate(&state, &headers, &req).await?;
    let token = match req.fields.get("session_token") {
        Some(Value::String(token)) if !token.is_empty() => token,
        Some(Value::String(_)) | None => {
            return Err(ApiError::invalid("session_token", "is required"));
        }
        Some(_) => return Err(ApiError::invalid("session_token", "must be a string")),
    };
    let record = state
        .store
        .session_by_token_hash(&auth::token_hash(token))
        .await?
        .filter(|s| s.company_id == company.id)
        .ok_or_else(|| {
            ApiError::NotFound("no session of this company has this session_token".into())
        })?;
    Ok(Json(views::session_result(&record, state.clock.now())?))
}
