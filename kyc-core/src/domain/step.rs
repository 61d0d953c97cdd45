use serde::{Deserialize, Serialize};

use super::{LocalizedText, Questionnaire};

/// One step of a verification flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Unique within the session (video-call sub-steps included).
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<LocalizedText>,
    #[serde(flatten)]
    pub kind: StepKind,
}

impl Step {
    pub fn step_type(&self) -> StepType {
        self.kind.step_type()
    }

    /// A step of `kind` under its documented default key.
    pub fn with_default_key(kind: StepKind) -> Self {
        Self {
            key: kind
                .step_type()
                .default_key()
                .unwrap_or_default()
                .to_owned(),
            title: None,
            kind,
        }
    }
}

/// The step types, one variant each, with their typed configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum StepKind {
    Language {
        /// Languages offered; empty: every UI language.
        languages: Vec<String>,
    },
    IdentityDocument {
        flags: IdentityDocumentFlags,
    },
    Liveness {
        flags: LivenessFlags,
    },
    GeneralDocument {
        flags: GeneralDocumentFlags,
    },
    FaceDocument {
        flags: FaceDocumentFlags,
    },
    VideoCall(VideoCall),
    PhoneNumber {
        flags: PhoneNumberFlags,
    },
    Email {
        flags: EmailFlags,
    },
    Geolocation {
        flags: GeolocationFlags,
    },
    UserQuestionnaire(Questionnaire),
    OperatorQuestionnaire(Questionnaire),
}

impl StepKind {
    pub fn step_type(&self) -> StepType {
        match self {
            Self::Language { .. } => StepType::Language,
            Self::IdentityDocument { .. } => StepType::IdentityDocument,
            Self::Liveness { .. } => StepType::Liveness,
            Self::GeneralDocument { .. } => StepType::GeneralDocument,
            Self::FaceDocument { .. } => StepType::FaceDocument,
            Self::VideoCall(_) => StepType::VideoCall,
            Self::PhoneNumber { .. } => StepType::PhoneNumber,
            Self::Email { .. } => StepType::Email,
            Self::Geolocation { .. } => StepType::Geolocation,
            Self::UserQuestionnaire(_) => StepType::UserQuestionnaire,
            Self::OperatorQuestionnaire(_) => StepType::OperatorQuestionnaire,
        }
    }
}

/// The name of a step type, as it appears in `"type"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepType {
    Language,
    IdentityDocument,
    Liveness,
    GeneralDocument,
    FaceDocument,
    VideoCall,
    PhoneNumber,
    Email,
    Geolocation,
    UserQuestionnaire,
    OperatorQuestionnaire,
}

impl StepType {
    pub const ALL: [Self; 11] = [
        Self::Language,
        Self::IdentityDocument,
        Self::Liveness,
        Self::GeneralDocument,
        Self::FaceDocument,
        Self::VideoCall,
        Self::PhoneNumber,
        Self::Email,
        Self::Geolocation,
        Self::UserQuestionnaire,
        Self::OperatorQuestionnaire,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Language => "language",
            Self::IdentityDocument => "identity-document",
            Self::Liveness => "liveness",
            Self::GeneralDocument => "general-document",
            Self::FaceDocument => "face-document",
            Self::VideoCall => "video-call",
            Self::PhoneNumber => "phone-number",
            Self::Email => "email",
            Self::Geolocation => "geolocation",
            Self::UserQuestionnaire => "user-questionnaire",
            Self::OperatorQuestionnaire => "operator-questionnaire",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// The documented key of a step of this type when the request gives none.
    /// Questionnaires have none: their key is always the integrator's.
    pub fn default_key(self) -> Option<&'static str> {
        match self {
            Self::Language => Some("language"),
            Self::IdentityDocument => Some("identity-document"),
            Self::Liveness => Some("liveness"),
            Self::GeneralDocument => Some("select_general_document"),
            Self::FaceDocument => Some("capture_face_document"),
            Self::VideoCall => Some("video-call"),
            Self::PhoneNumber => Some("phone_number"),
            Self::Email => Some("require_email"),
            Self::Geolocation => Some("require_geolocation"),
            Self::UserQuestionnaire | Self::OperatorQuestionnaire => None,
        }
    }

