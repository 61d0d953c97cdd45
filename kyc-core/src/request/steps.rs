//! The `steps` array: one typed [`Step`] per entry, keys unique in the session.

use std::collections::HashMap;

use serde_json::Value;

use super::begin::multiple_participants;
use super::questions;
use super::walker::{Object, Walker, index, join};
use crate::domain::{
    DocumentType, EmailFlags, FaceDocumentFlags, GeneralDocumentFlags, GeneralDocumentType,
    GeolocationFlags, IdentityDocumentFlags, LivenessFlags, PhoneNumberFlags, Step, StepKind,
    StepType, VideoCall,
};
use crate::i18n;

/// Remembers where each step key was first used.
#[derive(Default)]
struct Keys {
    first_use: HashMap<String, String>,
}

pub(super) fn session_steps(w: &mut Walker, fields: &Object) -> Vec<Step> {
    let Some(items) = w.array("", fields, "steps") else {
        return Vec::new();
    };
    let mut keys = Keys::default();
    step_list(w, "steps", items, None, &mut keys)
}

fn step_list(
    w: &mut Walker,
    path: &str,
    items: &[Value],
    inside_call: Option<&str>,
    keys: &mut Keys,
) -> Vec<Step> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| step(w, &index(path, i), item, inside_call, keys))
        .collect()
}

const COMMON_FIELDS: &[&str] = &["type", "key", "title", "flags"];
const CALL_OPTIONS: &[&str] = &[
    "resetSteps",
    "hideCameraOption",
    "nameRequired",
    "multiple_participants",
    "multiple_participans",
];

