//! Step-level pipelines: what one step's captures go through, from decoded
//! images to a [`StepOutcome`] (the decision, every check with its score,
//! and the fields read). The server runs these on its worker pool; the
//! xtask runs the same functions on files.
//!
//! Checks of several captures share one list, so each check's name is
//! prefixed with the capture it measured (`front.sharpness`,
//! `frame_3.anti_spoof`, …): staff see which photo failed and why.

use std::path::{Path, PathBuf};

use image::{DynamicImage, RgbImage};
use serde::Serialize;
use time::Date;

use crate::decision::{Decision, DecisionRules};
use crate::document::{self, DocumentPolicy, DocumentReading};
use crate::face::{self, DescribedFace, FaceLookup, FaceMatchConfig, FacePipeline};
use crate::liveness::{self, ChallengeSet, LivenessConfig, LivenessPipeline};
use crate::mrz::Mrz;
use crate::ocr::{self, Ocr, TextBox};
use crate::quality::{self, Capture, QualityPolicy};
use crate::reason::{Check, Reason};

/// Every model file the step pipelines load, relative to the model directory.
pub const MODEL_FILES: &[&str] = &[
    face::DETECTOR_FILE,
    face::DESCRIPTOR_FILE,
    ocr::DETECTOR_FILE,
    ocr::RECOGNIZER_FILE,
    ocr::KEYS_FILE,
    liveness::passive::ANTISPOOF_FILE,
    liveness::passive::LIVENESS_FILE,
];

/// The command that installs the model files.
pub const INSTALL_COMMAND: &str = "cargo xtask models";

#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error(
        "model files missing from {dir}: {missing}; install them with `{INSTALL_COMMAND}` \
         (or point verification.model_dir / KYC_MODELS_DIR at a directory that has them)",
        dir = dir.display(),
        missing = missing.join(", ")
    )]
    Missing { dir: PathBuf, missing: Vec<String> },
    #[error("cannot load the models from {dir}: {message}", dir = dir.display())]
    Load { dir: PathBuf, message: String },
}

/// The loaded models, shared by every worker (`&self` everywhere).
pub struct Models {
    pub face: FacePipeline,
    pub ocr: Ocr,
    pub liveness: LivenessPipeline,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models").finish_non_exhaustive()
    }
}

impl Models {
    /// The files of [`MODEL_FILES`] that `dir` lacks.
    pub fn missing(dir: &Path) -> Vec<String> {
        MODEL_FILES
            .iter()
            .filter(|file| !dir.join(file).is_file())
            .map(|file| (*file).to_owned())
            .collect()
    }

    pub fn load(dir: &Path, face: FaceMatchConfig) -> Result<Self, ModelsError> {
        let missing = Self::missing(dir);
        if !missing.is_empty() {
            return Err(ModelsError::Missing {
                dir: dir.to_path_buf(),
                missing,
            });
        }
        let load = |message: String| ModelsError::Load {
            dir: dir.to_path_buf(),
            message,
        };
        Ok(Self {
            face: FacePipeline::load(dir, face).map_err(|e| load(e.to_string()))?,
            ocr: Ocr::load(dir).map_err(|e| load(e.to_string()))?,
            liveness: LivenessPipeline::load(
                dir,
                LivenessConfig {
                    identity_threshold: face.threshold,
                    ..LivenessConfig::default()
                },
            )
            .map_err(|e| load(e.to_string()))?,
        })
    }
}

/// Why a pipeline could not run at all (as opposed to a failed check).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PipelineError(pub String);

impl PipelineError {
    fn from(err: impl std::fmt::Display) -> Self {
        Self(err.to_string())
    }
}

/// What the identity document said, for the session result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentFields {
    pub document_type: &'static str,
    pub document_code: String,
    pub issuing_state: String,
    pub surname: String,
    pub given_names: String,
    pub document_number: String,
    pub nationality: String,
    pub birth_date: Option<String>,
    pub sex: String,
    pub expiry_date: Option<String>,
    pub mrz: Vec<String>,
}

