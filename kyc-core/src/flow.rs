//! The session flow: how the legacy flags become steps, what state each step
//! is in, and what status a session has at a given instant.
//!
//! # The legacy rule
//!
//! Before `steps` existed, every session was an identity document followed by
//! a liveness check, and `skip_document` / `skip_face` removed one of them.
//! Both methods still work together, so [`expand_legacy`] does exactly this:
//!
//! 1. The legacy steps are `identity-document` (unless `skip_document`) and
//!    `liveness` (unless `skip_face`), in that order, with default flags.
//! 2. A legacy step is not added when the custom `steps` already contain a
//!    step of the same type anywhere (inside a video call too): the flow never
//!    holds the same check twice. When the integrator did not set the skip
//!    flag for it, a warning says so.
//! 3. The legacy steps go before the custom steps, after any leading
//!    `language` steps (the language is chosen first).
//! 4. A legacy step takes its default key; if a custom step already uses that
//!    key, it takes the first free `<key>-2`, `<key>-3`, ….
//!
//! So: no steps and no flags → identity-document, liveness. `steps` with a
//! phone-number step and no flags → identity-document, liveness, phone-number.
//! To run only the custom steps, set both skip flags.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::domain::{
    Flags, IdentityDocumentFlags, LivenessFlags, SessionStatus, Step, StepKind, StepType,
};
use crate::request::Problem;

/// Adds the legacy steps to `steps` by the rule in the module documentation.
pub fn expand_legacy(
    flags: &Flags,
    mut steps: Vec<Step>,
    warnings: &mut Vec<Problem>,
) -> Vec<Step> {
    let mut legacy = Vec::new();
    let candidates = [
        (
            flags.skip_document,
            "skip_document",
            StepKind::IdentityDocument {
                flags: IdentityDocumentFlags::default(),
            },
        ),
        (
            flags.skip_face,
            "skip_face",
            StepKind::Liveness {
                flags: LivenessFlags::default(),
            },
        ),
    ];
    for (skip, flag, kind) in candidates {
        if skip {
            continue;
        }
        let step_type = kind.step_type();
        if let Some(at) = find_type(&steps, step_type, "steps") {
            warnings.push(Problem::new(
                format!("flags.{flag}"),
                format!(
                    "is false, but {at} is already a {} step, so the legacy one was not added; set {flag} to true to say so",
                    step_type.as_str()
                ),
            ));
            continue;
        }
        legacy.push(kind);
    }
    let at = steps
        .iter()
        .take_while(|s| s.step_type() == StepType::Language)
        .count();
    for (offset, kind) in legacy.into_iter().enumerate() {
        let mut step = Step::with_default_key(kind);
        step.key = free_key(&steps, &step.key);
        steps.insert(at + offset, step);
    }
    steps
}

fn find_type(steps: &[Step], step_type: StepType, path: &str) -> Option<String> {
    steps.iter().enumerate().find_map(|(i, step)| {
        let here = format!("{path}[{i}]");
        if step.step_type() == step_type {
            return Some(here);
        }
        match &step.kind {
            StepKind::VideoCall(call) => {
                find_type(&call.steps, step_type, &format!("{here}.steps"))
            }
            _ => None,
        }
    })
}

/// Every step of the flow in order, video-call sub-steps after their call.
pub fn all_steps(steps: &[Step]) -> Vec<&Step> {
    let mut out = Vec::new();
    for step in steps {
        out.push(step);
        if let StepKind::VideoCall(call) = &step.kind {
            out.extend(all_steps(&call.steps));
        }
    }
    out
}

fn free_key(steps: &[Step], wanted: &str) -> String {
    let used: Vec<&str> = all_steps(steps).iter().map(|s| s.key.as_str()).collect();
    if !used.contains(&wanted) {
        return wanted.to_owned();
    }
    (2..)
        .map(|n| format!("{wanted}-{n}"))
        .find(|k| !used.contains(&k.as_str()))
        .unwrap_or_default()
}

/// Where one step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    #[default]
    Pending,
    InProgress,
    Completed,
    Failed,
    Skipped,
}

/// The state and result of one step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepProgress {
    pub state: StepState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Millis>,
}

/// Progress of every step that has any, by step key.
pub type Progress = BTreeMap<String, StepProgress>;

