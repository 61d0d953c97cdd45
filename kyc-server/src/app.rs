//! Shared state, the router and the middleware every request passes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kyc_core::auth::Sealer;
use kyc_core::clock::Clock;
use kyc_core::store::Store;

use crate::config::Config;
use crate::error::ApiError;
use crate::verification::Verifier;
use crate::{integrator, openapi, staff, widget};

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub sealer: Sealer,
    pub public_url: Arc<str>,
    pub clock: Clock,
    pub verifier: Arc<Verifier>,
}

/// The id of one request, echoed in `x-request-id` and written to the audit log.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Every route the server answers, as (method, path). The router below is
/// built from the same handlers, and a test checks the two and
/// `/openapi.json` agree.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("POST", "/begin/"),
    ("POST", "/result/"),
    ("GET", "/api/widget/session"),
    ("POST", "/api/widget/session/start"),
    ("POST", "/api/widget/steps/{key}/challenges"),
    ("POST", "/api/widget/steps/{key}/captures"),
    ("POST", "/api/widget/steps/{key}/submit"),
    ("GET", "/api/staff/me"),
    ("GET", "/api/staff/companies"),
    ("POST", "/api/staff/companies"),
    ("GET", "/api/staff/companies/{id}"),
    ("PATCH", "/api/staff/companies/{id}"),
    ("POST", "/api/staff/companies/{id}/disable"),
    ("POST", "/api/staff/companies/{id}/enable"),
    ("POST", "/api/staff/companies/{id}/rotate-key"),
    ("PUT", "/api/staff/companies/{id}/secret"),
    ("DELETE", "/api/staff/companies/{id}/secret"),
    ("GET", "/api/staff/accounts"),
    ("POST", "/api/staff/accounts"),
    ("GET", "/api/staff/accounts/{id}"),
    ("POST", "/api/staff/accounts/{id}/disable"),
    ("POST", "/api/staff/accounts/{id}/enable"),
    ("POST", "/api/staff/accounts/{id}/rotate-token"),
    ("GET", "/api/staff/sessions"),
    ("POST", "/api/staff/sessions"),
    ("GET", "/api/staff/sessions/{id}"),
    ("POST", "/api/staff/sessions/{id}/cancel"),
    ("GET", "/api/staff/sessions/{id}/captures"),
    ("GET", "/api/staff/sessions/{id}/captures/{capture_id}"),
    ("GET", "/api/staff/audit"),
];

pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.server.request_timeout_secs);
    let body_limit = state.config.server.max_body_bytes;
    let capture_limit = state.config.verification.max_capture_bytes;
    Router::new()
        .route("/healthz", get(health))
        .route("/openapi.json", get(openapi::document))
        .route("/begin/", post(integrator::begin))
        .route("/result/", post(integrator::result))
        .route("/api/widget/session", get(widget::session))
        .route("/api/widget/session/start", post(widget::start))
        .route(
            "/api/widget/steps/{key}/captures",
            post(widget::upload_capture).layer(DefaultBodyLimit::max(capture_limit)),
        )
        .route("/api/widget/steps/{key}/submit", post(widget::submit_step))
        .route(
            "/api/widget/steps/{key}/challenges",
            post(widget::challenges),
        )
        .merge(staff::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(move |req, next| {
            with_timeout(timeout, req, next)
        }))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> Response {
    let database = match state.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(err) => {
            tracing::error!(%err, "health check: database unreachable");
            "unreachable".to_owned()
        }
    };
    let status = if database == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = kyc_core::api::Health {
        status: if status == StatusCode::OK {
            "ok"
        } else {
            "degraded"
        }
        .to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: format!("{} {database}", state.store.backend()),
    };
    (status, axum::Json(body)).into_response()
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such endpoint: {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let body = kyc_core::api::ErrorBody {
        error: kyc_core::api::ErrorDetail {
            code: "method_not_allowed".into(),
            message: format!("{} does not accept {method}", uri.path()),
            problems: Vec::new(),
        },
    };
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

async fn with_timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            let body = kyc_core::api::ErrorBody {
                error: kyc_core::api::ErrorDetail {
                    code: "timeout".into(),
                    message: format!("the request took longer than {} s", limit.as_secs()),
                    problems: Vec::new(),
                },
            };
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

/// Gives each request an id (or keeps a sane one the client sent) and a
/// tracing span; logs method, path, status and duration, never bodies.
async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    let span = tracing::info_span!("request", request_id = %id, %method, %path);
    let mut response = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::debug!(
            status,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "done"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
