//! The verdict: approved, declined or review, from the checks a session's
//! captures went through. Which failed reasons decline outright and which
//! only send the session to a person is configuration, with defaults that
//! never decline on evidence a bad photo alone can produce.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::reason::{Check, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approved,
    Declined,
    /// A person must look: the evidence is not clear either way.
    Review,
}

/// Which failed reasons decline; every other failed reason asks for review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRules {
    pub decline: BTreeSet<Reason>,
}

impl Default for DecisionRules {
    /// Declines what a genuine customer with a poor camera cannot cause: an
    /// expired document, a document or country the integrator excluded, a
    /// different face, a spoof, a failed liveness challenge. Unreadable or
    /// poor captures and check-digit failures (often OCR, not forgery) go to
    /// review.
    fn default() -> Self {
        Self {
            decline: [
                Reason::DocumentExpired,
                Reason::DocumentTypeNotAllowed,
                Reason::DocumentCountryNotAllowed,
                Reason::FaceMismatch,
                Reason::SpoofSuspected,
                Reason::ChallengeFailed,
            ]
            .into_iter()
            .collect(),
        }
    }
}

/// The verdict and the reasons behind it, with every check kept for staff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// Failed reasons, each once, in a stable order.
    pub reasons: Vec<Reason>,
    pub checks: Vec<Check>,
}

impl DecisionRules {
    pub fn decide(&self, checks: Vec<Check>) -> Decision {
        let failed: BTreeSet<Reason> = checks
            .iter()
            .filter(|c| !c.passed)
            // A failed check without a reason still needs a person.
            .map(|c| c.reason.unwrap_or(Reason::UnreadableImage))
            .collect();
        let verdict = if failed.iter().any(|r| self.decline.contains(r)) {
            Verdict::Declined
        } else if failed.is_empty() {
            Verdict::Approved
        } else {
            Verdict::Review
        };
        Decision {
            verdict,
            reasons: failed.into_iter().collect(),
            checks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, passed: bool, reason: Reason) -> Check {
        Check {
            name: name.into(),
            passed,
            score: if passed { 0.9 } else { 0.1 },
            threshold: 0.5,
            reason: (!passed).then_some(reason),
        }
    }

    #[test]
    fn all_passed_is_approved() {
        let d = DecisionRules::default().decide(vec![
            check("blur", true, Reason::Blurry),
            check("face_match", true, Reason::FaceMismatch),
        ]);
        assert_eq!(d.verdict, Verdict::Approved);
        assert!(d.reasons.is_empty());
        assert_eq!(d.checks.len(), 2, "checks are kept for staff");
    }

    #[test]
    fn poor_captures_and_check_digits_go_to_review() {
        let d = DecisionRules::default().decide(vec![
            check("blur", false, Reason::Blurry),
            check("mrz", false, Reason::MrzCheckDigit),
            check("face_match", true, Reason::FaceMismatch),
        ]);
        assert_eq!(d.verdict, Verdict::Review);
        assert_eq!(d.reasons, [Reason::Blurry, Reason::MrzCheckDigit]);
    }

    #[test]
    fn a_declining_reason_wins_over_review() {
        let d = DecisionRules::default().decide(vec![
            check("blur", false, Reason::Blurry),
            check("face_match", false, Reason::FaceMismatch),
            check("face_match_liveness", false, Reason::FaceMismatch),
        ]);
        assert_eq!(d.verdict, Verdict::Declined);
        assert_eq!(
            d.reasons,
            [Reason::Blurry, Reason::FaceMismatch],
            "each reason once"
        );
    }

    #[test]
    fn rules_come_from_configuration() {
        let strict: DecisionRules =
            serde_json::from_str(r#"{"decline": ["mrz_check_digit", "face_mismatch"]}"#).unwrap();
        let d = strict.decide(vec![check("mrz", false, Reason::MrzCheckDigit)]);
        assert_eq!(d.verdict, Verdict::Declined);
        let lenient: DecisionRules = serde_json::from_str(r#"{"decline": []}"#).unwrap();
        let d = lenient.decide(vec![check("face", false, Reason::FaceMismatch)]);
        assert_eq!(d.verdict, Verdict::Review);
        assert!(serde_json::from_str::<DecisionRules>(r#"{"decline": ["sunburn"]}"#).is_err());
        assert!(serde_json::from_str::<DecisionRules>(r#"{"declines": []}"#).is_err());
    }
}
