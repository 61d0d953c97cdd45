//! Verification pipelines: what turns captures into a verdict. So far the
//! ICAO 9303 machine-readable-zone parser; image intake, OCR, face and
//! liveness models come next (issue 3).

pub mod mrz;
