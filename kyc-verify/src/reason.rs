//! Machine-readable reasons a check gives, shared by every pipeline so staff
//! and integrators see one vocabulary.

use serde::{Deserialize, Serialize};

/// Why a check did not pass (or needs a person to look).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The bytes are not a supported image (or PDF).
    UnreadableImage,
    /// The image is larger than the decoder allows (a decompression bomb).
    ImageTooLarge,
    /// Below the required resolution (1920×1080 with `requireHdMedia`).
    LowResolution,
    Blurry,
    Glare,
    TooDark,
    NoFace,
    SeveralFaces,
    /// No machine-readable zone was found on the document.
    MrzNotFound,
    /// A check digit of the machine-readable zone does not hold.
    MrzCheckDigit,
    /// A field no check digit covers (names, country, sex) was not read
    /// with enough confidence to trust it.
    MrzIllegible,
    DocumentExpired,
    /// The document's type is not in `document_types`.
    DocumentTypeNotAllowed,
    /// The issuing country is not in `document_countries`.
    DocumentCountryNotAllowed,
    /// The face does not match the document's portrait.
    FaceMismatch,
    /// The capture looks like a photo of a photo or of a screen.
    SpoofSuspected,
    /// An active-liveness challenge was not performed.
    ChallengeFailed,
    /// A photo that should show an identity document shows none.
    DocumentNotFound,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnreadableImage => "unreadable_image",
            Self::ImageTooLarge => "image_too_large",
            Self::LowResolution => "low_resolution",
            Self::Blurry => "blurry",
            Self::Glare => "glare",
            Self::TooDark => "too_dark",
            Self::NoFace => "no_face",
            Self::SeveralFaces => "several_faces",
            Self::MrzNotFound => "mrz_not_found",
            Self::MrzCheckDigit => "mrz_check_digit",
            Self::MrzIllegible => "mrz_illegible",
            Self::DocumentExpired => "document_expired",
            Self::DocumentTypeNotAllowed => "document_type_not_allowed",
            Self::DocumentCountryNotAllowed => "document_country_not_allowed",
            Self::FaceMismatch => "face_mismatch",
            Self::SpoofSuspected => "spoof_suspected",
            Self::ChallengeFailed => "challenge_failed",
            Self::DocumentNotFound => "document_not_found",
        }
    }
}

/// One measured check: its score, the threshold it was held to, and the
/// reason it gives when it fails; kept whole so staff can see why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub score: f64,
    pub threshold: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_serialize_as_their_codes() {
        for reason in [
            Reason::MrzCheckDigit,
            Reason::FaceMismatch,
            Reason::SpoofSuspected,
        ] {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
    }
}