/// The instants that bound a session's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Until then the end user may start the session.
    pub link_expires_at: Millis,
    /// Once started, how long the end user has to finish.
    pub session_time_secs: i64,
    pub started_at: Option<Millis>,
    pub schedule_start: Option<Millis>,
    pub schedule_end: Option<Millis>,
}

impl Lifetime {
    /// When a started session must be finished.
    pub fn deadline(&self) -> Option<Millis> {
        self.started_at
            .map(|at| at.plus_secs(self.session_time_secs))
    }

    /// The status at `now` of a session stored as `stored`: time turns an
    /// unfinished session into an expired one without anyone writing it.
    pub fn status_at(&self, stored: SessionStatus, now: Millis) -> SessionStatus {
        let past_schedule = self.schedule_end.is_some_and(|end| now >= end);
        match stored {
            SessionStatus::Created if now >= self.link_expires_at || past_schedule => {
                SessionStatus::Expired
            }
            SessionStatus::InProgress
                if self.deadline().is_some_and(|d| now >= d) || past_schedule =>
            {
                SessionStatus::Expired
            }
            other => other,
        }
    }
}

/// Whether the end user does a step (operator questionnaires are the
/// operator's, filled during or after a call).
pub fn is_end_user_step(step: &Step) -> bool {
    step.step_type() != StepType::OperatorQuestionnaire
}

fn is_settled(progress: &Progress, key: &str) -> bool {
    progress
        .get(key)
        .is_some_and(|p| matches!(p.state, StepState::Completed | StepState::Skipped))
}

/// The end user's current step: the first of theirs, in flow order, that is
/// neither completed nor skipped. A video call is current until it is
/// settled; the steps inside it are run by the call.
pub fn current_step<'s>(steps: &'s [Step], progress: &Progress) -> Option<&'s Step> {
    steps
        .iter()
        .filter(|s| is_end_user_step(s))
        .find(|s| !is_settled(progress, &s.key))
}

/// Whether every step of the end user's is settled: the session is complete.
pub fn end_user_flow_complete(steps: &[Step], progress: &Progress) -> bool {
    current_step(steps, progress).is_none()
}

