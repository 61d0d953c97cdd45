//! `/openapi.json`: the API description, kept beside the code and checked
//! against the real routes by a test (`tests/tests/integration/openapi.rs`).

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT)
}
