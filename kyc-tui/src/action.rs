//! Every intent the console acts on: what a person asked for with a key, and
//! what the server answered. The app changes state only in answer to one of these.

use kyc_core::api::{Health, SessionSummary, StaffAccount, StaffSession};
use kyc_core::domain::SessionStatus;

/// A failed call to the server, already put in plain words for the footer.
pub type Outcome<T> = Result<T, String>;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    SelectPrevious,
    SelectNext,
    /// Ask the server again for everything on screen.
    Refresh,
    /// Next status in the filter: all, created, in_progress, …, cancelled, all.
    CycleStatusFilter,
    /// Show the flow of the selected session.
    OpenDetail,
    CloseDetail,
    /// The terminal changed size; nothing to do but draw again.
    Redraw,
    HealthChecked(Outcome<Health>),
    SignedIn(Outcome<StaffAccount>),
    /// A listing, with the filter it was asked for, so a late answer for an
    /// older filter can be told apart and dropped.
    SessionsListed {
        filter: Option<SessionStatus>,
        outcome: Outcome<Vec<SessionSummary>>,
    },
    SessionLoaded {
        id: String,
        outcome: Outcome<Box<StaffSession>>,
    },
}