/// A field's wire spelling (country codes and sex serialize as strings).
fn text<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl DocumentFields {
    pub fn from_mrz(mrz: &Mrz) -> Self {
        Self {
            document_type: document::document_type_name(mrz.document_kind),
            document_code: mrz.document_code.clone(),
            issuing_state: text(&mrz.issuing_state),
            surname: mrz.surname.clone(),
            given_names: mrz.given_names.clone(),
            document_number: mrz.document_number.clone(),
            nationality: text(&mrz.nationality),
            birth_date: mrz.birth_date.map(|d| d.to_string()),
            sex: text(&mrz.sex),
            expiry_date: mrz.expiry_date.map(|d| d.to_string()),
            mrz: mrz.lines.clone(),
        }
    }
}

/// One step's verdict and the evidence behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepOutcome {
    #[serde(flatten)]
    pub decision: Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentFields>,
    /// Similarity of this step's face to another step's (the selfie or the
    /// liveness face against the identity document's portrait).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_similarity: Option<f32>,
}

impl StepOutcome {
    /// Whether every failed reason is one a better capture could fix (blur,
    /// glare, no face…), so asking the end user to try again makes sense.
    pub fn retryable(&self) -> bool {
        !self.decision.reasons.is_empty()
            && self.decision.reasons.iter().all(|r| is_capture_problem(*r))
    }
}

/// Reasons that describe the photo rather than the person or the document.
pub fn is_capture_problem(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::UnreadableImage
            | Reason::ImageTooLarge
            | Reason::LowResolution
            | Reason::Blurry
            | Reason::Glare
            | Reason::TooDark
            | Reason::NoFace
            | Reason::SeveralFaces
            | Reason::MrzNotFound
    )
}

/// The knobs a step's pipeline takes from the session and the server.
#[derive(Debug, Clone)]
pub struct StepPolicy {
    pub require_hd: bool,
    pub document: DocumentPolicy,
    /// Resolves two-digit years and decides expiry.
    pub today: Date,
    pub rules: DecisionRules,
}

/// The quality checks of one capture, named `prefix.check`.
fn quality_checks(
    prefix: &str,
    image: &DynamicImage,
    capture: Capture,
    policy: &StepPolicy,
) -> Vec<Check> {
    let quality_policy = QualityPolicy {
        capture,
        require_hd: policy.require_hd,
    };
    quality::assess(image, &quality_policy)
        .into_iter()
        .map(|mut c| {
            c.name = format!("{prefix}.{}", c.name);
            c
        })
        .collect()
}

/// The portrait of an identity document photo, for matching other steps'
/// faces against it.
pub fn document_portrait(
    models: &Models,
    image: &RgbImage,
) -> Result<Option<DescribedFace>, PipelineError> {
    match models
        .face
        .document_face(image)
        .map_err(PipelineError::from)?
    {
        FaceLookup::Found(face) => Ok(Some(*face)),
        _ => Ok(None),
    }
}

/// An identity document: quality of each side, the MRZ from whichever side
/// holds it (a TD1 card has it on the back), the document's rules, and a
/// portrait on the front.
pub fn identity_document(
    models: &Models,
    front: &DynamicImage,
    back: Option<&DynamicImage>,
    policy: &StepPolicy,
) -> Result<(StepOutcome, Option<DescribedFace>), PipelineError> {
    let mut checks = quality_checks("front", front, Capture::IdentityDocument, policy);
    if let Some(back) = back {
        checks.extend(quality_checks(
            "back",
            back,
            Capture::IdentityDocument,
            policy,
        ));
    }
    let front_rgb = front.to_rgb8();
    let read = |image: &RgbImage| -> Result<DocumentReading, PipelineError> {
        document::read_document(&models.ocr, image, policy.today, &policy.document)
            .map_err(PipelineError::from)
    };
    let read_sides = || -> Result<DocumentReading, PipelineError> {
        let reading = read(&front_rgb)?;
        if reading.mrz.is_none()
            && let Some(back) = back
        {
            let from_back = read(&back.to_rgb8())?;
            if from_back.mrz.is_some() {
                return Ok(from_back);
            }
        }
        Ok(reading)
    };
    let (reading, portrait) = side_by_side(read_sides, || document_portrait(models, &front_rgb))?;
    checks.extend(reading.checks.iter().cloned());
    checks.push(Check {
        name: "portrait_found".into(),
        passed: portrait.is_some(),
        score: portrait.as_ref().map_or(0.0, |p| f64::from(p.face.score)),
        threshold: f64::from(models.face.detector().config().min_score),
        reason: portrait.is_none().then_some(Reason::NoFace),
    });
    let outcome = StepOutcome {
        decision: policy.rules.decide(checks),
        document: reading.mrz.as_ref().map(DocumentFields::from_mrz),
        face_similarity: None,
    };
    Ok((outcome, portrait))
}