/// Whether `key` names a step of this flow (video-call sub-steps included).
pub fn has_step(steps: &[Step], key: &str) -> bool {
    all_steps(steps).iter().any(|s| s.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PhoneNumberFlags;

    fn types(steps: &[Step]) -> Vec<&'static str> {
        steps.iter().map(|s| s.step_type().as_str()).collect()
    }

    fn phone() -> Step {
        Step::with_default_key(StepKind::PhoneNumber {
            flags: PhoneNumberFlags::default(),
        })
    }

    #[test]
    fn no_steps_no_flags_is_document_then_liveness() {
        let mut warnings = Vec::new();
        let steps = expand_legacy(&Flags::default(), Vec::new(), &mut warnings);
        assert_eq!(types(&steps), ["identity-document", "liveness"]);
        assert_eq!(steps[0].key, "identity-document");
        assert_eq!(steps[1].key, "liveness");
        assert!(warnings.is_empty());
    }

    #[test]
    fn skip_flags_remove_legacy_steps() {
        let mut warnings = Vec::new();
        let flags = Flags {
            skip_document: true,
            ..Flags::default()
        };
        assert_eq!(
            types(&expand_legacy(&flags, Vec::new(), &mut warnings)),
            ["liveness"]
        );
        let flags = Flags {
            skip_face: true,
            ..Flags::default()
        };
        assert_eq!(
            types(&expand_legacy(&flags, Vec::new(), &mut warnings)),
            ["identity-document"]
        );
        let both = Flags {
            skip_face: true,
            skip_document: true,
            ..Flags::default()
        };
        assert!(expand_legacy(&both, Vec::new(), &mut warnings).is_empty());
        assert_eq!(
            types(&expand_legacy(&both, vec![phone()], &mut warnings)),
            ["phone-number"]
        );
    }

    #[test]
    fn custom_steps_get_legacy_steps_first_unless_present() {
        let mut warnings = Vec::new();
        let steps = expand_legacy(&Flags::default(), vec![phone()], &mut warnings);
        assert_eq!(
            types(&steps),
            ["identity-document", "liveness", "phone-number"]
        );
        assert!(warnings.is_empty());

        let custom = vec![
            phone(),
            Step::with_default_key(StepKind::Liveness {
                flags: LivenessFlags {
                    liveness: true,
                    ..LivenessFlags::default()
                },
            }),
        ];
        let steps = expand_legacy(&Flags::default(), custom, &mut warnings);
        assert_eq!(
            types(&steps),
            ["identity-document", "phone-number", "liveness"]
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].path, "flags.skip_face");
    }

    #[test]
    fn legacy_steps_follow_leading_language_and_find_free_keys() {
        let mut warnings = Vec::new();
        let language = Step::with_default_key(StepKind::Language { languages: vec![] });
        let mut squatter = phone();
        squatter.key = "identity-document".into();
        let steps = expand_legacy(&Flags::default(), vec![language, squatter], &mut warnings);
        assert_eq!(
            types(&steps),
            ["language", "identity-document", "liveness", "phone-number"]
        );
        assert_eq!(steps[1].key, "identity-document-2");
    }

    #[test]
    fn steps_inside_a_video_call_count_as_present() {
        let mut warnings = Vec::new();
        let call = Step::with_default_key(StepKind::VideoCall(crate::domain::VideoCall {
            steps: vec![Step::with_default_key(StepKind::IdentityDocument {
                flags: IdentityDocumentFlags::default(),
            })],
            ..Default::default()
        }));
        let steps = expand_legacy(&Flags::default(), vec![call], &mut warnings);
        assert_eq!(types(&steps), ["liveness", "video-call"]);
        assert!(
            warnings[0].message.contains("steps[0].steps[0]"),
            "{warnings:?}"
        );
    }

    #[test]
    fn current_step_walks_the_end_users_steps_in_order() {
        let operator = Step {
            key: "notes".into(),
            title: None,
            kind: StepKind::OperatorQuestionnaire(crate::domain::Questionnaire::default()),
        };
        let steps = vec![
            phone(),
            operator,
            Step::with_default_key(StepKind::Email {
                flags: crate::domain::EmailFlags::default(),
            }),
        ];
        let mut progress = Progress::new();
        assert_eq!(
            current_step(&steps, &progress).map(|s| s.key.as_str()),
            Some("phone_number")
        );
        progress.insert(
            "phone_number".into(),
            StepProgress {
                state: StepState::InProgress,
                ..Default::default()
            },
        );
        assert_eq!(
            current_step(&steps, &progress).map(|s| s.key.as_str()),
            Some("phone_number")
        );
        progress.insert(
            "phone_number".into(),
            StepProgress {
                state: StepState::Completed,
                ..Default::default()
            },
        );
        assert_eq!(
            current_step(&steps, &progress).map(|s| s.key.as_str()),
            Some("require_email"),
            "operator steps are not the user's"
        );
        assert!(!end_user_flow_complete(&steps, &progress));
        progress.insert(
            "require_email".into(),
            StepProgress {
                state: StepState::Skipped,
                ..Default::default()
            },
        );
        assert!(end_user_flow_complete(&steps, &progress));
        progress.insert(
            "require_email".into(),
            StepProgress {
                state: StepState::Failed,
                ..Default::default()
            },
        );
        assert!(
            !end_user_flow_complete(&steps, &progress),
            "a failed step is not settled"
        );
        assert!(has_step(&steps, "notes"));
        assert!(!has_step(&steps, "nothing"));
    }

    #[test]
    fn status_follows_time() {
        let t0 = Millis(1_000_000);
        let life = Lifetime {
            link_expires_at: t0.plus_secs(900),
            session_time_secs: 600,
            started_at: None,
            schedule_start: None,
            schedule_end: None,
        };
        assert_eq!(
            life.status_at(SessionStatus::Created, t0),
            SessionStatus::Created
        );
        assert_eq!(
            life.status_at(SessionStatus::Created, t0.plus_secs(900)),
            SessionStatus::Expired
        );
        let started = Lifetime {
            started_at: Some(t0.plus_secs(100)),
            ..life
        };
        assert_eq!(
            started.status_at(SessionStatus::InProgress, t0.plus_secs(699)),
            SessionStatus::InProgress
        );
        assert_eq!(
            started.status_at(SessionStatus::InProgress, t0.plus_secs(700)),
            SessionStatus::Expired
        );
        assert_eq!(
            started.status_at(SessionStatus::Completed, t0.plus_secs(9999)),
            SessionStatus::Completed
        );
        let scheduled = Lifetime {
            schedule_end: Some(t0.plus_secs(10)),
            ..life
        };
        assert_eq!(
            scheduled.status_at(SessionStatus::Created, t0.plus_secs(10)),
            SessionStatus::Expired
        );
    }
}
