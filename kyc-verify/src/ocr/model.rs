//! One ONNX model run with tract, optimised once per concrete input shape:
//! PP-OCR's graphs have dynamic sizes, and tract runs fastest on a plan built
//! for fixed dimensions, so plans are cached by shape (callers keep the number
//! of shapes small by padding to buckets). The caching itself is
//! [`crate::runtime::OnnxModel`]'s; this wrapper speaks [`OcrError`].

use std::path::Path;

use image::RgbImage;

use super::OcrError;
use crate::runtime::{self, ModelError};

#[derive(Debug)]
pub(crate) struct OnnxModel(runtime::OnnxModel);

impl From<ModelError> for OcrError {
    fn from(err: ModelError) -> Self {
        match err {
            ModelError::Load { path, message } => OcrError::Model { path, message },
            ModelError::Inference { message, .. } => OcrError::Inference(message),
        }
    }
}

impl OnnxModel {
    pub(crate) fn load(path: &Path) -> Result<Self, OcrError> {
        Ok(Self(runtime::OnnxModel::load(path)?))
    }

    /// Runs the model on one NCHW input and returns its first output, flat.
    pub(crate) fn run(&self, input: Vec<f32>, shape: [usize; 4]) -> Result<Vec<f32>, OcrError> {
        let outputs = self.0.run(&shape, input)?;
        let first = outputs
            .first()
            .ok_or_else(|| OcrError::Inference("the model gave no output".into()))?;
        Ok(runtime::output_slice(first)
            .map_err(OcrError::Inference)?
            .to_vec())
    }
}

/// `image` as PP-OCR's input: NCHW, channels B, G, R, each (v/255 − 0.5)/0.5,
/// right-padded with 0 up to `width` columns.
pub(crate) fn bgr_tensor(image: &RgbImage, width: usize) -> Result<Vec<f32>, OcrError> {
    bgr_tensor_padded(image, width, image.height() as usize)
}

/// As [`bgr_tensor`], padded with 0 on the right up to `width` and at the bottom up to `height`.
pub(crate) fn bgr_tensor_padded(
    image: &RgbImage,
    width: usize,
    height: usize,
) -> Result<Vec<f32>, OcrError> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if w > width || h > height {
        return Err(OcrError::Inference(format!(
            "image of {w}x{h} does not fit an input of {width}x{height}"
        )));
    }
    let plane = width * height;
    let mut out = vec![0.0f32; 3 * plane];
    for (x, y, pixel) in image.enumerate_pixels() {
        let at = y as usize * width + x as usize;
        for (channel, rgb_index) in [2usize, 1, 0].into_iter().enumerate() {
            out[channel * plane + at] = (pixel.0[rgb_index] as f32 / 255.0 - 0.5) / 0.5;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgr_tensor_orders_channels_and_pads() {
        let image = RgbImage::from_fn(2, 1, |x, _| {
            if x == 0 {
                image::Rgb([255, 0, 51])
            } else {
                image::Rgb([0, 255, 0])
            }
        });
        let t = bgr_tensor(&image, 3).unwrap();
        // B plane, G plane, R plane, each 3 wide.
        assert_eq!(t.len(), 9);
        assert!((t[0] - (51.0 / 127.5 - 1.0)).abs() < 1e-6);
        assert_eq!(&t[1..3], &[-1.0, 0.0]);
        assert_eq!(&t[3..6], &[-1.0, 1.0, 0.0]);
        assert_eq!(&t[6..9], &[1.0, -1.0, 0.0]);
        assert!(bgr_tensor(&image, 1).is_err());
        let padded = bgr_tensor_padded(&image, 2, 2).unwrap();
        assert_eq!(padded.len(), 12);
        assert_eq!(&padded[2..4], &[0.0, 0.0]);
    }
}