/// Runs `here` on this thread and `beside` on a second one when inference
/// may use more than one thread ([`crate::runtime::threads`]), one after the
/// other otherwise. Two independent model runs side by side keep both cores
/// busy where one run alone leaves one idle in every layer too small to
/// split and gains less than twice in the others.
fn side_by_side<A, B>(
    here: impl FnOnce() -> Result<A, PipelineError>,
    beside: impl FnOnce() -> Result<B, PipelineError> + Send,
) -> Result<(A, B), PipelineError>
where
    B: Send,
{
    if crate::runtime::threads() < 2 {
        return Ok((here()?, beside()?));
    }
    std::thread::scope(|scope| {
        let other = scope.spawn(beside);
        let a = here();
        let b = other
            .join()
            .unwrap_or_else(|_| Err(PipelineError("a pipeline thread panicked".into())));
        Ok((a?, b?))
    })
}

/// A selfie (an uploaded photo in place of liveness): quality, one face,
/// and the match against the document's portrait when there is one.
pub fn selfie(
    models: &Models,
    image: &DynamicImage,
    portrait: Option<&DescribedFace>,
    policy: &StepPolicy,
) -> Result<StepOutcome, PipelineError> {
    let mut checks = quality_checks("selfie", image, Capture::Face, policy);
    let rgb = image.to_rgb8();
    // The face and the spoof score are independent: found side by side.
    let (lookup, seen) = side_by_side(
        || models.face.selfie_face(&rgb).map_err(PipelineError::from),
        || {
            models
                .liveness
                .observe(&rgb, true, false)
                .map_err(PipelineError::from)
        },
    )?;
    checks.push(face_found_check("selfie", &lookup));
    if matches!(lookup, FaceLookup::Found(_)) {
        // One photo cannot show motion, but it can show a screen or paper.
        checks.push(liveness::passive::spoof_check(
            std::slice::from_ref(&seen),
            models.liveness.config().spoof_threshold,
        ));
    }
    let mut similarity = None;
    if let (FaceLookup::Found(face), Some(portrait)) = (&lookup, portrait) {
        let judged = models.face.judge(
            FaceLookup::Found(face.clone()),
            FaceLookup::Found(Box::new(portrait.clone())),
        );
        similarity = judged.similarity;
        checks.push(judged.check);
    }
    Ok(StepOutcome {
        decision: policy.rules.decide(checks),
        document: None,
        face_similarity: similarity,
    })
}

/// Passive liveness over the frames of a short capture, and the face in
/// them against the document's portrait when there is one.
pub fn passive_liveness(
    models: &Models,
    frames: &[DynamicImage],
    portrait: Option<&DescribedFace>,
    policy: &StepPolicy,
) -> Result<StepOutcome, PipelineError> {
    let mut checks: Vec<Check> = Vec::new();
    // Quality of the middle frame stands for the capture (all frames come
    // from one camera within two seconds).
    if let Some(middle) = frames.get(frames.len() / 2) {
        checks.extend(quality_checks("frames", middle, Capture::Face, policy));
    }
    let rgb: Vec<RgbImage> = frames.iter().map(DynamicImage::to_rgb8).collect();
    let report = models.liveness.passive(&rgb).map_err(PipelineError::from)?;
    checks.extend(report.checks);
    let similarity = face_to_portrait(models, &report.frames, &rgb, portrait, &mut checks)?;
    Ok(StepOutcome {
        decision: policy.rules.decide(checks),
        document: None,
        face_similarity: similarity,
    })
}

