//! Passive liveness: no request to the person, only a short capture (about
//! two seconds, some ten frames). Two kinds of evidence:
//!
//! - **Presentation-attack models** ([`SpoofModels`]) on a square crop around
//!   the face in every frame: `liveness.onnx` (the decision) and
//!   `antispoof.onnx` (reported, not decided on; see [`SpoofScores`]).
//! - **Consistency of the capture** (pure functions on what the models saw):
//!   exactly one face in every frame ([`faces_check`]), the same person
//!   throughout ([`identity_check`]), some natural movement — a still image
//!   replayed as frames does not move at all ([`motion_check`]) — and no
//!   jumps, as when frames of different captures are spliced
//!   ([`continuity_check`]).

use std::path::Path;
use std::sync::Arc;

use image::RgbImage;
use serde::Serialize;
use tract_onnx::prelude::*;

use crate::face::FaceError;
use crate::face::align::sample_bilinear;
use crate::face::detect::{DetectedFace, FaceBox};
use crate::face::embed::Descriptor;
use crate::reason::{Check, Reason};

/// File names inside the model directory.
pub const ANTISPOOF_FILE: &str = "antispoof.onnx";
pub const LIVENESS_FILE: &str = "liveness.onnx";

const ANTISPOOF_SIZE: u32 = 128;
const LIVENESS_SIZE: u32 = 32;

/// What the two presentation-attack models say about one face crop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpoofScores {
    /// `liveness.onnx`'s probability of its first class subtracted from one:
    /// the model's softmax is [live, spoof] in practice (the Human library
    /// reads the first value as "live"). Rises on printed and screen
    /// re-captures of the same photo (the calibration in
    /// [`super::LivenessConfig::DEFAULT_SPOOF_THRESHOLD`]). The decision
    /// uses this one.
    pub spoof: f32,
    /// `antispoof.onnx`'s single sigmoid, which Human reads as a "real"
    /// score. Reported for staff and later calibration, with weight zero in
    /// the decision: in the calibration it fell for printed copies in 3 of 6
    /// photos and rose for screen replays in 3 of 5 — no better than a coin
    /// on these spoofs, while its genuine scores spread over 0.31–0.80.
    pub antispoof: f32,
}

/// Both models, optimised once for a batch of one.
pub struct SpoofModels {
    antispoof: Arc<TypedRunnableModel>,
    liveness: Arc<TypedRunnableModel>,
}

impl SpoofModels {
    /// Loads `antispoof.onnx` and `liveness.onnx` from `model_dir`.
    pub fn load(model_dir: &Path) -> Result<Self, FaceError> {
        Ok(Self {
            antispoof: plan(&model_dir.join(ANTISPOOF_FILE), ANTISPOOF_SIZE)?,
            liveness: plan(&model_dir.join(LIVENESS_FILE), LIVENESS_SIZE)?,
        })
    }

    /// Scores the square crop `margin` × the box's longer side around the
    /// box's centre.
    pub fn score(
        &self,
        image: &RgbImage,
        bbox: &FaceBox,
        margin: f32,
    ) -> Result<SpoofScores, FaceError> {
        let antispoof = run(
            &self.antispoof,
            &crop_input(image, bbox, margin, ANTISPOOF_SIZE),
            ANTISPOOF_SIZE,
        )?;
        let liveness = run(
            &self.liveness,
            &crop_input(image, bbox, margin, LIVENESS_SIZE),
            LIVENESS_SIZE,
        )?;
        let (Some(&antispoof), Some(&live)) = (antispoof.first(), liveness.first()) else {
            return Err(FaceError::Inference(
                "a presentation-attack model gave no output".into(),
            ));
        };
        Ok(SpoofScores {
            spoof: (1.0 - live).clamp(0.0, 1.0),
            antispoof,
        })
    }
}

