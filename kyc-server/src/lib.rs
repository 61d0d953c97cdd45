//! kyc-server: the HTTP face of the platform. Handlers translate between HTTP
//! and `kyc_core`; they hold no business rules of their own.

pub mod app;
pub mod blobs;
pub mod config;
pub mod error;
mod integrator;
mod openapi;
mod staff;
mod startup;
pub mod verification;
mod views;
mod widget;

pub use app::{AppState, ROUTES, router};
pub use startup::{Server, start};
