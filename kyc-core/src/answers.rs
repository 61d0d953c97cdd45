//! Answers to a questionnaire, checked against its questions: which
//! questions are shown (show conditions), which must be answered, what shape
//! each answer takes, and that read-only questions keep their preset answer.
//! The widget and the operator console submit through the same rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{Question, QuestionKind, Questionnaire};
use crate::request::{Problem, json_type_name};

/// An accepted answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// A text answer, or the key of one option.
    One(String),
    /// Option keys (multiple-choice, multiple dropdown) or file ids.
    Many(Vec<String>),
}

/// The answers of a questionnaire by question key; hidden questions have none.
pub type Answers = BTreeMap<String, Answer>;

/// The preset answer of a question, as an answer.
fn preset(question: &Question, language: &str) -> Option<Answer> {
    match &question.kind {
        QuestionKind::String { answer } => answer
            .as_ref()
            .map(|a| Answer::One(a.for_language(language).to_owned())),
        QuestionKind::Options { answer, .. } => answer.clone().map(Answer::One),
        QuestionKind::MultipleChoice { answer, .. } | QuestionKind::Attachment { answer, .. } => {
            (!answer.is_empty()).then(|| Answer::Many(answer.clone()))
        }
        QuestionKind::Dropdown {
            answer, multiple, ..
        } => match (answer.as_slice(), multiple) {
            ([], _) => None,
            ([one], false) => Some(Answer::One(one.clone())),
            (many, _) => Some(Answer::Many(many.to_vec())),
        },
        QuestionKind::File { .. } => None,
    }
}

/// Whether `question` is shown, given the answers of the questions before it.
fn shown(question: &Question, answers: &Answers) -> bool {
    let Some(condition) = &question.show_conditions else {
        return true;
    };
    match answers.get(&condition.question_key) {
        Some(Answer::One(value)) => *value == condition.answer,
        Some(Answer::Many(values)) => values.contains(&condition.answer),
        None => false,
    }
}

/// Checks `submitted` (a JSON object of question key → answer) against
/// `form`. Read-only questions take their preset answer; hidden questions
/// are dropped. `language` picks the preset text of localized answers.
pub fn check_answers(
    form: &Questionnaire,
    submitted: &Value,
    language: &str,
) -> Result<Answers, Vec<Problem>> {
    let mut problems = Vec::new();
    let Value::Object(submitted) = submitted else {
        return Err(vec![Problem::new(
            "answers",
            format!(
                "must be an object of question keys to answers, got {}",
                json_type_name(submitted)
            ),
        )]);
    };
    for key in submitted.keys() {
        if !form.questions.iter().any(|q| &q.key == key) {
            problems.push(Problem::new(
                format!("answers.{key}"),
                "names no question of this questionnaire",
            ));
        }
    }
    let mut answers = Answers::new();
    for question in &form.questions {
        let path = format!("answers.{}", question.key);
        if !shown(question, &answers) {
            continue;
        }
        let given = submitted.get(&question.key).filter(|v| !v.is_null());
        let answer = if question.read_only {
            let fixed = preset(question, language);
            if let (Some(given), Some(fixed)) = (given, &fixed)
                && parse(question, given, &mut Vec::new(), &path).as_ref() != Some(fixed)
            {
                problems.push(Problem::new(
                    path.clone(),
                    "is read-only: its preset answer cannot change",
                ));
            }
            fixed
        } else {
            given.and_then(|value| parse(question, value, &mut problems, &path))
        };
        let empty = match &answer {
            None => true,
            Some(Answer::One(text)) => text.trim().is_empty(),
            Some(Answer::Many(items)) => items.is_empty(),
        };
        if empty {
            if question.mandatory && !problems.iter().any(|p| p.path == path) {
                problems.push(Problem::new(path, "must be answered"));
            }
        } else if let Some(answer) = answer {
            answers.insert(question.key.clone(), answer);
        }
    }
    if problems.is_empty() {
        Ok(answers)
    } else {
        Err(problems)
    }
}

