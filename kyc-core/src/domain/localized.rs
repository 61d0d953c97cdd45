use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Text shown to a person: either one string for every language, or one
/// string per language code (`{"en": "Name", "ka": "სახელი"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LocalizedText {
    Plain(String),
    ByLanguage(BTreeMap<String, String>),
}

impl LocalizedText {
    /// The text for `language`, falling back to English, then to any language.
    pub fn for_language(&self, language: &str) -> &str {
        match self {
            Self::Plain(text) => text,
            Self::ByLanguage(by_language) => by_language
                .get(language)
                .or_else(|| by_language.get("en"))
                .or_else(|| by_language.values().next())
                .map_or("", String::as_str),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_language_then_english_then_any() {
        let text: LocalizedText = serde_json::from_str(r#"{"ka":"სახელი","en":"Name"}"#).unwrap();
        assert_eq!(text.for_language("ka"), "სახელი");
        assert_eq!(text.for_language("de"), "Name");
        let only: LocalizedText = serde_json::from_str(r#"{"ka":"სახელი"}"#).unwrap();
        assert_eq!(only.for_language("de"), "სახელი");
        let plain: LocalizedText = serde_json::from_str(r#""Name""#).unwrap();
        assert_eq!(plain.for_language("ka"), "Name");
    }
}
