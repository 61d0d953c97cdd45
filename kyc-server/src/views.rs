//! Stored sessions turned into the documents the API returns.

use kyc_core::api::{FlowStep, RESULT_SCHEMA_VERSION, SessionResult, SessionSummary};
use kyc_core::clock::Millis;
use kyc_core::domain::{Step, StepKind};
use kyc_core::flow::Progress;
use kyc_core::store::SessionRecord;
use serde_json::Value;

use crate::error::ApiError;

pub(crate) fn session_result(
    record: &SessionRecord,
    now: Millis,
) -> Result<SessionResult, ApiError> {
    let spec = record.spec()?;
    let progress = record.progress()?;
    let lifetime = record.lifetime();
    Ok(SessionResult {
        schema_version: RESULT_SCHEMA_VERSION,
        session_id: record.id.clone(),
        status: record.status_at(now)?,
        created_at: Millis(record.created_at),
        expires_at: lifetime.link_expires_at,
        started_at: lifetime.started_at,
        deadline_at: lifetime.deadline(),
        completed_at: record.completed_at.map(Millis),
        name: spec.params.name.clone(),
        client_user_id: spec.params.client_user_id.clone(),
        group_id: spec.params.group_id.clone(),
        schedule_start_time: spec.params.schedule_start,
        schedule_end_time: spec.params.schedule_end,
        flags: spec.flags.clone(),
        flow: flow_steps(&spec.steps, &progress),
    })
}

fn flow_steps(steps: &[Step], progress: &Progress) -> Vec<FlowStep> {
    steps
        .iter()
        .map(|step| {
            let done = progress.get(&step.key).cloned().unwrap_or_default();
            let sub_steps = match &step.kind {
                StepKind::VideoCall(call) => flow_steps(&call.steps, progress),
                _ => Vec::new(),
            };
            FlowStep {
                key: step.key.clone(),
                step_type: step.step_type().as_str().to_owned(),
                title: step.title.clone(),
                state: done.state,
                result: done.result,
                updated_at: done.updated_at,
                config: config_of(step),
                steps: sub_steps,
            }
        })
        .collect()
}

/// A step's configuration without what [`FlowStep`] already says.
fn config_of(step: &Step) -> Value {
    let mut value = serde_json::to_value(step).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        for field in ["key", "type", "title", "steps"] {
            map.remove(field);
        }
    }
    value
}

pub(crate) fn session_summary(
    record: &SessionRecord,
    now: Millis,
) -> Result<SessionSummary, ApiError> {
    Ok(SessionSummary {
        session_id: record.id.clone(),
        company_id: record.company_id.clone(),
        status: record.status_at(now)?,
        name: record.name.clone(),
        client_user_id: record.client_user_id.clone(),
        group_id: record.group_id.clone(),
        created_at: Millis(record.created_at),
        expires_at: Millis(record.link_expires_at),
        created_by: record.created_by.clone(),
    })
}