/// Active liveness: `neutral` frames, then one segment of frames per
/// challenge, in the order the server asked them.
pub fn active_liveness(
    models: &Models,
    challenges: &ChallengeSet,
    neutral: &[DynamicImage],
    segments: &[Vec<DynamicImage>],
    portrait: Option<&DescribedFace>,
    policy: &StepPolicy,
) -> Result<StepOutcome, PipelineError> {
    let neutral: Vec<RgbImage> = neutral.iter().map(DynamicImage::to_rgb8).collect();
    let segments: Vec<Vec<RgbImage>> = segments
        .iter()
        .map(|s| s.iter().map(DynamicImage::to_rgb8).collect())
        .collect();
    let mut checks = Vec::new();
    if let Some(first) = neutral.first() {
        // A replayed screen shows in the still frame as much as anywhere.
        let seen = models
            .liveness
            .observe(first, true, false)
            .map_err(PipelineError::from)?;
        checks.push(liveness::passive::spoof_check(
            std::slice::from_ref(&seen),
            models.liveness.config().spoof_threshold,
        ));
    }
    let report = models
        .liveness
        .active(challenges, &neutral, &segments)
        .map_err(PipelineError::from)?;
    checks.extend(report.checks);
    let similarity = face_to_portrait(models, &report.frames, &neutral, portrait, &mut checks)?;
    Ok(StepOutcome {
        decision: policy.rules.decide(checks),
        document: None,
        face_similarity: similarity,
    })
}

/// Matches the first frame with one face against the portrait, pushing the
/// check; the similarity, when both faces were there. The liveness run has
/// already described some frames (those of its same-person check, only when
/// they held one face): the first of those is used as it is, and only
/// without one are the `frames` searched again.
fn face_to_portrait(
    models: &Models,
    observed: &[liveness::passive::FrameObservation],
    frames: &[RgbImage],
    portrait: Option<&DescribedFace>,
    checks: &mut Vec<Check>,
) -> Result<Option<f32>, PipelineError> {
    let Some(portrait) = portrait else {
        return Ok(None);
    };
    let described = observed
        .iter()
        .find_map(|o| match (&o.face, &o.descriptor) {
            (Some(face), Some(descriptor)) => Some(DescribedFace {
                face: face.clone(),
                descriptor: descriptor.clone(),
            }),
            _ => None,
        });
    if let Some(face) = described {
        let (check, similarity) = match_against_portrait(models, &face, portrait, face::CHECK_NAME);
        checks.push(check);
        return Ok(similarity);
    }
    for frame in frames {
        if let FaceLookup::Found(face) = models
            .face
            .selfie_face(frame)
            .map_err(PipelineError::from)?
        {
            let (check, similarity) =
                match_against_portrait(models, &face, portrait, face::CHECK_NAME);
            checks.push(check);
            return Ok(similarity);
        }
    }
    Ok(None)
}

/// The check that an image held exactly one face.
pub fn face_found_check(prefix: &str, lookup: &FaceLookup) -> Check {
    let (passed, score, reason) = match lookup {
        FaceLookup::Found(face) => (true, f64::from(face.face.score), None),
        FaceLookup::NoFace => (false, 0.0, Some(Reason::NoFace)),
        FaceLookup::SeveralFaces(n) => (false, *n as f64, Some(Reason::SeveralFaces)),
    };
    Check {
        name: format!("{prefix}.one_face"),
        passed,
        score,
        threshold: 1.0,
        reason,
    }
}

/// How a face-document photo is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceDocumentConfig {
    /// The portrait on the document is at most this fraction of the holder's
    /// face area (a card held at arm's length is far smaller than the face).
    pub max_portrait_area: f32,
    /// Text lines the detector must find around the portrait for it to be a
    /// document rather than a second person.
    pub min_text_lines: usize,
    /// How far around the portrait, in portrait widths, text counts as the
    /// document's.
    pub text_reach: f32,
}

impl Default for FaceDocumentConfig {
    fn default() -> Self {
        Self {
            max_portrait_area: 0.6,
            min_text_lines: 2,
            text_reach: 4.0,
        }
    }
}

