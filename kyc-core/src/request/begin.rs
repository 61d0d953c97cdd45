use serde_json::{Map, Value};

use super::walker::{Object, Walker, join};
use super::{Problem, Rejected, steps};
use crate::clock::{Millis, parse_datetime};
use crate::domain::{Flags, SessionParams, SessionSpec};
use crate::flow;
use crate::i18n;

/// The top-level fields of a begin request.
pub const BEGIN_FIELDS: &[&str] = &[
    "company_key",
    "flags",
    "steps",
    "name",
    "clientUserId",
    "groupId",
    "scheduleStartTime",
    "scheduleEndTime",
];

/// Fields that arrive as JSON text in the query-string and form encodings.
const JSON_TEXT_FIELDS: &[&str] = &["flags", "steps"];

const FLAG_FIELDS: &[&str] = &[
    "skip_face",
    "skip_document",
    "return_url",
    "language",
    "skip_desktop",
    "switch_device_url",
    "restrict_url_sharing",
    "optional_continue_on_another_device",
    "multiple_participants",
    "multiple_participans",
    "requireHdMedia",
];

/// A request that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub spec: SessionSpec,
    pub warnings: Vec<Problem>,
}

/// Brings the name/value pairs of a query string or form to the JSON shape of
/// a JSON body: `flags` and `steps` are parsed as JSON text, empty values are
/// absent. Problems found here are reported with those of validation.
pub fn fields_from_pairs(pairs: Vec<(String, String)>) -> (Map<String, Value>, Vec<Problem>) {
    let mut fields = Map::new();
    let mut problems = Vec::new();
    for (name, text) in pairs {
        if fields.contains_key(&name) {
            problems.push(Problem::new(name, "is given more than once"));
            continue;
        }
        if text.is_empty() {
            continue;
        }
        let value = if JSON_TEXT_FIELDS.contains(&name.as_str()) {
            match serde_json::from_str::<Value>(&text) {
                Ok(value) => value,
                Err(err) => {
                    problems.push(Problem::new(name, format!("is not valid JSON text: {err}")));
                    continue;
                }
            }
        } else {
            Value::String(text)
        };
        fields.insert(name, value);
    }
    (fields, problems)
}

/// Validates a begin request (already in JSON shape) against the whole
/// contract; `extra_fields` are top-level fields the caller handles itself.
/// `now` decides whether the schedule window is already over.
pub fn validate_begin(
    fields: &Object,
    extra_fields: &[&str],
    now: Millis,
) -> Result<Validated, Rejected> {
    let mut w = Walker::default();
    let known: Vec<&str> = BEGIN_FIELDS.iter().chain(extra_fields).copied().collect();
    w.unknown_fields("", fields, &known);

    let flags = match Walker::field(fields, "flags") {
        Some(value) => w
            .object("flags", value)
            .map(|f| flags(&mut w, f))
            .unwrap_or_default(),
        None => Flags::default(),
    };
    let steps = steps::session_steps(&mut w, fields);
    let params = params(&mut w, fields, now);

    let steps = flow::expand_legacy(&flags, steps, &mut w.warnings);
    if steps.is_empty() && w.problems.is_empty() {
        w.problem(
            "steps",
            "the flow has no steps: give steps, or leave skip_document or skip_face false",
        );
    }

    if w.problems.is_empty() {
        Ok(Validated {
            spec: SessionSpec {
                flags,
                steps,
                params,
            },
            warnings: w.warnings,
        })
    } else {
        Err(Rejected {
            problems: w.problems,
            warnings: w.warnings,
        })
    }
}

fn flags(w: &mut Walker, object: &Object) -> Flags {
    let path = "flags";
    w.unknown_fields(path, object, FLAG_FIELDS);
    let language = w.string(path, object, "language").and_then(|code| {
        if i18n::is_ui_language(code) {
            Some(code.to_owned())
        } else {
            w.problem(
                join(path, "language"),
                format!(
                    "{code:?} is not a supported language; supported: {}",
                    i18n::UI_LANGUAGES.join(", ")
                ),
            );
            None
        }
    });
    Flags {
        skip_face: w.bool(path, object, "skip_face", false),
        skip_document: w.bool(path, object, "skip_document", false),
        return_url: w.url(path, object, "return_url"),
        language,
        skip_desktop: w.bool(path, object, "skip_desktop", false),
        switch_device_url: w.url(path, object, "switch_device_url"),
        restrict_url_sharing: w.bool(path, object, "restrict_url_sharing", false),
        optional_continue_on_another_device: w.bool(
            path,
            object,
            "optional_continue_on_another_device",
            false,
        ),
        multiple_participants: multiple_participants(w, path, object),
        require_hd_media: w.bool(path, object, "requireHdMedia", false),
    }
}

/// `multiple_participants`, also accepted as the spec's other spelling
/// `multiple_participans`; both given with different values is a problem.
pub(super) fn multiple_participants(w: &mut Walker, path: &str, object: &Object) -> bool {
    let right = Walker::field(object, "multiple_participants").is_some();
    let other = Walker::field(object, "multiple_participans").is_some();
    let a = w.bool(path, object, "multiple_participants", false);
    let b = w.bool(path, object, "multiple_participans", false);
    if right && other && a != b {
        w.problem(
            join(path, "multiple_participans"),
            "contradicts multiple_participants (the same flag spelled two ways); give one",
        );
    }
    a || b
}

fn params(w: &mut Walker, fields: &Object, now: Millis) -> SessionParams {
    let text = |w: &mut Walker, name: &str, max: usize| -> Option<String> {
        let value = w.string("", fields, name)?;
        if value.chars().count() > max {
            w.problem(name, format!("must be at most {max} characters"));
            return None;
        }
        (!value.trim().is_empty()).then(|| value.to_owned())
    };
    let name = text(w, "name", 200);
    let client_user_id = text(w, "clientUserId", 200);
    let group_id = text(w, "groupId", 100);

    let instant = |w: &mut Walker, name: &str| -> Option<Millis> {
        let value = w.string("", fields, name)?;
        if value.is_empty() {
            return None;
        }
        parse_datetime(value)
            .map_err(|message| w.problem(name, message))
            .ok()
    };
    let schedule_start = instant(w, "scheduleStartTime");
    let schedule_end = instant(w, "scheduleEndTime");
    if let Some(end) = schedule_end {
        if let Some(start) = schedule_start.filter(|start| end <= *start) {
            w.problem(
                "scheduleEndTime",
                format!("must be after scheduleStartTime ({})", start.to_rfc3339()),
            );
        } else if end <= now {
            w.problem(
                "scheduleEndTime",
                format!(
                    "is already past ({} is not after now, {})",
                    end.to_rfc3339(),
                    now.to_rfc3339()
                ),
            );
        }
    }
    SessionParams {
        name,
        client_user_id,
        group_id,
        schedule_start,
        schedule_end,
    }
}