fn step(
    w: &mut Walker,
    path: &str,
    value: &Value,
    inside_call: Option<&str>,
    keys: &mut Keys,
) -> Option<Step> {
    let object = w.object(path, value)?;
    let step_type = match Walker::field(object, "type") {
        None => {
            w.problem(join(path, "type"), "is required");
            None
        }
        Some(Value::String(name)) => {
            let parsed = StepType::parse(name);
            if parsed.is_none() {
                let known: Vec<&str> = StepType::ALL.iter().map(|t| t.as_str()).collect();
                w.problem(
                    join(path, "type"),
                    format!(
                        "unknown step type {name:?}; expected one of: {}",
                        known.join(", ")
                    ),
                );
            }
            parsed
        }
        Some(other) => {
            w.problem(
                join(path, "type"),
                format!("must be a string, got {}", super::walker::type_name(other)),
            );
            None
        }
    };

    let key = match Walker::field(object, "key") {
        Some(_) => w.key(path, object, "key"),
        None => match step_type.map(|t| (t, t.default_key())) {
            Some((_, Some(default))) => Some(default.to_owned()),
            Some((t, None)) => {
                w.problem(
                    join(path, "key"),
                    format!("is required for a {} step", t.as_str()),
                );
                None
            }
            None => None,
        },
    };
    if let Some(key) = &key {
        let given = Walker::field(object, "key").is_some();
        if let Some(first) = keys.first_use.get(key) {
            let message = if given {
                format!("duplicate step key {key:?}: already used by {first}")
            } else {
                format!(
                    "the default key {key:?} of this step is already used by {first}; give this step its own key"
                )
            };
            w.problem(join(path, "key"), message);
        } else {
            keys.first_use.insert(key.clone(), path.to_owned());
        }
    }
    let title = w.localized_field(path, object, "title");

    let step_type = step_type?;
    if let Some(call) = inside_call
        && !step_type.allowed_in_video_call()
    {
        w.problem(
            join(path, "type"),
            format!(
                "a {} step cannot run inside the video call at {call}",
                step_type.as_str()
            ),
        );
    }

    let flags_path = join(path, "flags");
    let empty = Object::new();
    let flags = match Walker::field(object, "flags") {
        Some(value) => w.object(&flags_path, value).unwrap_or(&empty),
        None => &empty,
    };

    let kind = match step_type {
        StepType::Language => {
            w.unknown_fields(path, object, &[COMMON_FIELDS, &["languages"]].concat());
            w.unknown_fields(&flags_path, flags, &["languages"]);
            let (at, source) = if Walker::field(object, "languages").is_some() {
                (path, object)
            } else {
                (flags_path.as_str(), flags)
            };
            let languages = w.strings(at, source, "languages").unwrap_or_default();
            for (i, code) in languages.iter().enumerate() {
                if !i18n::is_ui_language(code) {
                    w.problem(
                        index(&join(at, "languages"), i),
                        format!(
                            "{code:?} is not a supported language; supported: {}",
                            i18n::UI_LANGUAGES.join(", ")
                        ),
                    );
                }
            }
            StepKind::Language { languages }
        }
        StepType::IdentityDocument => {
            w.unknown_fields(path, object, COMMON_FIELDS);
            StepKind::IdentityDocument {
                flags: identity_document(w, &flags_path, flags),
            }
        }
        StepType::Liveness => {
            w.unknown_fields(path, object, COMMON_FIELDS);
            w.unknown_fields(
                &flags_path,
                flags,
                &[
                    "liveness",
                    "allow_face_upload",
                    "optional_continue_on_another_device",
                ],
            );
            let flags = LivenessFlags {
                liveness: w.bool(&flags_path, flags, "liveness", false),
                allow_face_upload: w.bool(&flags_path, flags, "allow_face_upload", false),
                optional_continue_on_another_device: w.bool(
                    &flags_path,
                    flags,
                    "optional_continue_on_another_device",
                    false,
                ),
            };
            if flags.liveness && flags.allow_face_upload {
                w.warn(
                    join(&flags_path, "allow_face_upload"),
                    "has no effect when liveness is true: active liveness needs the live camera",
                );
            }
            StepKind::Liveness { flags }
        }
        StepType::GeneralDocument => {
            w.unknown_fields(path, object, COMMON_FIELDS);
            w.unknown_fields(&flags_path, flags, &["general_document_types"]);
            let names = w
                .strings(&flags_path, flags, "general_document_types")
                .unwrap_or_default();
            let at = join(&flags_path, "general_document_types");
            let types = names
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    let parsed = GeneralDocumentType::parse(name);
                    if parsed.is_none() {
                        let known: Vec<&str> = GeneralDocumentType::ALL
                            .iter()
                            .map(|t| t.as_str())
                            .collect();
                        w.problem(
                            index(&at, i),
                            format!(
                                "unknown general document type {name:?}; expected one of: {}",
                                known.join(", ")
                            ),
                        );
                    }
                    parsed
                })
                .collect();
            StepKind::GeneralDocument {
                flags: GeneralDocumentFlags {
                    general_document_types: dedup(types),
                },
            }
        }
        StepType::FaceDocument => {
            w.unknown_fields(path, object, COMMON_FIELDS);
            w.unknown_fields(
                &flags_path,
                flags,
                &[
                    "allow_face_doc_upload",
                    "require_face_document",
                    "optional_continue_on_another_device",
                ],
            );
            StepKind::FaceDocument {
                flags: FaceDocumentFlags {
                    allow_face_doc_upload: w.bool(
                        &flags_path,
                        flags,
                        "allow_face_doc_upload",
                        false,
                    ),
                    require_face_document: w.bool(
                        &flags_path,
                        flags,
                        "require_face_document",
                        false,
                    ),
                    optional_continue_on_another_device: w.bool(
                        &flags_path,
                        flags,
                        "optional_continue_on_another_device",
                        false,
                    ),
                },
            }
        }
        StepType::VideoCall => {
            w.unknown_fields(
                path,
                object,
                &[COMMON_FIELDS, &["steps"], CALL_OPTIONS].concat(),
            );
            w.unknown_fields(&flags_path, flags, &[&["steps"], CALL_OPTIONS].concat());
            StepKind::VideoCall(video_call(w, path, object, &flags_path, flags, keys))
        }
        StepType::PhoneNumber => {
            w.unknown_fields(path, object, COMMON_FIELDS);
            w.unknown_fields(
                &flags_path,
                flags,
                &["require_phone_number_check", "require_phone_number"],
            );
            StepKind::PhoneNumber {
                flags: PhoneNumberFlags {
                    require_phone_number_check: w.bool(
                        &flags_path,
                        flags,
                        "require_phone_number_check",
                        false,
                    ),
                    require_phone_number: w.bool(&flags_path, flags, "require_phone_number", false),
                },
            }
        }
        StepType::Email => {
            w.unknown_fields(path, object, COMMON_FIELDS);
            w.unknown_fields(
                &flags_path,
                flags,
                &["require_email_check", "require_email"],
            );
            StepKind::Email {
                flags: EmailFlags {
                    require_email_check: w.bool(&flags_path, flags, "require_email_check", false),
                    require_email: w.bool(&flags_path, flags, "require_email", false),
                },
            }
        }
        StepType::Geolocation => {
            w.unknown_fields(path, object, COMMON_FIELDS);
            w.unknown_fields(&flags_path, flags, &["require_geolocation"]);
            StepKind::Geolocation {
                flags: GeolocationFlags {
                    require_geolocation: w.bool(&flags_path, flags, "require_geolocation", true),
                },
            }
        }
        StepType::UserQuestionnaire => StepKind::UserQuestionnaire(questions::questionnaire(
            w,
            path,
            object,
            questions::Audience::User,
        )),
        StepType::OperatorQuestionnaire => StepKind::OperatorQuestionnaire(
            questions::questionnaire(w, path, object, questions::Audience::Operator),
        ),
    };
    Some(Step {
        key: key?,
        title,
        kind,
    })
}