fn plan(path: &Path, size: u32) -> Result<Arc<TypedRunnableModel>, FaceError> {
    let size = size as usize;
    tract_onnx::onnx()
        .model_for_path(path)
        .and_then(|m| m.with_input_fact(0, f32::fact([1, size, size, 3]).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| FaceError::Model {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

fn run(plan: &Arc<TypedRunnableModel>, input: &[f32], size: u32) -> Result<Vec<f32>, FaceError> {
    let size = size as usize;
    let tensor = Tensor::from_shape(&[1, size, size, 3], input)
        .map_err(|e| FaceError::Inference(e.to_string()))?;
    let outputs = plan
        .run(tvec!(tensor.into()))
        .map_err(|e| FaceError::Inference(e.to_string()))?;
    let first = outputs
        .first()
        .ok_or_else(|| FaceError::Inference("model gave no output".into()))?;
    Ok(first
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>())
        .map_err(|e| FaceError::Inference(e.to_string()))?
        .to_vec())
}

/// The square crop the presentation-attack models see, as NHWC RGB 0..1.
///
/// The crop is `margin` × the box's longer side, centred on CenterFace's box
/// (which runs from the hairline to the chin): at 1.3 it holds the whole
/// head and a little background, as Human's crop (the face-mesh box enlarged
/// 1.5×) roughly does. In a first probe (onnxruntime, margins 1.1–1.4, seven
/// photos) a printed copy raised `liveness.onnx`'s spoof score above its
/// photo's for every photo at 1.3 and 1.4 but not at 1.1–1.2; 1.3 was kept,
/// and the calibration at 1.3 confirms it (printed 6/6, screen 5/5). Pixels are sampled bilinearly straight from the full frame at the
/// output grid, without smoothing first, like Human's `resizeBilinear`: the
/// fine texture of a print or a screen (half-tones, moiré) is what the
/// models look for, and a smoothing filter would wipe it out. Outside the
/// frame is black.
pub fn crop_input(image: &RgbImage, bbox: &FaceBox, margin: f32, size: u32) -> Vec<f32> {
    let side = bbox.width().max(bbox.height()) * margin;
    let left = (bbox.left + bbox.right) / 2.0 - side / 2.0;
    let top = (bbox.top + bbox.bottom) / 2.0 - side / 2.0;
    let step = side / size as f32;
    let mut input = Vec::with_capacity((size * size * 3) as usize);
    for v in 0..size {
        for u in 0..size {
            let x = left + (u as f32 + 0.5) * step - 0.5;
            let y = top + (v as f32 + 0.5) * step - 0.5;
            let px = sample_bilinear(image, x, y);
            input.extend(px.0.map(|c| f32::from(c) / 255.0));
        }
    }
    input
}

/// What one frame showed.
#[derive(Debug, Clone, Serialize)]
pub struct FrameObservation {
    /// Faces of comparable size (at least [`super::LivenessConfig::second_face_area`]
    /// of the largest one's area).
    pub faces: usize,
    /// The largest face.
    pub face: Option<DetectedFace>,
    /// Head pose from the largest face's landmarks.
    pub pose: Option<super::HeadPose>,
    /// Presentation-attack scores of the largest face (passive only).
    pub spoof: Option<SpoofScores>,
    /// Descriptor of the largest face, for frames picked for the identity check.
    #[serde(skip)]
    pub descriptor: Option<Descriptor>,
}

impl FrameObservation {
    /// The face when the frame holds exactly one.
    pub fn single_face(&self) -> Option<&DetectedFace> {
        if self.faces == 1 {
            self.face.as_ref()
        } else {
            None
        }
    }
}

/// Check names.
pub const FACES_CHECK: &str = "liveness_faces";
pub const IDENTITY_CHECK: &str = "liveness_identity";
pub const MOTION_CHECK: &str = "liveness_motion";
pub const CONTINUITY_CHECK: &str = "liveness_continuity";
pub const SPOOF_CHECK: &str = "liveness_spoof";

fn check(name: &str, passed: bool, score: f32, threshold: f32, reason: Reason) -> Check {
    let round = |v: f32| (f64::from(v) * 10_000.0).round() / 10_000.0;
    Check {
        name: name.into(),
        passed,
        score: round(score),
        threshold: round(threshold),
        reason: (!passed).then_some(reason),
    }
}

/// Exactly one face in every frame. Score: the share of frames that have
/// one; 1.0 passes. Fails with [`Reason::NoFace`] when a frame has none (or
/// there are no frames), otherwise [`Reason::SeveralFaces`].
pub fn faces_check(frames: &[FrameObservation]) -> Check {
    let single = frames.iter().filter(|f| f.faces == 1).count();
    let score = if frames.is_empty() {
        0.0
    } else {
        single as f32 / frames.len() as f32
    };
    let reason = if frames.is_empty() || frames.iter().any(|f| f.faces == 0) {
        Reason::NoFace
    } else {
        Reason::SeveralFaces
    };
    check(FACES_CHECK, score >= 1.0, score, 1.0, reason)
}

/// The same person in every described frame: the lowest cosine similarity
/// between any two descriptors, held to the face-match threshold (the same
/// bar as selfie against document). Fewer than two descriptors fail: there
/// is nothing to compare. Fails with [`Reason::FaceMismatch`].
pub fn identity_check(frames: &[FrameObservation], threshold: f32) -> Check {
    let descriptors: Vec<&Descriptor> = frames
        .iter()
        .filter(|f| f.faces == 1)
        .filter_map(|f| f.descriptor.as_ref())
        .collect();
    let mut lowest = if descriptors.len() < 2 {
        0.0
    } else {
        f32::INFINITY
    };
    for (i, a) in descriptors.iter().enumerate() {
        for b in &descriptors[i + 1..] {
            lowest = lowest.min(a.cosine(b));
        }
    }
    check(
        IDENTITY_CHECK,
        lowest >= threshold,
        lowest,
        threshold,
        Reason::FaceMismatch,
    )
}

/// How far the landmarks of `b` lie from those of `a`: the mean distance of
/// the five points, in inter-eye distances (the mean of both faces').
pub fn landmark_shift(a: &DetectedFace, b: &DetectedFace) -> f32 {
    let eye_distance = |f: &DetectedFace| {
        let [l, r, ..] = f.landmarks;
        ((r.x - l.x).powi(2) + (r.y - l.y).powi(2)).sqrt()
    };
    let scale = (eye_distance(a) + eye_distance(b)) / 2.0;
    if scale <= f32::EPSILON {
        return 0.0;
    }
    let total: f32 = a
        .landmarks
        .iter()
        .zip(&b.landmarks)
        .map(|(p, q)| ((p.x - q.x).powi(2) + (p.y - q.y).powi(2)).sqrt())
        .sum();
    total / 5.0 / scale
}

/// Natural movement: the largest [`landmark_shift`] between any two frames
/// with one face must reach `min_motion`. A still picture sent as ten
/// frames gives exactly zero (the detector is deterministic), the same
/// picture re-encoded a few thousandths; a person holding as still as they
/// can for two seconds still sways and breathes by a few hundredths.
/// Fails with [`Reason::SpoofSuspected`].
pub fn motion_check(frames: &[FrameObservation], min_motion: f32) -> Check {
    let faces: Vec<&DetectedFace> = frames.iter().filter_map(|f| f.single_face()).collect();
    let mut largest = 0.0f32;
    for (i, a) in faces.iter().enumerate() {
        for b in &faces[i + 1..] {
            largest = largest.max(landmark_shift(a, b));
        }
    }
    check(
        MOTION_CHECK,
        largest >= min_motion,
        largest,
        min_motion,
        Reason::SpoofSuspected,
    )
}

/// No jumps: the largest [`landmark_shift`] between consecutive frames with
/// one face must stay at or below `max_step`. Frames of two captures spliced
/// together, or a face swapped in, jump; a head moving naturally over the
/// ~200 ms between frames does not move half its eye distance. Fails with
/// [`Reason::SpoofSuspected`].
pub fn continuity_check(frames: &[FrameObservation], max_step: f32) -> Check {
    let faces: Vec<&DetectedFace> = frames.iter().filter_map(|f| f.single_face()).collect();
    let largest = faces
        .windows(2)
        .map(|w| landmark_shift(w[0], w[1]))
        .fold(0.0f32, f32::max);
    check(
        CONTINUITY_CHECK,
        largest <= max_step,
        largest,
        max_step,
        Reason::SpoofSuspected,
    )
}

/// The capture's spoof score: the median over frames of [`SpoofScores::spoof`]
/// (one odd frame — motion blur, a hand — does not decide), held to
/// `threshold`; passes at or below. No scored frame fails with the score 1.
/// Fails with [`Reason::SpoofSuspected`].
pub fn spoof_check(frames: &[FrameObservation], threshold: f32) -> Check {
    let mut scores: Vec<f32> = frames
        .iter()
        .filter(|f| f.faces == 1)
        .filter_map(|f| f.spoof.map(|s| s.spoof))
        .collect();
    let score = median(&mut scores).unwrap_or(1.0);
    check(
        SPOOF_CHECK,
        score <= threshold,
        score,
        threshold,
        Reason::SpoofSuspected,
    )
}

/// The median (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &mut [f32]) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f32::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// Which of `n` frames to describe for the identity check: `k` spread evenly
/// from the first to the last (all of them when `k >= n`).
pub fn identity_frames(n: usize, k: usize) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    match k {
        0 => Vec::new(),
        1 => vec![0],
        _ => {
            let mut picked: Vec<usize> = (0..k)
                .map(|i| ((i * (n - 1)) as f32 / (k - 1) as f32).round() as usize)
                .collect();
            picked.dedup();
            picked
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::detect::Point;

    fn face_at(x: f32, y: f32) -> DetectedFace {
        let p = |dx: f32, dy: f32| Point {
            x: x + dx,
            y: y + dy,
        };
        DetectedFace {
            bbox: FaceBox {
                left: x - 60.0,
                top: y - 70.0,
                right: x + 60.0,
                bottom: y + 90.0,
            },
            score: 0.9,
            landmarks: [
                p(-30.0, 0.0),
                p(30.0, 0.0),
                p(0.0, 35.0),
                p(-25.0, 65.0),
                p(25.0, 65.0),
            ],
        }
    }

    fn frame(faces: usize, at: Option<(f32, f32)>) -> FrameObservation {
        FrameObservation {
            faces,
            face: at.map(|(x, y)| face_at(x, y)),
            pose: None,
            spoof: None,
            descriptor: None,
        }
    }

    #[test]
    fn every_frame_needs_exactly_one_face() {
        let good: Vec<_> = (0..5).map(|_| frame(1, Some((100.0, 100.0)))).collect();
        assert!(faces_check(&good).passed);
        let mut none = good.clone();
        none[2] = frame(0, None);
        let c = faces_check(&none);
        assert!(!c.passed && c.reason == Some(Reason::NoFace));
        assert!((c.score - 0.8).abs() < 1e-9);
        let mut two = good.clone();
        two[4] = frame(2, Some((100.0, 100.0)));
        assert_eq!(faces_check(&two).reason, Some(Reason::SeveralFaces));
        assert_eq!(faces_check(&[]).reason, Some(Reason::NoFace));
    }

    #[test]
    fn a_still_capture_does_not_move_and_a_natural_one_does() {
        let still: Vec<_> = (0..10).map(|_| frame(1, Some((200.0, 200.0)))).collect();
        let c = motion_check(&still, 0.02);
        assert!(!c.passed && c.score == 0.0 && c.reason == Some(Reason::SpoofSuspected));
        // Swaying by a couple of pixels with a 60-pixel eye distance.
        let sway: Vec<_> = (0..10)
            .map(|i| frame(1, Some((200.0 + (i as f32 * 0.7).sin() * 2.0, 200.0))))
            .collect();
        assert!(motion_check(&sway, 0.02).passed);
        assert!(continuity_check(&sway, 0.5).passed);
    }

    #[test]
    fn a_jump_between_frames_breaks_continuity() {
        let mut frames: Vec<_> = (0..6)
            .map(|i| frame(1, Some((200.0 + i as f32, 200.0))))
            .collect();
        assert!(continuity_check(&frames, 0.5).passed);
        frames[3] = frame(1, Some((260.0, 210.0)));
        let c = continuity_check(&frames, 0.5);
        assert!(!c.passed && c.score > 0.9, "{c:?}");
        // Frames without a single face are skipped, not counted as jumps.
        frames[3] = frame(0, None);
        assert!(continuity_check(&frames, 0.5).passed);
    }

    #[test]
    fn landmark_shift_is_in_eye_distances() {
        let a = face_at(100.0, 100.0);
        let b = face_at(130.0, 100.0);
        assert!((landmark_shift(&a, &b) - 0.5).abs() < 1e-6);
        assert_eq!(landmark_shift(&a, &a), 0.0);
    }

    #[test]
    fn identity_takes_the_worst_pair() {
        let described = |v: Vec<f32>| FrameObservation {
            descriptor: Descriptor::from_raw(v),
            ..frame(1, Some((0.0, 0.0)))
        };
        let same = vec![
            described(vec![1.0, 0.0]),
            described(vec![1.0, 0.05]),
            described(vec![1.0, -0.05]),
        ];
        assert!(identity_check(&same, 0.7).passed);
        let mut swapped = same.clone();
        swapped[1] = described(vec![0.2, 1.0]);
        let c = identity_check(&swapped, 0.7);
        assert!(!c.passed && c.reason == Some(Reason::FaceMismatch) && c.score < 0.3);
        assert!(
            !identity_check(&same[..1], 0.7).passed,
            "one face proves nothing"
        );
    }

    #[test]
    fn spoof_score_is_the_median_frame() {
        let scored = |s: f32| FrameObservation {
            spoof: Some(SpoofScores {
                spoof: s,
                antispoof: 0.5,
            }),
            ..frame(1, Some((0.0, 0.0)))
        };
        let frames: Vec<_> = [0.01, 0.02, 0.9, 0.03, 0.02].map(scored).into();
        let c = spoof_check(&frames, 0.1);
        assert!(c.passed && (c.score - 0.02).abs() < 1e-6, "{c:?}");
        let frames: Vec<_> = [0.2, 0.3, 0.01].map(scored).into();
        assert_eq!(
            spoof_check(&frames, 0.1).reason,
            Some(Reason::SpoofSuspected)
        );
        assert!(!spoof_check(&[], 0.1).passed);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn identity_frames_spread_over_the_capture() {
        assert_eq!(identity_frames(10, 3), vec![0, 5, 9]);
        assert_eq!(identity_frames(2, 3), vec![0, 1]);
        assert_eq!(identity_frames(10, 1), vec![0]);
        assert!(identity_frames(10, 0).is_empty());
    }

    #[test]
    fn the_crop_is_square_around_the_box() {
        // A white square exactly the box's size on black: with margin 2 the
        // crop shows it in its middle half.
        let mut image = RgbImage::new(200, 200);
        for y in 80..120 {
            for x in 80..120 {
                image.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
        let bbox = FaceBox {
            left: 80.0,
            top: 80.0,
            right: 120.0,
            bottom: 120.0,
        };
        let input = crop_input(&image, &bbox, 2.0, 8);
        let at = |u: usize, v: usize| input[(v * 8 + u) * 3];
        assert_eq!(at(0, 0), 0.0);
        assert_eq!(at(3, 3), 1.0);
        assert_eq!(at(4, 4), 1.0);
        assert_eq!(at(7, 4), 0.0);
        assert_eq!(input.len(), 8 * 8 * 3);
    }
}
