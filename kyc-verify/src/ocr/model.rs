//! One ONNX model run with tract, optimised once per concrete input shape:
//! PP-OCR's graphs have dynamic sizes, and tract runs fastest on a plan built
//! for fixed dimensions, so plans are cached by shape (callers keep the number
//! of shapes small by padding to buckets).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use image::RgbImage;
use tract_onnx::prelude::*;

use super::OcrError;

type Plan = Arc<TypedRunnableModel>;

/// Most plans kept at once; the oldest shapes are dropped beyond this.
const MAX_PLANS: usize = 16;

pub(crate) struct OnnxModel {
    path: PathBuf,
    graph: InferenceModel,
    plans: Mutex<HashMap<[usize; 4], Plan>>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl OnnxModel {
    pub(crate) fn load(path: &Path) -> Result<Self, OcrError> {
        if !path.is_file() {
            return Err(OcrError::Model {
                path: path.to_path_buf(),
                message: "no such file; run `cargo xtask models`".into(),
            });
        }
        let graph = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|err| OcrError::Model {
                path: path.to_path_buf(),
                message: format!("{err:#}"),
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            graph,
            plans: Mutex::new(HashMap::new()),
        })
    }

    fn plan(&self, shape: [usize; 4]) -> Result<Plan, OcrError> {
        let mut plans = self
            .plans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(plan) = plans.get(&shape) {
            return Ok(plan.clone());
        }
        let plan = self
            .graph
            .clone()
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|model| model.into_optimized())
            .and_then(|model| model.into_runnable())
            .map_err(|err| OcrError::Model {
                path: self.path.clone(),
                message: format!("cannot plan for input {shape:?}: {err:#}"),
            })?;
        if plans.len() >= MAX_PLANS {
            plans.clear();
        }
        plans.insert(shape, plan.clone());
        Ok(plan)
    }

    /// Runs the model on one NCHW input and returns its first output, flat.
    pub(crate) fn run(&self, input: Vec<f32>, shape: [usize; 4]) -> Result<Vec<f32>, OcrError> {
        let plan = self.plan(shape)?;
        let tensor = Tensor::from_shape(&shape, &input).map_err(inference)?;
        let outputs = plan.run(tvec!(tensor.into())).map_err(inference)?;
        let first = outputs
            .first()
            .ok_or_else(|| OcrError::Inference("the model gave no output".into()))?;
        let view = first.to_plain_array_view::<f32>().map_err(inference)?;
        Ok(view.iter().copied().collect())
    }
}

fn inference(err: TractError) -> OcrError {
    OcrError::Inference(format!("{err:#}"))
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