    /// Whether a video call may run a step of this type inside it.
    pub fn allowed_in_video_call(self) -> bool {
        !matches!(
            self,
            Self::Language | Self::OperatorQuestionnaire | Self::VideoCall
        )
    }
}

/// Kinds of identity documents `document_types` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    Passport,
    IdCard,
    ResidencePermit,
    DrivingLicense,
}

impl DocumentType {
    pub const ALL: [Self; 4] = [
        Self::Passport,
        Self::IdCard,
        Self::ResidencePermit,
        Self::DrivingLicense,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passport => "passport",
            Self::IdCard => "id_card",
            Self::ResidencePermit => "residence_permit",
            Self::DrivingLicense => "driving_license",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// Kinds of general documents `general_document_types` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeneralDocumentType {
    UtilityBill,
    BankStatement,
    TaxDocument,
    RentalAgreement,
    GovernmentLetter,
    EmploymentLetter,
    Other,
}

impl GeneralDocumentType {
    pub const ALL: [Self; 7] = [
        Self::UtilityBill,
        Self::BankStatement,
        Self::TaxDocument,
        Self::RentalAgreement,
        Self::GovernmentLetter,
        Self::EmploymentLetter,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UtilityBill => "utility_bill",
            Self::BankStatement => "bank_statement",
            Self::TaxDocument => "tax_document",
            Self::RentalAgreement => "rental_agreement",
            Self::GovernmentLetter => "government_letter",
            Self::EmploymentLetter => "employment_letter",
            Self::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityDocumentFlags {
    /// Upload only, no live capture.
    pub disable_document_capture: bool,
    /// Offer upload beside live capture.
    pub allow_document_upload: bool,
    /// Allowed kinds; empty: all.
    pub document_types: Vec<DocumentType>,
    /// Allowed issuing countries (ISO 3166-1 alpha-3); empty: all.
    pub document_countries: Vec<String>,
    pub optional_continue_on_another_device: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivenessFlags {
    /// `true`: active liveness (challenges); `false`: passive.
    pub liveness: bool,
    /// Allow a selfie upload; ignored when `liveness` is true.
    pub allow_face_upload: bool,
    pub optional_continue_on_another_device: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneralDocumentFlags {
    /// Allowed kinds; empty: all.
    pub general_document_types: Vec<GeneralDocumentType>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceDocumentFlags {
    pub allow_face_doc_upload: bool,
    pub require_face_document: bool,
    pub optional_continue_on_another_device: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumberFlags {
    /// Verify the number with a one-time code.
    pub require_phone_number_check: bool,
    /// Collect the number without verifying it.
    pub require_phone_number: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailFlags {
    /// Verify the address with a one-time code.
    pub require_email_check: bool,
    /// Collect the address without verifying it.
    pub require_email: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeolocationFlags {
    /// Location access is needed to proceed (default true).
    pub require_geolocation: bool,
}

impl Default for GeolocationFlags {
    fn default() -> Self {
        Self {
            require_geolocation: true,
        }
    }
}

/// A call with an operator, and the steps run during it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoCall {
    pub steps: Vec<Step>,
    /// Clear the participant's verification data when they rejoin.
    #[serde(rename = "resetSteps")]
    pub reset_steps: bool,
    /// Do not let the participant turn the camera off.
    #[serde(rename = "hideCameraOption")]
    pub hide_camera_option: bool,
    /// Participants must give a name to join.
    #[serde(rename = "nameRequired")]
    pub name_required: bool,
    /// Several participants in one call.
    pub multiple_participants: bool,
}
