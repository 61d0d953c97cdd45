//! The end user's side of a session, as the browser widget will call it:
//! read the session by its token, and start it (which starts the clock of
//! the session time). The widget's pages themselves are not built yet.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use kyc_core::api::SessionResult;
use kyc_core::auth;
use kyc_core::clock::Millis;
use kyc_core::domain::SessionStatus;
use kyc_core::store::SessionRecord;
use serde::Deserialize;

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
    Ok(Json(views::session_result(&record, now)?))
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
