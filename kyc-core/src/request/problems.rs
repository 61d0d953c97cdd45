use serde::{Deserialize, Serialize};

/// One thing wrong (or, as a warning, worth knowing) about a request, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// JSON path of the offending value, e.g. `steps[3].questions[1].key`.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A request refused: every problem found, and the warnings gathered on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl Rejected {
    /// One line that summarises the problems for people and logs.
    pub fn summary(&self) -> String {
        match self.problems.as_slice() {
            [] => "the request is invalid".to_owned(),
            [one] => format!("{}: {}", one.path, one.message),
            [first, rest @ ..] => format!(
                "{}: {} (and {} more problem{})",
                first.path,
                first.message,
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            ),
        }
    }
}
