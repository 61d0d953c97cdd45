//! Questionnaire steps: questions, options, preset answers and show conditions.

use std::collections::HashMap;

use serde_json::Value;

use super::walker::{Object, Walker, index, join, type_name};
use crate::domain::{
    FileType, Question, QuestionKind, QuestionOption, Questionnaire, ShowCondition,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    User,
    Operator,
}

const QUESTION_TYPES_USER: &[&str] = &[
    "string",
    "multiple-choice",
    "options",
    "dropdown",
    "file",
    "attachment",
];
const QUESTION_TYPES_OPERATOR: &[&str] =
    &["string", "multiple-choice", "options", "dropdown", "file"];

const FILES_MAX: u64 = 10;

pub(super) fn questionnaire(
    w: &mut Walker,
    path: &str,
    object: &Object,
    audience: Audience,
) -> Questionnaire {
    let mut known = vec!["type", "key", "title", "description", "questions"];
    if audience == Audience::User {
        known.push("successButtonTitle");
    }
    w.unknown_fields(path, object, &known);
    let description = w.localized_field(path, object, "description");
    let success_button_title = if audience == Audience::User {
        w.localized_field(path, object, "successButtonTitle")
    } else {
        None
    };

    let questions_path = join(path, "questions");
    let items = match Walker::field(object, "questions") {
        None => {
            w.problem(
                questions_path.clone(),
                "is required: a questionnaire needs questions",
            );
            &[][..]
        }
        Some(_) => w.array(path, object, "questions").unwrap_or(&[]),
    };
    if items.is_empty() && Walker::field(object, "questions").is_some() {
        w.problem(questions_path.clone(), "must have at least one question");
    }

    let mut questions: Vec<Question> = Vec::with_capacity(items.len());
    // Question key → its position, for duplicates and show conditions.
    let mut positions: HashMap<String, usize> = HashMap::new();
    // Every key in the array, valid question or not, to tell "later" from "unknown".
    let all_keys: Vec<Option<&str>> = items
        .iter()
        .map(|item| item.get("key").and_then(Value::as_str))
        .collect();
    for (i, item) in items.iter().enumerate() {
        let at = index(&questions_path, i);
        if let Some(question) =
            question(w, &at, item, audience, i, &questions, &positions, &all_keys)
        {
            if let Some(first) = positions.get(&question.key) {
                w.problem(
                    join(&at, "key"),
                    format!(
                        "duplicate question key {:?}: already used by {}",
                        question.key,
                        index(&questions_path, *first)
                    ),
                );
            } else {
                positions.insert(question.key.clone(), i);
            }
            questions.push(question);
        }
    }
    Questionnaire {
        description,
        questions,
        success_button_title,
    }
}