/// A selfie with the identity document in hand: a face, a document (a
/// smaller face with text lines around it), and the face in hand matching
/// the document's portrait.
pub fn face_document(
    models: &Models,
    image: &DynamicImage,
    config: &FaceDocumentConfig,
    policy: &StepPolicy,
) -> Result<(StepOutcome, Option<DescribedFace>), PipelineError> {
    let mut checks = quality_checks("photo", image, Capture::Face, policy);
    let rgb = image.to_rgb8();
    let mut faces = models.face.detect(&rgb).map_err(PipelineError::from)?;
    faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
    let holder = faces.first().cloned();
    checks.push(Check {
        name: "holder_face_found".into(),
        passed: holder.is_some(),
        score: holder.as_ref().map_or(0.0, |f| f64::from(f.score)),
        threshold: f64::from(models.face.detector().config().min_score),
        reason: holder.is_none().then_some(Reason::NoFace),
    });
    let Some(holder) = holder else {
        return Ok((
            StepOutcome {
                decision: policy.rules.decide(checks),
                document: None,
                face_similarity: None,
            },
            None,
        ));
    };
    let boxes = models
        .ocr
        .detector
        .detect(&rgb)
        .map_err(PipelineError::from)?;
    // The document's portrait: the largest smaller face with text around it.
    let portrait = faces[1..]
        .iter()
        .filter(|f| f.bbox.area() <= holder.bbox.area() * config.max_portrait_area)
        .map(|f| (f, text_lines_near(&boxes, f, config.text_reach)))
        .find(|(_, lines)| *lines >= config.min_text_lines);
    let lines = portrait.map_or_else(
        || {
            faces[1..]
                .iter()
                .map(|f| text_lines_near(&boxes, f, config.text_reach))
                .max()
                .unwrap_or(0)
        },
        |(_, lines)| lines,
    );
    checks.push(Check {
        name: "document_in_hand".into(),
        passed: portrait.is_some(),
        score: lines as f64,
        threshold: config.min_text_lines as f64,
        reason: portrait.is_none().then_some(Reason::DocumentNotFound),
    });
    let holder_described = DescribedFace {
        descriptor: models
            .face
            .describe(&rgb, &holder)
            .map_err(PipelineError::from)?,
        face: holder,
    };
    let mut similarity = None;
    if let Some((portrait, _)) = portrait {
        let portrait = DescribedFace {
            descriptor: models
                .face
                .describe(&rgb, portrait)
                .map_err(PipelineError::from)?,
            face: portrait.clone(),
        };
        let judged = models.face.judge(
            FaceLookup::Found(Box::new(holder_described.clone())),
            FaceLookup::Found(Box::new(portrait)),
        );
        similarity = judged.similarity;
        let mut check = judged.check;
        check.name = "holder_matches_document".into();
        checks.push(check);
    }
    Ok((
        StepOutcome {
            decision: policy.rules.decide(checks),
            document: None,
            face_similarity: similarity,
        },
        Some(holder_described),
    ))
}

/// Text lines whose centre lies within `reach` face widths of the face.
fn text_lines_near(boxes: &[TextBox], face: &face::detect::DetectedFace, reach: f32) -> usize {
    let (cx, cy) = (
        (face.bbox.left + face.bbox.right) / 2.0,
        (face.bbox.top + face.bbox.bottom) / 2.0,
    );
    let limit = face.bbox.width().max(face.bbox.height()) * reach;
    boxes
        .iter()
        .filter(|b| {
            // Not the face's own pixels read as text.
            let inside = b.cx >= face.bbox.left
                && b.cx <= face.bbox.right
                && b.cy >= face.bbox.top
                && b.cy <= face.bbox.bottom;
            !inside && (b.cx - cx).abs() <= limit && (b.cy - cy).abs() <= limit
        })
        .count()
}