fn parse(
    question: &Question,
    value: &Value,
    problems: &mut Vec<Problem>,
    path: &str,
) -> Option<Answer> {
    let options = question.kind.options();
    let option = |key: &str, problems: &mut Vec<Problem>, at: &str| -> Option<String> {
        if options.iter().any(|o| o.key == key) {
            Some(key.to_owned())
        } else {
            problems.push(Problem::new(
                at,
                format!("{key:?} is not an option of this question"),
            ));
            None
        }
    };
    let keys = |value: &Value, problems: &mut Vec<Problem>, what: &str| -> Option<Vec<String>> {
        let Value::Array(items) = value else {
            problems.push(Problem::new(
                path,
                format!("must be an array of {what}, got {}", json_type_name(value)),
            ));
            return None;
        };
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(text) if out.iter().any(|o| o == text) => {
                    problems.push(Problem::new(
                        format!("{path}[{i}]"),
                        format!("{text:?} is given twice"),
                    ));
                }
                Some(text) => out.push(text.to_owned()),
                None => problems.push(Problem::new(
                    format!("{path}[{i}]"),
                    format!("must be a string, got {}", json_type_name(item)),
                )),
            }
        }
        Some(out)
    };
    match &question.kind {
        QuestionKind::String { .. } => match value {
            Value::String(text) if text.chars().count() <= 10_000 => {
                Some(Answer::One(text.clone()))
            }
            Value::String(_) => {
                problems.push(Problem::new(path, "must be at most 10000 characters"));
                None
            }
            other => {
                problems.push(Problem::new(
                    path,
                    format!("must be a string, got {}", json_type_name(other)),
                ));
                None
            }
        },
        QuestionKind::Options { .. }
        | QuestionKind::Dropdown {
            multiple: false, ..
        } => match value {
            Value::String(key) => option(key, problems, path).map(Answer::One),
            other => {
                problems.push(Problem::new(
                    path,
                    format!("must be one option key, got {}", json_type_name(other)),
                ));
                None
            }
        },
        QuestionKind::MultipleChoice { .. } | QuestionKind::Dropdown { multiple: true, .. } => {
            let picked = keys(value, problems, "option keys")?;
            let before = problems.len();
            for (i, key) in picked.iter().enumerate() {
                option(key, problems, &format!("{path}[{i}]"));
            }
            (problems.len() == before).then_some(Answer::Many(picked))
        }
        QuestionKind::File {
            files_max_count, ..
        }
        | QuestionKind::Attachment {
            files_max_count, ..
        } => {
            let files = keys(value, problems, "file ids")?;
            if files.len() > usize::from(*files_max_count) {
                problems.push(Problem::new(
                    path,
                    format!(
                        "has {} files; at most {files_max_count} are allowed",
                        files.len()
                    ),
                ));
                return None;
            }
            Some(Answer::Many(files))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn form(questions: Value) -> Questionnaire {
        serde_json::from_value(json!({"questions": questions})).unwrap()
    }

    fn kyc_form() -> Questionnaire {
        form(json!([
            {"type": "string", "key": "job", "title": "Job", "mandatory": true, "readOnly": false},
            {"type": "options", "key": "pep", "title": "PEP?", "mandatory": true, "readOnly": false,
             "options": [{"key": "yes", "title": "Yes"}, {"key": "no", "title": "No"}]},
            {"type": "string", "key": "office", "title": "Office", "mandatory": true, "readOnly": false,
             "showConditions": {"questionKey": "pep", "answer": "yes"}},
            {"type": "multiple-choice", "key": "funds", "title": "Funds", "mandatory": false, "readOnly": false,
             "options": [{"key": "salary", "title": "Salary"}, {"key": "savings", "title": "Savings"}], "answer": []},
            {"type": "string", "key": "ref", "title": "Ref", "mandatory": true, "readOnly": true,
             "answer": {"en": "REF-1", "ka": "REF-1-KA"}},
            {"type": "file", "key": "proof", "title": "Proof", "mandatory": false, "readOnly": false,
             "fileTypes": ["pdf"], "filesMaxCount": 2}
        ]))
    }

    fn paths(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn a_complete_answer_set_is_accepted_with_presets_filled() {
        let answers = check_answers(
            &kyc_form(),
            &json!({"job": "Engineer", "pep": "no", "funds": ["salary"]}),
            "en",
        )
        .unwrap();
        assert_eq!(answers["job"], Answer::One("Engineer".into()));
        assert_eq!(
            answers["ref"],
            Answer::One("REF-1".into()),
            "read-only preset"
        );
        assert_eq!(answers["funds"], Answer::Many(vec!["salary".into()]));
        assert!(!answers.contains_key("office"), "hidden unless pep is yes");
        let ka = check_answers(&kyc_form(), &json!({"job": "x", "pep": "no"}), "ka").unwrap();
        assert_eq!(ka["ref"], Answer::One("REF-1-KA".into()));
    }

    #[test]
    fn show_conditions_make_questions_mandatory_only_when_shown() {
        let problems =
            check_answers(&kyc_form(), &json!({"job": "x", "pep": "yes"}), "en").unwrap_err();
        assert_eq!(paths(&problems), ["answers.office"]);
        let answers = check_answers(
            &kyc_form(),
            &json!({"job": "x", "pep": "yes", "office": "Mayor"}),
            "en",
        )
        .unwrap();
        assert_eq!(answers["office"], Answer::One("Mayor".into()));
        let dropped = check_answers(
            &kyc_form(),
            &json!({"job": "x", "pep": "no", "office": "Mayor"}),
            "en",
        )
        .unwrap();
        assert!(
            !dropped.contains_key("office"),
            "answers to hidden questions are dropped"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let problems = check_answers(
            &kyc_form(),
            &json!({"job": "  ", "pep": "maybe", "funds": ["salary", "salary", 3], "ref": "REF-2",
                    "proof": ["a", "b", "c"], "shoe": 44}),
            "en",
        )
        .unwrap_err();
        let mut found = paths(&problems);
        found.sort();
        assert_eq!(
            found,
            [
                "answers.funds[1]",
                "answers.funds[2]",
                "answers.job",
                "answers.pep",
                "answers.proof",
                "answers.ref",
                "answers.shoe"
            ]
        );
        assert!(check_answers(&kyc_form(), &json!(["job"]), "en").is_err());
    }

    #[test]
    fn dropdowns_follow_their_multiple_flag() {
        let single = form(
            json!([{"type": "dropdown", "key": "c", "title": "C", "mandatory": true, "readOnly": false,
            "multiple": false, "answer": [], "options": [{"key": "ge", "title": "GE"}, {"key": "de", "title": "DE"}]}]),
        );
        assert!(check_answers(&single, &json!({"c": "ge"}), "en").is_ok());
        assert!(check_answers(&single, &json!({"c": ["ge"]}), "en").is_err());
        let multi = form(
            json!([{"type": "dropdown", "key": "c", "title": "C", "mandatory": true, "readOnly": false,
            "multiple": true, "answer": [], "options": [{"key": "ge", "title": "GE"}, {"key": "de", "title": "DE"}]}]),
        );
        assert_eq!(
            check_answers(&multi, &json!({"c": ["ge", "de"]}), "en").unwrap()["c"],
            Answer::Many(vec!["ge".into(), "de".into()])
        );
        assert_eq!(
            paths(&check_answers(&multi, &json!({"c": []}), "en").unwrap_err()),
            ["answers.c"]
        );
    }
}