#[allow(clippy::too_many_arguments)]
fn question(
    w: &mut Walker,
    path: &str,
    value: &Value,
    audience: Audience,
    position: usize,
    earlier: &[Question],
    positions: &HashMap<String, usize>,
    all_keys: &[Option<&str>],
) -> Option<Question> {
    let object = w.object(path, value)?;
    let allowed = match audience {
        Audience::User => QUESTION_TYPES_USER,
        Audience::Operator => QUESTION_TYPES_OPERATOR,
    };
    let question_type = match Walker::field(object, "type") {
        None => {
            w.problem(join(path, "type"), "is required");
            None
        }
        Some(Value::String(name)) if allowed.contains(&name.as_str()) => Some(name.as_str()),
        Some(Value::String(name)) => {
            let why = if name == "attachment" {
                "attachment questions belong in user questionnaires".to_owned()
            } else {
                format!("unknown question type {name:?}")
            };
            w.problem(
                join(path, "type"),
                format!("{why}; expected one of: {}", allowed.join(", ")),
            );
            None
        }
        Some(other) => {
            w.problem(
                join(path, "type"),
                format!("must be a string, got {}", type_name(other)),
            );
            None
        }
    };

    let mut known = vec![
        "type",
        "key",
        "title",
        "mandatory",
        "readOnly",
        "showConditions",
        "answer",
    ];
    match question_type {
        Some("multiple-choice" | "options") => known.push("options"),
        Some("dropdown") => known.extend(["options", "multiple"]),
        Some("file") => known.extend(["description", "fileTypes", "filesMaxCount"]),
        Some("attachment") => known.extend([
            "description",
            "fileTypes",
            "filesMaxCount",
            "allowOperatorUpload",
            "allowOperatorOverride",
        ]),
        _ => {}
    }
    if question_type.is_some() {
        w.unknown_fields(path, object, &known);
    }

    let key = match Walker::field(object, "key") {
        None => {
            w.problem(join(path, "key"), "is required");
            None
        }
        Some(_) => w.key(path, object, "key"),
    };
    let title = match Walker::field(object, "title") {
        None => {
            w.problem(join(path, "title"), "is required");
            None
        }
        Some(_) => w.localized_field(path, object, "title"),
    };
    let mandatory = w.bool(path, object, "mandatory", false);
    let read_only = w.bool(path, object, "readOnly", false);

    let kind = question_type.and_then(|t| kind(w, path, object, t));
    let show_conditions = Walker::field(object, "showConditions").and_then(|value| {
        show_condition(
            w,
            &join(path, "showConditions"),
            value,
            position,
            earlier,
            positions,
            all_keys,
        )
    });

    let kind = kind?;
    if mandatory && read_only && !has_preset(&kind) {
        w.problem(
            join(path, "readOnly"),
            "a mandatory read-only question needs a preset answer, or nobody can ever answer it",
        );
    }
    Some(Question {
        key: key?,
        title: title?,
        mandatory,
        read_only,
        show_conditions,
        kind,
    })
}

fn has_preset(kind: &QuestionKind) -> bool {
    match kind {
        QuestionKind::String { answer } => answer.is_some(),
        QuestionKind::Options { answer, .. } => answer.is_some(),
        QuestionKind::MultipleChoice { answer, .. }
        | QuestionKind::Dropdown { answer, .. }
        | QuestionKind::Attachment { answer, .. } => !answer.is_empty(),
        QuestionKind::File { .. } => false,
    }
}

fn kind(w: &mut Walker, path: &str, object: &Object, question_type: &str) -> Option<QuestionKind> {
    let answer = Walker::field(object, "answer");
    let answer_path = join(path, "answer");
    match question_type {
        "string" => {
            let answer = answer.and_then(|value| w.localized(&answer_path, value));
            Some(QuestionKind::String { answer })
        }
        "options" => {
            let options = options(w, path, object)?;
            let answer = answer.and_then(|value| match value {
                Value::String(key) => option_key(w, &answer_path, key, &options),
                other => {
                    w.problem(
                        answer_path.clone(),
                        format!("must be the key of one option, got {}", type_name(other)),
                    );
                    None
                }
            });
            Some(QuestionKind::Options { options, answer })
        }
        "multiple-choice" => {
            let options = options(w, path, object)?;
            let answer = answer
                .map(|value| option_keys(w, &answer_path, value, &options))
                .unwrap_or_default();
            Some(QuestionKind::MultipleChoice { options, answer })
        }
        "dropdown" => {
            let multiple = w.bool(path, object, "multiple", false);
            let options = options(w, path, object)?;
            let answer = match answer {
                None => Vec::new(),
                Some(Value::String(key)) if !multiple => option_key(w, &answer_path, key, &options)
                    .into_iter()
                    .collect(),
                Some(value) if multiple => option_keys(w, &answer_path, value, &options),
                Some(other) => {
                    w.problem(
                        answer_path,
                        format!(
                            "must be the key of one option (this dropdown is not multiple), got {}",
                            type_name(other)
                        ),
                    );
                    Vec::new()
                }
            };
            Some(QuestionKind::Dropdown {
                options,
                multiple,
                answer,
            })
        }
        "file" => {
            if answer.is_some() {
                w.problem(answer_path, "file questions cannot have a preset answer");
            }
            let (file_types, files_max_count) = file_limits(w, path, object);
            Some(QuestionKind::File {
                description: w.localized_field(path, object, "description"),
                file_types,
                files_max_count,
            })
        }
        "attachment" => {
            let (file_types, files_max_count) = file_limits(w, path, object);
            let answer = match answer {
                None => Vec::new(),
                Some(Value::Array(items)) => {
                    let mut ids = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        match item {
                            Value::String(id) if !id.trim().is_empty() => ids.push(id.clone()),
                            other => w.problem(
                                index(&answer_path, i),
                                format!(
                                    "must be a file id (a non-empty string), got {}",
                                    type_name(other)
                                ),
                            ),
                        }
                    }
                    if ids.len() > usize::from(files_max_count) {
                        w.problem(
                            answer_path,
                            format!(
                                "names {} files but filesMaxCount is {files_max_count}",
                                ids.len()
                            ),
                        );
                    }
                    ids
                }
                Some(other) => {
                    w.problem(
                        answer_path,
                        format!("must be an array of file ids, got {}", type_name(other)),
                    );
                    Vec::new()
                }
            };
            Some(QuestionKind::Attachment {
                description: w.localized_field(path, object, "description"),
                file_types,
                files_max_count,
                allow_operator_upload: w.bool(path, object, "allowOperatorUpload", true),
                allow_operator_override: w.bool(path, object, "allowOperatorOverride", true),
                answer,
            })
        }
        _ => None,
    }
}

