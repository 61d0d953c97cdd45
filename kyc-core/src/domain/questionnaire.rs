use serde::{Deserialize, Serialize};

use super::LocalizedText;

/// A form filled in by the end user (user questionnaire) or by the operator
/// (operator questionnaire). Its title is the step's title.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Questionnaire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<LocalizedText>,
    pub questions: Vec<Question>,
    /// Label of the confirm button; `None`: "Confirm".
    #[serde(
        rename = "successButtonTitle",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub success_button_title: Option<LocalizedText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    /// Unique within its questionnaire.
    pub key: String,
    pub title: LocalizedText,
    pub mandatory: bool,
    #[serde(rename = "readOnly")]
    pub read_only: bool,
    #[serde(
        rename = "showConditions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub show_conditions: Option<ShowCondition>,
    #[serde(flatten)]
    pub kind: QuestionKind,
}

/// Question types with what each one carries. `answer` is the preset answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum QuestionKind {
    /// Short text.
    String {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<LocalizedText>,
    },
    /// Checkboxes: any number of options.
    MultipleChoice {
        options: Vec<QuestionOption>,
        answer: Vec<String>,
    },
    /// Radio buttons: one option.
    Options {
        options: Vec<QuestionOption>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<String>,
    },
    /// A dropdown list: one option, or several when `multiple`.
    Dropdown {
        options: Vec<QuestionOption>,
        multiple: bool,
        answer: Vec<String>,
    },
    /// Files uploaded as the answer.
    File {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<LocalizedText>,
        #[serde(rename = "fileTypes")]
        file_types: Vec<FileType>,
        #[serde(rename = "filesMaxCount")]
        files_max_count: u8,
    },
    /// Files shared with the end user, given by the integrator or an operator.
    Attachment {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<LocalizedText>,
        #[serde(rename = "fileTypes")]
        file_types: Vec<FileType>,
        #[serde(rename = "filesMaxCount")]
        files_max_count: u8,
        #[serde(rename = "allowOperatorUpload")]
        allow_operator_upload: bool,
        #[serde(rename = "allowOperatorOverride")]
        allow_operator_override: bool,
        /// File ids attached in advance.
        answer: Vec<String>,
    },
}

impl QuestionKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::String { .. } => "string",
            Self::MultipleChoice { .. } => "multiple-choice",
            Self::Options { .. } => "options",
            Self::Dropdown { .. } => "dropdown",
            Self::File { .. } => "file",
            Self::Attachment { .. } => "attachment",
        }
    }

    pub fn options(&self) -> &[QuestionOption] {
        match self {
            Self::MultipleChoice { options, .. }
            | Self::Options { options, .. }
            | Self::Dropdown { options, .. } => options,
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionOption {
    pub key: String,
    pub title: LocalizedText,
}

/// Show a question only when an earlier question has a given answer: an
/// option key for choice questions, the exact text for string questions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowCondition {
    #[serde(rename = "questionKey")]
    pub question_key: String,
    pub answer: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    Pdf,
    Image,
}

impl FileType {
    pub const ALL: [Self; 2] = [Self::Pdf, Self::Image];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pdf" => Some(Self::Pdf),
            "image" => Some(Self::Image),
            _ => None,
        }
    }
}
