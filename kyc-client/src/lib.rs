//! A client of the KYC server's staff API, shared by `kyc-admin`, `kyc-tui`
//! and the tests, so they all talk to the server the same way.

use kyc_core::api::{
    AuditEntry, BeginResponse, Company, CompanyCredentials, CreateCompany, CreateStaff, ErrorBody,
    Health, Page, SessionSummary, StaffAccount, StaffCredentials, StaffSession, UpdateCompany,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the server at {url}: {source}")]
    Connect { url: String, source: reqwest::Error },
    /// The server answered with an error document.
    #[error("{}", describe(*.status, .body))]
    Api { status: StatusCode, body: ErrorBody },
    #[error("unexpected answer from the server ({status}): {detail}")]
    Unexpected { status: StatusCode, detail: String },
}

fn describe(status: StatusCode, body: &ErrorBody) -> String {
    let mut text = format!(
        "{} ({}): {}",
        body.error.code,
        status.as_u16(),
        body.error.message
    );
    for problem in &body.error.problems {
        text.push_str(&format!("\n  {}: {}", problem.path, problem.message));
    }
    text
}

impl ClientError {
    /// The error code the server gave, if it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { body, .. } => Some(&body.error.code),
            _ => None,
        }
    }
}

/// Filters of a session listing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: Option<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: Option<&(dyn erased::Query + Sync)>,
        body: Option<&(dyn erased::Body + Sync)>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(query) = query {
            request = query.apply(request);
        }
        if let Some(body) = body {
            request = body.apply(request);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Connect {
                url: self.base.clone(),
                source,
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ClientError::Connect {
                url: self.base.clone(),
                source,
            })?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected {
                status,
                detail: e.to_string(),
            })
        } else {
            match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => Err(ClientError::Api { status, body }),
                Err(_) => Err(ClientError::Unexpected {
                    status,
                    detail: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
                }),
            }
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None, None).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::POST, path, None, None).await
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get("/healthz").await
    }

    pub async fn me(&self) -> Result<StaffAccount, ClientError> {
        self.get("/api/staff/me").await
    }

    pub async fn companies(&self) -> Result<Vec<Company>, ClientError> {
        self.get("/api/staff/companies").await
    }

    pub async fn company(&self, id: &str) -> Result<Company, ClientError> {
        self.get(&format!("/api/staff/companies/{}", seg(id))).await
    }

    pub async fn create_company(
        &self,
        req: &CreateCompany,
    ) -> Result<CompanyCredentials, ClientError> {
        self.call(Method::POST, "/api/staff/companies", None, Some(&Json(req)))
            .await
    }

    pub async fn update_company(
        &self,
        id: &str,
        req: &UpdateCompany,
    ) -> Result<Company, ClientError> {
        let path = format!("/api/staff/companies/{}", seg(id));
        self.call(Method::PATCH, &path, None, Some(&Json(req)))
            .await
    }

    pub async fn disable_company(&self, id: &str) -> Result<Company, ClientError> {
        self.post(&format!("/api/staff/companies/{}/disable", seg(id)))
            .await
    }

    pub async fn enable_company(&self, id: &str) -> Result<Company, ClientError> {
        self.post(&format!("/api/staff/companies/{}/enable", seg(id)))
            .await
    }

    pub async fn rotate_company_key(&self, id: &str) -> Result<CompanyCredentials, ClientError> {
        self.post(&format!("/api/staff/companies/{}/rotate-key", seg(id)))
            .await
    }

    pub async fn set_company_secret(&self, id: &str) -> Result<CompanyCredentials, ClientError> {
        let path = format!("/api/staff/companies/{}/secret", seg(id));
        self.call(Method::PUT, &path, None, None).await
    }

    pub async fn clear_company_secret(&self, id: &str) -> Result<Company, ClientError> {
        let path = format!("/api/staff/companies/{}/secret", seg(id));
        self.call(Method::DELETE, &path, None, None).await
    }

    pub async fn staff_accounts(&self) -> Result<Vec<StaffAccount>, ClientError> {
        self.get("/api/staff/accounts").await
    }

    pub async fn create_staff(&self, req: &CreateStaff) -> Result<StaffCredentials, ClientError> {
        self.call(Method::POST, "/api/staff/accounts", None, Some(&Json(req)))
            .await
    }

    pub async fn disable_staff(&self, id: &str) -> Result<StaffAccount, ClientError> {
        self.post(&format!("/api/staff/accounts/{}/disable", seg(id)))
            .await
    }

    pub async fn enable_staff(&self, id: &str) -> Result<StaffAccount, ClientError> {
        self.post(&format!("/api/staff/accounts/{}/enable", seg(id)))
            .await
    }

    pub async fn rotate_staff_token(&self, id: &str) -> Result<StaffCredentials, ClientError> {
        self.post(&format!("/api/staff/accounts/{}/rotate-token", seg(id)))
            .await
    }

    /// Creates a session from a begin document plus `company_id` or
    /// `company_key` (and optionally `link_expiry_secs`, `session_time_secs`).
    pub async fn create_session(
        &self,
        request: &serde_json::Value,
    ) -> Result<BeginResponse, ClientError> {
        self.call(
            Method::POST,
            "/api/staff/sessions",
            None,
            Some(&Json(request)),
        )
        .await
    }

    pub async fn sessions(
        &self,
        filter: &SessionFilter,
    ) -> Result<Page<SessionSummary>, ClientError> {
        self.call(
            Method::GET,
            "/api/staff/sessions",
            Some(&Params(filter)),
            None,
        )
        .await
    }

    /// A session by id or by token.
    pub async fn session(&self, id_or_token: &str) -> Result<StaffSession, ClientError> {
        self.get(&format!("/api/staff/sessions/{}", seg(id_or_token)))
            .await
    }

    pub async fn cancel_session(&self, id_or_token: &str) -> Result<StaffSession, ClientError> {
        self.post(&format!("/api/staff/sessions/{}/cancel", seg(id_or_token)))
            .await
    }

    pub async fn audit(&self, filter: &AuditFilter) -> Result<Page<AuditEntry>, ClientError> {
        self.call(Method::GET, "/api/staff/audit", Some(&Params(filter)), None)
            .await
    }
}

/// A path segment, percent-encoded.
fn seg(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

struct Json<'a, T: Serialize>(&'a T);
struct Params<'a, T: Serialize>(&'a T);

/// Object-safe views of request parts, so `call` stays one function.
mod erased {
    pub trait Body {
        fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder;
    }
    pub trait Query {
        fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder;
    }
}

impl<T: Serialize + Sync> erased::Body for Json<'_, T> {
    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.json(self.0)
    }
}

impl<T: Serialize + Sync> erased::Query for Params<'_, T> {
    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.query(self.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(super::seg("abc-1_2"), "abc-1_2");
        assert_eq!(super::seg("a/b c"), "a%2Fb%20c");
    }
}
