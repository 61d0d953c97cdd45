//! Face detection with CenterFace (`centerface.onnx`): boxes, scores and five
//! landmarks (eyes, nose tip, mouth corners) in the original image's pixels.
//!
//! The network is fully convolutional and its ONNX file has a symbolic input
//! (N×3×H×W, H and W multiples of 32). tract optimises a plan for one concrete
//! shape, so the detector scales every image so its long side is
//! [`DetectorConfig::long_side`] pixels, pads the short side up to a multiple
//! of 32, and keeps a small cache of plans keyed by that padded shape (a
//! 16:9 and a 4:3 frame in either orientation already cover most captures).

use std::path::Path;

use image::RgbImage;
use tract_onnx::prelude::*;

use super::FaceError;
use crate::runtime::{ModelError, OnnxModel};

fn check_long_side(long_side: u32) -> Result<(), FaceError> {
    if (32..=4096).contains(&long_side) {
        Ok(())
    } else {
        Err(FaceError::Config(format!(
            "detector long side {long_side} is outside 32..=4096"
        )))
    }
}

impl From<ModelError> for FaceError {
    fn from(err: ModelError) -> Self {
        match err {
            ModelError::Load { path, message } => FaceError::Model { path, message },
            ModelError::Inference { message, .. } => FaceError::Inference(message),
        }
    }
}

/// How the detector scales its input and which peaks it keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// The image is scaled (up or down) so its long side is this many pixels.
    pub long_side: u32,
    /// Lowest heatmap peak kept as a face, 0..1.
    pub min_score: f32,
    /// Two boxes overlapping more than this (intersection over union) are one face.
    pub nms_iou: f32,
}

impl DetectorConfig {
    /// The default long side, 640. CenterFace's cost grows with the pixel
    /// count (480 would cost 56 % of it), but the face match needs the
    /// landmark precision: measured 2026-11-24 with `cargo xtask eval faces`,
    /// detection itself holds at smaller sides (all 24 faces of the 8 photos
    /// at every side from 640 down to 320, no LFW non-face; LFW faces 95/100
    /// at 640, 98 at 512 and 480, 96–97 at 448–384, 100 at 320), but at 480
    /// the highest impostor similarity rose from 0.669 to 0.718, over the 0.70
    /// threshold (one false match in 32 pairs). Where only finding the face
    /// matters (liveness frames), [`FaceDetector::detect_at`] takes a smaller
    /// side.
    pub const DEFAULT_LONG_SIDE: u32 = 640;
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            long_side: Self::DEFAULT_LONG_SIDE,
            min_score: 0.5,
            nms_iou: 0.3,
        }
    }
}

/// A point in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// An axis-aligned box in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FaceBox {
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
}

