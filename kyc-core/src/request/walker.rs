//! A small cursor over JSON that records problems and warnings with paths.

use serde_json::{Map, Value};

use super::Problem;
use crate::domain::LocalizedText;
use crate::i18n;

pub(super) type Object = Map<String, Value>;

/// Collects problems (which refuse the request) and warnings (which do not).
#[derive(Debug, Default)]
pub(super) struct Walker {
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

pub(super) fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

pub(super) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// The JSON type of a value, as a message names it ("an object", "a string"…).
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Walker {
    pub fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    pub fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem::new(path, message));
    }

    fn wrong_type(&mut self, path: &str, expected: &str, got: &Value) {
        self.problem(path, format!("must be {expected}, got {}", type_name(got)));
    }

    /// Warns about every field of `object` not in `known`.
    pub fn unknown_fields(&mut self, path: &str, object: &Object, known: &[&str]) {
        for name in object.keys() {
            if !known.contains(&name.as_str()) {
                self.warn(
                    join(path, name),
                    format!("unknown field {name:?} is ignored"),
                );
            }
        }
    }

    /// A value that must be an object.
    pub fn object<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v Object> {
        match value {
            Value::Object(object) => Some(object),
            other => {
                self.wrong_type(path, "an object", other);
                None
            }
        }
    }

    /// An optional field; `null` counts as absent.
    pub fn field<'v>(object: &'v Object, name: &str) -> Option<&'v Value> {
        object.get(name).filter(|v| !v.is_null())
    }

    pub fn bool(&mut self, path: &str, object: &Object, name: &str, default: bool) -> bool {
        match Self::field(object, name) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.wrong_type(&join(path, name), "true or false", other);
                default
            }
        }
    }

    pub fn string<'v>(&mut self, path: &str, object: &'v Object, name: &str) -> Option<&'v str> {
        match Self::field(object, name) {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.wrong_type(&join(path, name), "a string", other);
                None
            }
        }
    }

    pub fn array<'v>(&mut self, path: &str, object: &'v Object, name: &str) -> Option<&'v [Value]> {
        match Self::field(object, name) {
            None => None,
            Some(Value::Array(items)) => Some(items),
            Some(other) => {
                self.wrong_type(&join(path, name), "an array", other);
                None
            }
        }
    }

    /// An array of strings; wrong items are reported one by one and skipped.
    pub fn strings(&mut self, path: &str, object: &Object, name: &str) -> Option<Vec<String>> {
        let items = self.array(path, object, name)?;
        let path = join(path, name);
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                other => self.wrong_type(&index(&path, i), "a string", other),
            }
        }
        Some(out)
    }

    /// A key chosen by the integrator: a non-empty string of at most 128
    /// characters without control characters.
    pub fn key(&mut self, path: &str, object: &Object, name: &str) -> Option<String> {
        let key = self.string(path, object, name)?;
        let path = join(path, name);
        if key.trim().is_empty() {
            self.problem(path, "must not be empty");
            None
        } else if key.chars().count() > 128 {
            self.problem(path, "must be at most 128 characters");
            None
        } else if key.chars().any(char::is_control) {
            self.problem(path, "must not contain control characters");
            None
        } else {
            Some(key.to_owned())
        }
    }

    /// Text for people: a string, or an object of language codes to strings.
    pub fn localized(&mut self, path: &str, value: &Value) -> Option<LocalizedText> {
        match value {
            Value::String(text) => Some(LocalizedText::Plain(text.clone())),
            Value::Object(by_language) => {
                let before = self.problems.len();
                let mut texts = std::collections::BTreeMap::new();
                for (code, text) in by_language {
                    let at = join(path, code);
                    if !i18n::is_language_tag(code) {
                        self.problem(
                            at.clone(),
                            format!("{code:?} is not a supported language code (ISO 639-1, e.g. \"en\", \"ka\", \"pt-BR\")"),
                        );
                    }
                    match text {
                        Value::String(text) => {
                            texts.insert(code.clone(), text.clone());
                        }
                        other => self.wrong_type(&at, "a string", other),
                    }
                }
                if by_language.is_empty() {
                    self.problem(path, "must name at least one language");
                }
                (self.problems.len() == before).then_some(LocalizedText::ByLanguage(texts))
            }
            other => {
                self.wrong_type(path, "a string or an object of language codes", other);
                None
            }
        }
    }

    pub fn localized_field(
        &mut self,
        path: &str,
        object: &Object,
        name: &str,
    ) -> Option<LocalizedText> {
        let value = Self::field(object, name)?;
        self.localized(&join(path, name), value)
    }

    /// An absolute http(s) URL, or `None` when absent or empty.
    pub fn url(&mut self, path: &str, object: &Object, name: &str) -> Option<String> {
        let text = self.string(path, object, name)?;
        if text.is_empty() {
            return None;
        }
        match url::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                Some(text.to_owned())
            }
            Ok(_) => {
                self.problem(join(path, name), "must be an http or https URL");
                None
            }
            Err(err) => {
                self.problem(join(path, name), format!("is not a valid URL: {err}"));
                None
            }
        }
    }
}