/// Another step's face against the identity document's portrait, as a
/// check named for it.
pub fn match_against_portrait(
    models: &Models,
    face: &DescribedFace,
    portrait: &DescribedFace,
    name: &str,
) -> (Check, Option<f32>) {
    let judged = models.face.judge(
        FaceLookup::Found(Box::new(face.clone())),
        FaceLookup::Found(Box::new(portrait.clone())),
    );
    let mut check = judged.check;
    check.name = name.to_owned();
    (check, judged.similarity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Verdict;

    #[test]
    fn capture_problems_are_retryable_and_evidence_is_not() {
        let outcome = |reasons: Vec<Reason>| StepOutcome {
            decision: Decision {
                verdict: Verdict::Review,
                reasons,
                checks: Vec::new(),
            },
            document: None,
            face_similarity: None,
        };
        assert!(outcome(vec![Reason::Blurry, Reason::Glare]).retryable());
        assert!(!outcome(vec![Reason::Blurry, Reason::DocumentExpired]).retryable());
        assert!(!outcome(vec![Reason::FaceMismatch]).retryable());
        assert!(!outcome(Vec::new()).retryable());
    }

    #[test]
    fn missing_models_name_the_files_and_the_command() {
        let dir = std::env::temp_dir().join("kyc-verify-no-models-here");
        let err = Models::load(&dir, FaceMatchConfig::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("centerface.onnx"), "{text}");
        assert!(text.contains(INSTALL_COMMAND), "{text}");
    }
}

#[cfg(test)]
mod model_tests {
    use std::path::Path;

    use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
    use image::imageops::{self, FilterType};
    use image::{Rgb, RgbImage};

    use super::*;
    use crate::face::default_model_dir;

    fn models() -> Models {
        Models::load(&default_model_dir(), FaceMatchConfig::default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn photo(name: &str) -> RgbImage {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/media-cache/scikit-image/files/skimage/data")
            .join(name);
        assert!(
            path.is_file(),
            "{} missing: run `cargo xtask eval faces` once to fetch the test photos",
            path.display()
        );
        image::open(&path).unwrap().to_rgb8()
    }

    /// Writes `text` in black OCR-B at (x, y) with glyphs `size` px high.
    fn write(card: &mut RgbImage, font: &FontRef, text: &str, x: f32, y: f32, size: f32) {
        let scaled = font.as_scaled(PxScale::from(size));
        let mut pen = x;
        for c in text.chars() {
            let glyph = scaled.scaled_glyph(c);
            let advance = scaled.h_advance(glyph.id);
            let mut glyph = glyph;
            glyph.position = ab_glyph::point(pen, y + scaled.ascent());
            if let Some(outlined) = font.outline_glyph(glyph) {
                let bounds = outlined.px_bounds();
                outlined.draw(|gx, gy, coverage| {
                    let px = bounds.min.x as i64 + i64::from(gx);
                    let py = bounds.min.y as i64 + i64::from(gy);
                    if px >= 0
                        && py >= 0
                        && (px as u32) < card.width()
                        && (py as u32) < card.height()
                    {
                        let v = (255.0 * (1.0 - coverage)) as u8;
                        let p = card.get_pixel_mut(px as u32, py as u32);
                        p.0 = p.0.map(|old| old.min(v));
                    }
                });
            }
            pen += advance;
        }
    }

    /// A person holding an ID card whose portrait is `portrait`'s face.
    fn holding_card(holder: &RgbImage, portrait: &RgbImage) -> DynamicImage {
        let font_bytes = std::fs::read("/usr/share/fonts/opentype/ocr-b/OCRB.otf")
            .expect("fonts-ocr-b is installed");
        let font = FontRef::try_from_slice(&font_bytes).unwrap();
        let mut scene = RgbImage::from_pixel(1280, 960, Rgb([90, 110, 130]));
        let person = imageops::resize(holder, 620, 620, FilterType::Triangle);
        imageops::overlay(&mut scene, &person, 60, 60);
        let mut card = RgbImage::from_pixel(520, 330, Rgb([236, 232, 220]));
        // The portrait: the face region of the photo, on the card's left.
        let face = imageops::crop_imm(portrait, 120, 20, 240, 300).to_image();
        let face = imageops::resize(&face, 150, 190, FilterType::Triangle);
        imageops::overlay(&mut card, &face, 20, 60);
        for (i, line) in [
            "IDENTITY CARD",
            "SURNAME  SPECIMEN",
            "GIVEN  ERIKA",
            "BORN 12 08 1983",
            "NO  L01X00T47",
        ]
        .iter()
        .enumerate()
        {
            write(&mut card, &font, line, 190.0, 30.0 + 45.0 * i as f32, 24.0);
        }
        write(
            &mut card,
            &font,
            "IDD<<L01X00T471<<<<<<<<<<<<<<<",
            20.0,
            270.0,
            15.0,
        );
        imageops::overlay(&mut scene, &card, 700, 520);
        DynamicImage::ImageRgb8(scene)
    }

    fn policy() -> StepPolicy {
        StepPolicy {
            require_hd: false,
            document: DocumentPolicy::default(),
            today: time::macros::date!(2026 - 11 - 24),
            rules: DecisionRules::default(),
        }
    }

    fn check<'a>(outcome: &'a StepOutcome, name: &str) -> &'a Check {
        outcome
            .decision
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} check in {:?}", outcome.decision.checks))
    }

    #[test]
    #[ignore = "needs cargo xtask models"]
    fn steps_decide_the_same_with_their_parts_side_by_side() {
        let models = models();
        let astronaut = photo("astronaut.png");
        let document = holding_card(&astronaut, &astronaut);
        let selfie_photo = DynamicImage::ImageRgb8(astronaut.clone());
        let run = |threads: usize| {
            crate::runtime::configure(threads);
            let (read, portrait) = identity_document(&models, &document, None, &policy()).unwrap();
            let matched = selfie(&models, &selfie_photo, portrait.as_ref(), &policy()).unwrap();
            (read, matched)
        };
        // Other tests may run meanwhile: the thread count changes their
        // speed, not their results.
        let (read_one, selfie_one) = run(1);
        let (read_two, selfie_two) = run(2);
        crate::runtime::configure(1);
        for (one, two) in [(&read_one, &read_two), (&selfie_one, &selfie_two)] {
            assert_eq!(one.decision.verdict, two.decision.verdict);
            assert_eq!(one.decision.checks.len(), two.decision.checks.len());
            for (a, b) in one.decision.checks.iter().zip(&two.decision.checks) {
                assert_eq!((&a.name, a.passed), (&b.name, b.passed));
                assert!((a.score - b.score).abs() < 1e-3, "{a:?} {b:?}");
            }
        }
        assert!(check(&read_two, "portrait_found").passed);
        assert!(check(&selfie_two, "face_match").passed, "{selfie_two:?}");
    }

    #[test]
    #[ignore = "needs cargo xtask models"]
    fn face_document_finds_the_card_and_matches_the_holder_to_its_portrait() {
        let models = models();
        let astronaut = photo("astronaut.png");
        let (outcome, holder) = face_document(
            &models,
            &holding_card(&astronaut, &astronaut),
            &FaceDocumentConfig::default(),
            &policy(),
        )
        .unwrap();
        assert!(holder.is_some());
        assert!(check(&outcome, "document_in_hand").passed, "{outcome:?}");
        let matched = check(&outcome, "holder_matches_document");
        assert!(matched.passed, "{matched:?}");
    }

    #[test]
    #[ignore = "needs cargo xtask models"]
    fn face_document_refuses_a_card_of_someone_else_and_a_photo_without_a_card() {
        let models = models();
        let astronaut = photo("astronaut.png");
        let other = imageops::resize(
            &photo("camera.png").to_owned(),
            512,
            512,
            FilterType::Triangle,
        );
        let other =
            DynamicImage::ImageLuma8(image::DynamicImage::ImageRgb8(other).to_luma8()).to_rgb8();
        let (outcome, _) = face_document(
            &models,
            &holding_card(&astronaut, &other),
            &FaceDocumentConfig::default(),
            &policy(),
        )
        .unwrap();
        // The camera-man's face on the card is not the astronaut holding it
        // (or is not found as a portrait at all): either way no pass.
        let passed = outcome
            .decision
            .checks
            .iter()
            .find(|c| c.name == "holder_matches_document")
            .is_some_and(|c| c.passed);
        assert!(!passed, "{outcome:?}");
        assert!(!outcome.decision.reasons.is_empty());

        let alone = DynamicImage::ImageRgb8(astronaut.clone());
        let (outcome, _) =
            face_document(&models, &alone, &FaceDocumentConfig::default(), &policy()).unwrap();
        let in_hand = check(&outcome, "document_in_hand");
        assert!(!in_hand.passed);
        assert_eq!(in_hand.reason, Some(Reason::DocumentNotFound));
    }
}
