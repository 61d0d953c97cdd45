use serde::{Deserialize, Serialize};

use super::{Flags, Step};
use crate::clock::Millis;

/// The integrator-chosen parameters of a session besides flags and steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionParams {
    /// Label shown to staff until the verified name replaces it.
    pub name: Option<String>,
    #[serde(rename = "clientUserId")]
    pub client_user_id: Option<String>,
    /// Only operators of this group receive the session's calls.
    #[serde(rename = "groupId")]
    pub group_id: Option<String>,
    /// Before this instant the end user cannot start the session.
    #[serde(rename = "scheduleStartTime")]
    pub schedule_start: Option<Millis>,
    /// After this instant the session is no longer accessible.
    #[serde(rename = "scheduleEndTime")]
    pub schedule_end: Option<Millis>,
}

/// A validated session request: what `POST /begin/` and the staff API create.
/// `steps` is the expanded flow, legacy steps included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSpec {
    pub flags: Flags,
    pub steps: Vec<Step>,
    #[serde(flatten)]
    pub params: SessionParams,
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Created; the end user has not started it yet.
    Created,
    /// The end user started it and has not finished.
    InProgress,
    /// Every step is done.
    Completed,
    /// Not started before its link expired, or not finished within its session time.
    Expired,
    /// Cancelled by staff.
    Cancelled,
}

impl SessionStatus {
    pub const ALL: [Self; 5] = [
        Self::Created,
        Self::InProgress,
        Self::Completed,
        Self::Expired,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether nothing can change this session any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Expired | Self::Cancelled)
    }
}
