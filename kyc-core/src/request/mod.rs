//! Validation of session requests at the edge.
//!
//! The three encodings `POST /begin/` accepts (query string, form, JSON body)
//! are first brought to one JSON object ([`fields_from_pairs`] for the two
//! text encodings), then [`validate_begin`] walks it once, collecting every
//! problem with the JSON path where it was found, and builds a
//! [`SessionSpec`](crate::domain::SessionSpec) that cannot hold an invalid value.

mod begin;
mod problems;
mod questions;
mod steps;
mod walker;

pub use begin::{BEGIN_FIELDS, Validated, fields_from_pairs, validate_begin};
pub use problems::{Problem, Rejected};
pub use walker::type_name as json_type_name;