impl FaceBox {
    pub fn width(&self) -> f32 {
        (self.right - self.left).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.bottom - self.top).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Intersection over union, 0 when the boxes do not touch.
    pub fn iou(&self, other: &FaceBox) -> f32 {
        let w = (self.right.min(other.right) - self.left.max(other.left)).max(0.0);
        let h = (self.bottom.min(other.bottom) - self.top.max(other.top)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// One detected face.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DetectedFace {
    pub bbox: FaceBox,
    /// Heatmap peak, 0..1.
    pub score: f32,
    /// Left eye, right eye (as seen in the image: smaller x first), nose tip,
    /// left and right mouth corner.
    pub landmarks: [Point; 5],
}

/// CenterFace loaded once; plans per input shape are built on first use and
/// cached by [`crate::runtime::OnnxModel`].
pub struct FaceDetector {
    model: OnnxModel,
    config: DetectorConfig,
}

impl FaceDetector {
    /// Reads `centerface.onnx`.
    pub fn load(path: &Path, config: DetectorConfig) -> Result<Self, FaceError> {
        check_long_side(config.long_side)?;
        let model = OnnxModel::load(path)?;
        Ok(Self { model, config })
    }

    pub fn config(&self) -> DetectorConfig {
        self.config
    }

    /// Every face above the score threshold, best first.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<DetectedFace>, FaceError> {
        self.detect_at(image, self.config.long_side)
    }

    /// As [`FaceDetector::detect`], with the image scaled to `long_side`
    /// instead of the configured side: a caller that knows the face is large
    /// (a selfie video frame) can look at fewer pixels.
    pub fn detect_at(
        &self,
        image: &RgbImage,
        long_side: u32,
    ) -> Result<Vec<DetectedFace>, FaceError> {
        check_long_side(long_side)?;
        let (w0, h0) = image.dimensions();
        if w0 == 0 || h0 == 0 {
            return Ok(Vec::new());
        }
        let scale = long_side as f32 / w0.max(h0) as f32;
        let w = ((w0 as f32 * scale).round() as u32).max(1);
        let h = ((h0 as f32 * scale).round() as u32).max(1);
        let resized = crate::resize::resize_rgb(image, w, h);
        let pw = (w as usize).div_ceil(32) * 32;
        let ph = (h as usize).div_ceil(32) * 32;
        let input = bgr_planes(&resized, pw, ph);
        let outputs = self.model.run(&[1, 3, ph, pw], input)?;
        let maps = HeadMaps::from_outputs(&outputs, ph / 4, pw / 4)?;
        let candidates = maps.decode(self.config.min_score);
        let mut faces = non_maximum_suppression(candidates, self.config.nms_iou);
        let (sx, sy) = (w0 as f32 / w as f32, h0 as f32 / h as f32);
        for face in &mut faces {
            face.bbox = FaceBox {
                left: (face.bbox.left * sx).clamp(0.0, w0 as f32),
                top: (face.bbox.top * sy).clamp(0.0, h0 as f32),
                right: (face.bbox.right * sx).clamp(0.0, w0 as f32),
                bottom: (face.bbox.bottom * sy).clamp(0.0, h0 as f32),
            };
            for p in &mut face.landmarks {
                p.x *= sx;
                p.y *= sy;
            }
        }
        Ok(faces)
    }
}

/// CenterFace's input: planes B, G, R of 0..255 (no mean, no scale), the
/// image in the top-left corner of a `width`×`height` zero canvas.
fn bgr_planes(image: &RgbImage, width: usize, height: usize) -> Vec<f32> {
    let plane = width * height;
    let mut input = vec![0f32; 3 * plane];
    let w = image.width() as usize;
    if w == 0 {
        return input;
    }
    for (y, row) in image.as_raw().chunks_exact(3 * w).enumerate().take(height) {
        let at = y * width;
        for (x, px) in row.chunks_exact(3).enumerate().take(width) {
            input[at + x] = f32::from(px[2]);
            input[plane + at + x] = f32::from(px[1]);
            input[2 * plane + at + x] = f32::from(px[0]);
        }
    }
    input
}

/// The four output maps, each channel-major at ¼ of the input resolution.
struct HeadMaps<'a> {
    heat: &'a [f32],
    scale: &'a [f32],
    offset: &'a [f32],
    landmarks: &'a [f32],
    rows: usize,
    cols: usize,
}

impl<'a> HeadMaps<'a> {
    fn from_outputs(outputs: &'a [TValue], rows: usize, cols: usize) -> Result<Self, FaceError> {
        let slice = |i: usize, channels: usize| -> Result<&'a [f32], FaceError> {
            let t = outputs
                .get(i)
                .ok_or_else(|| FaceError::Inference(format!("centerface output {i} missing")))?;
            let s = t
                .try_as_plain_ram()
                .and_then(|v| v.as_slice::<f32>())
                .map_err(|e| FaceError::Inference(e.to_string()))?;
            if s.len() != channels * rows * cols {
                return Err(FaceError::Inference(format!(
                    "centerface output {i} has {} values, expected {channels}×{rows}×{cols}",
                    s.len()
                )));
            }
            Ok(s)
        };
        Ok(Self {
            heat: slice(0, 1)?,
            scale: slice(1, 2)?,
            offset: slice(2, 2)?,
            landmarks: slice(3, 10)?,
            rows,
            cols,
        })
    }

    /// Every cell whose heat reaches `min_score`, decoded into input pixels.
    fn decode(&self, min_score: f32) -> Vec<DetectedFace> {
        let plane = self.rows * self.cols;
        let mut faces = Vec::new();
        for r in 0..self.rows {
            for c in 0..self.cols {
                let i = r * self.cols + c;
                let score = self.heat[i];
                if score < min_score {
                    continue;
                }
                let height = self.scale[i].exp() * 4.0;
                let width = self.scale[plane + i].exp() * 4.0;
                let cy = (r as f32 + self.offset[i] + 0.5) * 4.0;
                let cx = (c as f32 + self.offset[plane + i] + 0.5) * 4.0;
                let top = cy - height / 2.0;
                let left = cx - width / 2.0;
                let mut landmarks = [Point { x: 0.0, y: 0.0 }; 5];
                for (j, p) in landmarks.iter_mut().enumerate() {
                    p.y = top + self.landmarks[2 * j * plane + i] * height;
                    p.x = left + self.landmarks[(2 * j + 1) * plane + i] * width;
                }
                faces.push(DetectedFace {
                    bbox: FaceBox {
                        left,
                        top,
                        right: left + width,
                        bottom: top + height,
                    },
                    score,
                    landmarks,
                });
            }
        }
        faces
    }
}