/// The options of a choice question: required, non-empty, keys unique.
fn options(w: &mut Walker, path: &str, object: &Object) -> Option<Vec<QuestionOption>> {
    let at = join(path, "options");
    if Walker::field(object, "options").is_none() {
        w.problem(
            at,
            "is required for this question type: give at least one option",
        );
        return None;
    }
    let items = w.array(path, object, "options")?;
    if items.is_empty() {
        w.problem(at, "must have at least one option");
        return None;
    }
    let before = w.problems.len();
    let mut options: Vec<QuestionOption> = Vec::with_capacity(items.len());
    let mut first_use: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = index(&at, i);
        let Some(option) = w.object(&item_path, item) else {
            continue;
        };
        w.unknown_fields(&item_path, option, &["key", "title"]);
        let key = match Walker::field(option, "key") {
            None => {
                w.problem(join(&item_path, "key"), "is required");
                None
            }
            Some(_) => w.key(&item_path, option, "key"),
        };
        let title = match Walker::field(option, "title") {
            None => {
                w.problem(join(&item_path, "title"), "is required");
                None
            }
            Some(_) => w.localized_field(&item_path, option, "title"),
        };
        if let Some(key) = &key {
            if let Some(first) = first_use.get(key) {
                w.problem(
                    join(&item_path, "key"),
                    format!(
                        "duplicate option key {key:?}: already used by {}",
                        index(&at, *first)
                    ),
                );
            } else {
                first_use.insert(key.clone(), i);
            }
        }
        if let (Some(key), Some(title)) = (key, title) {
            options.push(QuestionOption { key, title });
        }
    }
    (w.problems.len() == before).then_some(options)
}

fn option_key(w: &mut Walker, path: &str, key: &str, options: &[QuestionOption]) -> Option<String> {
    if options.iter().any(|o| o.key == key) {
        Some(key.to_owned())
    } else {
        let known: Vec<&str> = options.iter().map(|o| o.key.as_str()).collect();
        w.problem(
            path,
            format!(
                "names no option of this question: {key:?}; options: {}",
                known.join(", ")
            ),
        );
        None
    }
}

fn option_keys(
    w: &mut Walker,
    path: &str,
    value: &Value,
    options: &[QuestionOption],
) -> Vec<String> {
    let Value::Array(items) = value else {
        w.problem(
            path,
            format!("must be an array of option keys, got {}", type_name(value)),
        );
        return Vec::new();
    };
    let mut keys: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = index(path, i);
        match item {
            Value::String(key) => {
                if keys.contains(key) {
                    w.problem(at, format!("option {key:?} is named twice"));
                } else if let Some(key) = option_key(w, &at, key, options) {
                    keys.push(key);
                }
            }
            other => w.problem(
                at,
                format!("must be an option key (a string), got {}", type_name(other)),
            ),
        }
    }
    keys
}