fn identity_document(w: &mut Walker, path: &str, flags: &Object) -> IdentityDocumentFlags {
    w.unknown_fields(
        path,
        flags,
        &[
            "disable_document_capture",
            "allow_document_upload",
            "document_types",
            "document_countries",
            "optional_continue_on_another_device",
        ],
    );
    let type_names = w.strings(path, flags, "document_types").unwrap_or_default();
    let types_at = join(path, "document_types");
    let document_types = type_names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let parsed = DocumentType::parse(name);
            if parsed.is_none() {
                let known: Vec<&str> = DocumentType::ALL.iter().map(|t| t.as_str()).collect();
                w.problem(
                    index(&types_at, i),
                    format!(
                        "unknown document type {name:?}; expected one of: {}",
                        known.join(", ")
                    ),
                );
            }
            parsed
        })
        .collect();
    let countries = w
        .strings(path, flags, "document_countries")
        .unwrap_or_default();
    let countries_at = join(path, "document_countries");
    for (i, code) in countries.iter().enumerate() {
        if !i18n::is_country_code(code) {
            w.problem(
                index(&countries_at, i),
                format!(
                    "{code:?} is not an ISO 3166-1 alpha-3 country code (e.g. \"USA\", \"DEU\")"
                ),
            );
        }
    }
    IdentityDocumentFlags {
        disable_document_capture: w.bool(path, flags, "disable_document_capture", false),
        allow_document_upload: w.bool(path, flags, "allow_document_upload", false),
        document_types: dedup(document_types),
        document_countries: dedup(countries),
        optional_continue_on_another_device: w.bool(
            path,
            flags,
            "optional_continue_on_another_device",
            false,
        ),
    }
}

/// The call options may sit on the step itself (as the spec shows them) or in
/// its `flags`; giving one in both places with different values is a problem.
fn video_call(
    w: &mut Walker,
    path: &str,
    object: &Object,
    flags_path: &str,
    flags: &Object,
    keys: &mut Keys,
) -> VideoCall {
    let option = |w: &mut Walker, name: &str| -> bool {
        let on_step = Walker::field(object, name).is_some();
        let in_flags = Walker::field(flags, name).is_some();
        let a = w.bool(path, object, name, false);
        let b = w.bool(flags_path, flags, name, false);
        if on_step && in_flags && a != b {
            w.problem(
                join(flags_path, name),
                format!("contradicts {}", join(path, name)),
            );
        }
        if on_step { a } else { b }
    };
    let reset_steps = option(w, "resetSteps");
    let hide_camera_option = option(w, "hideCameraOption");
    let name_required = option(w, "nameRequired");
    let multiple =
        multiple_participants(w, path, object) || multiple_participants(w, flags_path, flags);

    let (steps_path, source) = if Walker::field(object, "steps").is_some() {
        (join(path, "steps"), object)
    } else {
        (join(flags_path, "steps"), flags)
    };
    let parent = if Walker::field(object, "steps").is_some() {
        path
    } else {
        flags_path
    };
    let steps = match w.array(parent, source, "steps") {
        Some(items) => step_list(w, &steps_path, items, Some(path), keys),
        None => Vec::new(),
    };
    VideoCall {
        steps,
        reset_steps,
        hide_camera_option,
        name_required,
        multiple_participants: multiple,
    }
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}