/// Greedy non-maximum suppression: best score first, dropping every box that
/// overlaps a kept one by more than `max_iou`.
pub fn non_maximum_suppression(mut faces: Vec<DetectedFace>, max_iou: f32) -> Vec<DetectedFace> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<DetectedFace> = Vec::new();
    for face in faces {
        if kept.iter().all(|k| k.bbox.iou(&face.bbox) <= max_iou) {
            kept.push(face);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(left: f32, top: f32, size: f32, score: f32) -> DetectedFace {
        DetectedFace {
            bbox: FaceBox {
                left,
                top,
                right: left + size,
                bottom: top + size,
            },
            score,
            landmarks: [Point { x: 0.0, y: 0.0 }; 5],
        }
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = face(0.0, 0.0, 10.0, 1.0).bbox;
        let b = face(5.0, 0.0, 10.0, 1.0).bbox;
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&face(20.0, 20.0, 5.0, 1.0).bbox), 0.0);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_all_of_separate() {
        let faces = vec![
            face(0.0, 0.0, 10.0, 0.6),
            face(1.0, 1.0, 10.0, 0.9),
            face(100.0, 100.0, 10.0, 0.7),
            face(2.0, 0.0, 10.0, 0.8),
        ];
        let kept = non_maximum_suppression(faces, 0.3);
        let scores: Vec<f32> = kept.iter().map(|f| f.score).collect();
        assert_eq!(scores, vec![0.9, 0.7]);
    }

    #[test]
    fn decode_places_box_and_landmarks() {
        // One 2×3 grid, a single hot cell at row 1, column 2.
        let (rows, cols) = (2, 3);
        let plane = rows * cols;
        let i = cols + 2;
        let mut heat = vec![0.0; plane];
        heat[i] = 0.9;
        let mut scale = vec![0.0; 2 * plane];
        scale[i] = (20.0f32 / 4.0).ln(); // height 20
        scale[plane + i] = (16.0f32 / 4.0).ln(); // width 16
        let mut offset = vec![0.0; 2 * plane];
        offset[i] = 0.25;
        offset[plane + i] = -0.5;
        let mut landmarks = vec![0.0; 10 * plane];
        landmarks[i] = 0.5; // first point, y: half the height down
        landmarks[plane + i] = 0.25; // first point, x: a quarter across
        let maps = HeadMaps {
            heat: &heat,
            scale: &scale,
            offset: &offset,
            landmarks: &landmarks,
            rows,
            cols,
        };
        let faces = maps.decode(0.5);
        assert_eq!(faces.len(), 1);
        let f = &faces[0];
        // centre y = (1 + 0.25 + 0.5) * 4 = 7, x = (2 - 0.5 + 0.5) * 4 = 8
        assert!((f.bbox.top - (7.0 - 10.0)).abs() < 1e-4);
        assert!((f.bbox.left - (8.0 - 8.0)).abs() < 1e-4);
        assert!((f.bbox.height() - 20.0).abs() < 1e-3);
        assert!((f.bbox.width() - 16.0).abs() < 1e-3);
        assert!((f.landmarks[0].y - (-3.0 + 10.0)).abs() < 1e-3);
        assert!((f.landmarks[0].x - 4.0).abs() < 1e-3);
    }
}
