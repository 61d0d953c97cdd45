//! Wire types of the HTTP API, shared by the server and its clients (the
//! admin CLI, the console and the tests), so both ends agree by construction.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::domain::{Flags, LocalizedText, SessionStatus};
use crate::flow::StepState;
use crate::request::Problem;

/// Version of the `/result/` document; bumped on any incompatible change.
pub const RESULT_SCHEMA_VERSION: u32 = 1;

/// The error body of every failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_request`, `unauthorized`, `session_expired`…
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// Answer of `POST /begin/` and of session creation by staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeginResponse {
    pub session_token: String,
    /// Until then the end user may start the session.
    pub expires_at: Millis,
    /// Where to send the end user's browser.
    pub session_url: String,
    pub warnings: Vec<Problem>,
}

/// Answer of `POST /result/`: the session as the integrator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionResult {
    pub schema_version: u32,
    pub session_id: String,
    pub status: SessionStatus,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub started_at: Option<Millis>,
    /// When a started session must be finished.
    pub deadline_at: Option<Millis>,
    pub completed_at: Option<Millis>,
    pub name: Option<String>,
    #[serde(rename = "clientUserId")]
    pub client_user_id: Option<String>,
    #[serde(rename = "groupId")]
    pub group_id: Option<String>,
    #[serde(rename = "scheduleStartTime")]
    pub schedule_start_time: Option<Millis>,
    #[serde(rename = "scheduleEndTime")]
    pub schedule_end_time: Option<Millis>,
    pub flags: Flags,
    pub flow: Vec<FlowStep>,
}

/// One step of a session's flow with its state and result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowStep {
    pub key: String,
    #[serde(rename = "type")]
    pub step_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<LocalizedText>,
    pub state: StepState,
    pub result: Option<serde_json::Value>,
    pub updated_at: Option<Millis>,
    /// The step's configuration as validated, defaults applied.
    pub config: serde_json::Value,
    /// Steps run inside a video call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<FlowStep>,
}

/// A session as staff see it: the integrator's view plus bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffSession {
    pub company_id: String,
    pub company_name: String,
    /// Staff account that created it; `None`: the integrator, through `/begin/`.
    pub created_by: Option<String>,
    pub session_time_secs: i64,
    #[serde(flatten)]
    pub result: SessionResult,
}

/// A line of a session listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub session_id: String,
    pub company_id: String,
    pub status: SessionStatus,
    pub name: Option<String>,
    #[serde(rename = "clientUserId")]
    pub client_user_id: Option<String>,
    #[serde(rename = "groupId")]
    pub group_id: Option<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub created_by: Option<String>,
}

/// One page of a listing; pass `next_cursor` as `cursor` for the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    pub id: String,
    pub name: String,
    /// The first characters of the current company key.
    pub key_hint: String,
    /// Whether requests must carry an HMAC signature.
    pub hmac: bool,
    pub disabled: bool,
    /// How long a new session's link may be started, in seconds.
    pub link_ttl_secs: i64,
    /// How long an end user has to finish once started, in seconds.
    pub session_time_secs: i64,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCompany {
    pub name: String,
    /// Give the company an HMAC secret at once.
    #[serde(default)]
    pub hmac: bool,
    #[serde(default)]
    pub link_ttl_secs: Option<i64>,
    #[serde(default)]
    pub session_time_secs: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCompany {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub link_ttl_secs: Option<i64>,
    #[serde(default)]
    pub session_time_secs: Option<i64>,
}

/// A company with credentials that are shown once and never again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyCredentials {
    pub company: Company,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "operator" => Some(Self::Operator),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffAccount {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Operators receive the sessions and calls of these groups.
    pub groups: Vec<String>,
    pub disabled: bool,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateStaff {
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A staff account with its bearer token, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffCredentials {
    pub account: StaffAccount,
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: Millis,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub action: String,
    pub target: Option<String>,
    pub details: serde_json::Value,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub database: String,
}