fn file_limits(w: &mut Walker, path: &str, object: &Object) -> (Vec<FileType>, u8) {
    let types_at = join(path, "fileTypes");
    let file_types = match w.strings(path, object, "fileTypes") {
        None => FileType::ALL.to_vec(),
        Some(names) => {
            let mut types = Vec::new();
            for (i, name) in names.iter().enumerate() {
                match FileType::parse(name) {
                    Some(t) if !types.contains(&t) => types.push(t),
                    Some(_) => {}
                    None => w.problem(
                        index(&types_at, i),
                        format!("unknown file type {name:?}; expected \"pdf\" or \"image\""),
                    ),
                }
            }
            if names.is_empty() {
                w.problem(types_at, "must name at least one of \"pdf\", \"image\"");
            }
            types
        }
    };
    let count_at = join(path, "filesMaxCount");
    let files_max_count = match Walker::field(object, "filesMaxCount") {
        None => FILES_MAX as u8,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(count @ 1..=FILES_MAX) => count as u8,
            _ => {
                w.problem(
                    count_at,
                    format!("must be a whole number from 1 to {FILES_MAX}, got {n}"),
                );
                FILES_MAX as u8
            }
        },
        Some(other) => {
            w.problem(
                count_at,
                format!(
                    "must be a number from 1 to {FILES_MAX}, got {}",
                    type_name(other)
                ),
            );
            FILES_MAX as u8
        }
    };
    (file_types, files_max_count)
}

fn show_condition(
    w: &mut Walker,
    path: &str,
    value: &Value,
    position: usize,
    earlier: &[Question],
    positions: &HashMap<String, usize>,
    all_keys: &[Option<&str>],
) -> Option<ShowCondition> {
    let object = w.object(path, value)?;
    w.unknown_fields(path, object, &["questionKey", "answer"]);
    let key_path = join(path, "questionKey");
    let question_key = match Walker::field(object, "questionKey") {
        None => {
            w.problem(key_path.clone(), "is required");
            None
        }
        Some(_) => w.string(path, object, "questionKey"),
    };
    let answer_path = join(path, "answer");
    let answer = match Walker::field(object, "answer") {
        None => {
            w.problem(answer_path.clone(), "is required");
            None
        }
        Some(_) => w.string(path, object, "answer"),
    };
    let question_key = question_key?;

    let controller = positions.get(question_key).and_then(|p| {
        earlier
            .iter()
            .find(|q| q.key == question_key)
            .map(|q| (p, q))
    });
    let Some((_, controller)) = controller else {
        let later = all_keys
            .iter()
            .enumerate()
            .any(|(i, k)| i >= position && *k == Some(question_key));
        let message = if later {
            format!(
                "names question {question_key:?}, which does not come before this one; a condition may only depend on an earlier question"
            )
        } else {
            format!("names no earlier question of this questionnaire: {question_key:?}")
        };
        w.problem(key_path, message);
        return None;
    };
    let answer = answer?;
    match &controller.kind {
        QuestionKind::String { .. } => {}
        QuestionKind::MultipleChoice { options, .. }
        | QuestionKind::Options { options, .. }
        | QuestionKind::Dropdown { options, .. } => {
            if !options.iter().any(|o| o.key == answer) {
                let known: Vec<&str> = options.iter().map(|o| o.key.as_str()).collect();
                w.problem(
                    answer_path,
                    format!(
                        "names no option of question {question_key:?}: {answer:?}; options: {}",
                        known.join(", ")
                    ),
                );
                return None;
            }
        }
        QuestionKind::File { .. } | QuestionKind::Attachment { .. } => {
            w.problem(
                key_path,
                format!(
                    "question {question_key:?} is a {} question; conditions can only depend on text or choice questions",
                    controller.kind.type_name()
                ),
            );
            return None;
        }
    }
    Some(ShowCondition {
        question_key: question_key.to_owned(),
        answer: answer.to_owned(),
    })
}
