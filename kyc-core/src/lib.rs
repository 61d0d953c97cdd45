//! The core of the KYC platform: the domain (sessions, flags, steps,
//! questionnaires), validation of integrator requests, the session flow,
//! credentials, storage and the wire types shared by the server and its clients.
//!
//! Nothing here knows about HTTP or terminals; the transport crates translate.

pub mod answers;
pub mod api;
pub mod auth;
pub mod clock;
pub mod domain;
pub mod flow;
pub mod i18n;
pub mod request;
pub mod store;
