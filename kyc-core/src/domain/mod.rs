//! The verification domain as integrators describe it: flags, steps,
//! questionnaires and the session around them. Values of these types are
//! valid by construction: they are only built by [`crate::request`] after
//! validation, or read back from storage where validated values were written.

mod flags;
mod localized;
mod questionnaire;
mod session;
mod step;

pub use flags::Flags;
pub use localized::LocalizedText;
pub use questionnaire::{
    FileType, Question, QuestionKind, QuestionOption, Questionnaire, ShowCondition,
};
pub use session::{SessionParams, SessionSpec, SessionStatus};
pub use step::{
    DocumentType, EmailFlags, FaceDocumentFlags, GeneralDocumentFlags, GeneralDocumentType,
    GeolocationFlags, IdentityDocumentFlags, LivenessFlags, PhoneNumberFlags, Step, StepKind,
    StepType, VideoCall,
};
