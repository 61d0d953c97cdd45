use serde::{Deserialize, Serialize};

/// The general flags of a session, with the documented defaults applied.
/// Serialized under the names integrators use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    /// Do not add the legacy liveness step (see [`crate::flow::expand_legacy`]).
    pub skip_face: bool,
    /// Do not add the legacy identity-document step.
    pub skip_document: bool,
    /// Where to send the browser when the flow ends; `None`: embedded in an iframe.
    pub return_url: Option<String>,
    /// Interface language; `None`: the browser's choice among the UI languages.
    pub language: Option<String>,
    /// Mobile devices only; a desktop browser gets a QR code.
    pub skip_desktop: bool,
    /// URL for the QR code shown when the camera is unavailable.
    pub switch_device_url: Option<String>,
    /// The session URL works only in the browser that first opened it.
    pub restrict_url_sharing: bool,
    /// Offer to continue on another device.
    pub optional_continue_on_another_device: bool,
    /// Video calls may have several participants.
    pub multiple_participants: bool,
    /// Require 1920×1080 or better for document and face captures.
    #[serde(rename = "requireHdMedia")]
    pub require_hd_media: bool,
}
