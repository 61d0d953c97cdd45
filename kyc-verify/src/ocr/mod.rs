//! Optical character recognition with PaddleOCR's PP-OCRv4 models (Apache-2.0,
//! shipped by `rapidocr-onnxruntime`, fetched by `cargo xtask models`), run on
//! the CPU with tract: a detector finds text lines as rotated boxes, a
//! recogniser reads each line. The document pipeline uses it to read the MRZ.
//!
//! Both models take BGR, (v/255 − 0.5)/0.5, NCHW (`models/MANIFEST.toml`).

mod det;
mod geometry;
mod model;
mod rec;

use std::path::{Path, PathBuf};

pub use det::{Detector, DetectorOptions, boxes_from_map, network_size, regions};
pub use geometry::{TextBox, crop_to_size, crop_upright, sample_bilinear};
pub use rec::{
    Aligned, Decoded, Dictionary, FoldedSteps, LINE_HEIGHT, LineText, MAX_WIDTH, MIN_WIDTH,
    Recognizer, WIDTH_BUCKET, bucket_width, ctc_constrained_decode, ctc_greedy_decode,
};

/// File names in the model directory (`cargo xtask models` puts them there).
pub const DETECTOR_FILE: &str = "ppocr-v4-det.onnx";
pub const RECOGNIZER_FILE: &str = "ppocr-v4-rec.onnx";
pub const KEYS_FILE: &str = "ppocr-v4-rec-keys.txt";

/// The longer side of a document photo as the detector sees it. The
/// detector only has to find the MRZ's lines, whose characters stay about
/// 10 pixels high at this size for a document filling most of the photo,
/// and its cost grows with the pixel count (960 took 280 ms on two cores,
/// most of a document's reading time).
pub const DOCUMENT_MAX_SIDE: u32 = 640;

/// Why OCR could not run.
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    #[error("model file {}: {message}", path.display())]
    Model { path: PathBuf, message: String },
    #[error("inference failed: {0}")]
    Inference(String),
}

/// The detector and the recogniser together.
#[derive(Debug)]
pub struct Ocr {
    pub detector: Detector,
    pub recognizer: Recognizer,
}

impl Ocr {
    /// Loads both models and the dictionary from a model directory.
    pub fn load(model_dir: &Path) -> Result<Self, OcrError> {
        Ok(Self {
            detector: Detector::load(
                &model_dir.join(DETECTOR_FILE),
                DetectorOptions {
                    max_side: DOCUMENT_MAX_SIDE,
                    ..DetectorOptions::default()
                },
            )?,
            recognizer: Recognizer::load(
                &model_dir.join(RECOGNIZER_FILE),
                &model_dir.join(KEYS_FILE),
            )?,
        })
    }
}

#[cfg(test)]
mod model_tests;
