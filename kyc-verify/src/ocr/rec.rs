//! Text line recognition with PP-OCRv4's CRNN-style model: a line cut out
//! upright, 48 pixels high, gives one probability distribution over the
//! dictionary per 8 columns; CTC greedy decoding (best class per step,
//! repeats merged, blanks dropped) turns them into text.

use std::path::Path;

use image::RgbImage;

use super::OcrError;
use super::geometry::{TextBox, crop_upright};
use super::model::{OnnxModel, bgr_tensor};

/// The recogniser's input height.
pub const LINE_HEIGHT: u32 = 48;
/// Input widths are padded up to a multiple of this, so that few plans are built.
pub const WIDTH_BUCKET: u32 = 160;
/// The narrowest input (PaddleOCR's default).
pub const MIN_WIDTH: u32 = 320;
/// The widest input; longer lines are squeezed to fit.
pub const MAX_WIDTH: u32 = 1920;
/// Columns of input per CTC time step.
const STRIDE: usize = 8;

/// The recogniser's classes: 0 is the CTC blank, 1..=n the dictionary's
/// lines, n + 1 the space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dictionary {
    symbols: Vec<String>,
}

impl Dictionary {
    /// From the keys file: one symbol per line, in class order from 1.
    pub fn from_keys(text: &str) -> Dictionary {
        let mut symbols = vec![String::new()];
        symbols.extend(
            text.lines()
                .map(|line| line.trim_end_matches('\r').to_string()),
        );
        symbols.push(" ".to_string());
        Dictionary { symbols }
    }

    pub fn load(path: &Path) -> Result<Dictionary, OcrError> {
        let text = std::fs::read_to_string(path).map_err(|err| OcrError::Model {
            path: path.to_path_buf(),
            message: format!("{err}; run `cargo xtask models`"),
        })?;
        Ok(Self::from_keys(&text))
    }

    /// Number of classes, blank and space included.
    pub fn classes(&self) -> usize {
        self.symbols.len()
    }

    /// The text of a class; the blank is empty.
    pub fn symbol(&self, class: usize) -> &str {
        self.symbols.get(class).map(String::as_str).unwrap_or("")
    }

    /// A mask over classes: true where `keep` accepts the symbol. The blank is never kept.
    pub fn mask(&self, keep: impl Fn(&str) -> bool) -> Vec<bool> {
        self.symbols
            .iter()
            .enumerate()
            .map(|(class, symbol)| class != 0 && keep(symbol))
            .collect()
    }
}

/// One decoded character: its class, and the probability the model gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoded {
    pub class: usize,
    pub probability: f32,
    /// The time step it was read at (the first of a repeated run).
    pub step: usize,
    /// The runner-up class at that step (among the allowed ones, blank
    /// excluded) and its probability: what the model nearly read.
    pub second: usize,
    pub second_probability: f32,
}

/// CTC greedy decoding of `probs` (time steps × `classes`, row-major): the
/// most probable class per step, a run of one class read once, blanks
/// (class 0) dropped. With `allowed`, only the blank and the classes marked
/// true compete at each step (so a glyph the model reads as an unexpected
/// symbol becomes the likeliest allowed one instead).
pub fn ctc_greedy_decode(probs: &[f32], classes: usize, allowed: Option<&[bool]>) -> Vec<Decoded> {
    let mut out = Vec::new();
    if classes == 0 {
        return out;
    }
    let mut previous = 0usize;
    for (step, row) in probs.chunks_exact(classes).enumerate() {
        let mut best = 0usize;
        let mut best_p = row[0];
        // The best two non-blank classes.
        let (mut first, mut first_p, mut second, mut second_p) = (0usize, f32::MIN, 0usize, 0.0f32);
        for (class, &p) in row.iter().enumerate().skip(1) {
            let permitted = allowed.is_none_or(|mask| mask.get(class).copied().unwrap_or(false));
            if !permitted {
                continue;
            }
            if p > best_p {
                best = class;
                best_p = p;
            }
            if p > first_p {
                (second, second_p) = (first, first_p.max(0.0));
                (first, first_p) = (class, p);
            } else if p > second_p {
                (second, second_p) = (class, p);
            }
        }
        if best != 0 && best != previous {
            out.push(Decoded {
                class: best,
                probability: best_p,
                step,
                second,
                second_probability: second_p,
            });
        } else if best != 0 && best == previous {
            // The same glyph over several steps: keep its most confident step.
            if let Some(last) = out.last_mut() {
                if best_p > last.probability {
                    last.probability = best_p;
                }
                if second_p > last.second_probability && second != best {
                    last.second = second;
                    last.second_probability = second_p;
                }
            }
        }
        previous = best;
    }
    out
}

/// A recognised line.
#[derive(Debug, Clone, PartialEq)]
pub struct LineText {
    pub text: String,
    /// The lowest probability among its characters (1 for an empty line).
    pub min_confidence: f32,
    /// The mean probability of its characters (1 for an empty line).
    pub mean_confidence: f32,
}

/// The PP-OCRv4 recogniser with its dictionary.
#[derive(Debug)]
pub struct Recognizer {
    model: OnnxModel,
    dictionary: Dictionary,
}

impl Recognizer {
    pub fn load(model: &Path, keys: &Path) -> Result<Self, OcrError> {
        Ok(Self {
            model: OnnxModel::load(model)?,
            dictionary: Dictionary::load(keys)?,
        })
    }

    pub fn dictionary(&self) -> &Dictionary {
        &self.dictionary
    }

    /// The class probabilities of a line image already `LINE_HEIGHT` high:
    /// (time steps × classes, classes).
    pub fn probabilities(&self, line: &RgbImage) -> Result<(Vec<f32>, usize), OcrError> {
        if line.height() != LINE_HEIGHT || line.width() == 0 || line.width() > MAX_WIDTH {
            return Err(OcrError::Inference(format!(
                "a line image must be {LINE_HEIGHT} high and 1..={MAX_WIDTH} wide, not {}x{}",
                line.width(),
                line.height()
            )));
        }
        let width = bucket_width(line.width()) as usize;
        let input = bgr_tensor(line, width)?;
        let probs = self.model.run(input, [1, 3, LINE_HEIGHT as usize, width])?;
        let classes = self.dictionary.classes();
        if probs.len() != (width / STRIDE) * classes {
            return Err(OcrError::Inference(format!(
                "recogniser gave {} values for {} steps of {classes} classes; is the keys file the model's?",
                probs.len(),
                width / STRIDE
            )));
        }
        Ok((probs, classes))
    }

    /// Reads the text in `rect` of `image`, keeping only classes `allowed`
    /// marks (all when `None`). `stretch` widens the line image beyond its
    /// aspect ratio (1 keeps it): more time steps per character, so that
    /// narrow and repeated glyphs (`<<<<`, `66`) are not merged.
    pub fn read_box(
        &self,
        image: &RgbImage,
        rect: &TextBox,
        allowed: Option<&[bool]>,
        stretch: f32,
    ) -> Result<LineText, OcrError> {
        Ok(self.text_of(&self.decode_box(image, rect, allowed, stretch)?))
    }

    /// As [`Recognizer::read_box`], character by character with the runner-up of each.
    pub fn decode_box(
        &self,
        image: &RgbImage,
        rect: &TextBox,
        allowed: Option<&[bool]>,
        stretch: f32,
    ) -> Result<Vec<Decoded>, OcrError> {
        let line = crop_upright(image, rect, LINE_HEIGHT, MAX_WIDTH, stretch);
        let (probs, classes) = self.probabilities(&line)?;
        Ok(ctc_greedy_decode(&probs, classes, allowed))
    }

    /// Reads a line image already `LINE_HEIGHT` high.
    pub fn read_line(
        &self,
        line: &RgbImage,
        allowed: Option<&[bool]>,
    ) -> Result<LineText, OcrError> {
        let (probs, classes) = self.probabilities(line)?;
        let decoded = ctc_greedy_decode(&probs, classes, allowed);
        Ok(self.text_of(&decoded))
    }

    pub fn text_of(&self, decoded: &[Decoded]) -> LineText {
        let text = decoded
            .iter()
            .map(|d| self.dictionary.symbol(d.class))
            .collect();
        let min_confidence = decoded.iter().map(|d| d.probability).fold(1.0f32, f32::min);
        let mean_confidence = if decoded.is_empty() {
            1.0
        } else {
            decoded.iter().map(|d| d.probability).sum::<f32>() / decoded.len() as f32
        };
        LineText {
            text,
            min_confidence,
            mean_confidence,
        }
    }
}

/// The input width for a line `width` wide: a multiple of [`WIDTH_BUCKET`], at least [`MIN_WIDTH`].
pub fn bucket_width(width: u32) -> u32 {
    (width.div_ceil(WIDTH_BUCKET) * WIDTH_BUCKET).clamp(MIN_WIDTH, MAX_WIDTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dictionary() -> Dictionary {
        Dictionary::from_keys("A\nB\n<\n《\n")
    }

    /// One-hot-ish rows for a class sequence over 6 classes (blank, A, B, <, 《, space).
    fn rows(classes: &[usize]) -> Vec<f32> {
        classes
            .iter()
            .flat_map(|&c| (0..6).map(move |k| if k == c { 0.9 } else { 0.02 }))
            .collect()
    }

    #[test]
    fn dictionary_layout_is_blank_keys_space() {
        let d = dictionary();
        assert_eq!(d.classes(), 6);
        assert_eq!(d.symbol(0), "");
        assert_eq!(d.symbol(1), "A");
        assert_eq!(d.symbol(4), "《");
        assert_eq!(d.symbol(5), " ");
        assert_eq!(d.symbol(99), "");
    }

    #[test]
    fn ctc_merges_repeats_and_drops_blanks() {
        let d = dictionary();
        let probs = rows(&[0, 1, 1, 0, 1, 2, 2, 2, 0, 3, 0, 3, 3, 5]);
        let decoded = ctc_greedy_decode(&probs, 6, None);
        let text: String = decoded.iter().map(|x| d.symbol(x.class)).collect();
        assert_eq!(text, "AAB<< ");
        assert_eq!(decoded[0].step, 1);
        assert_eq!(decoded[1].step, 4);
        assert!((decoded[0].probability - 0.9).abs() < 1e-6);
        assert!(ctc_greedy_decode(&[], 6, None).is_empty());
        assert!(ctc_greedy_decode(&probs, 0, None).is_empty());
    }

    #[test]
    fn a_mask_makes_the_likeliest_allowed_symbol_win() {
        let d = dictionary();
        // Step 1 says 《 (0.6) before < (0.3): with the mask, < wins.
        let mut probs = rows(&[0, 1, 0]);
        probs.extend([0.05, 0.0, 0.0, 0.3, 0.6, 0.05]);
        let mask = d.mask(|s| s.len() == 1 && s != " ");
        assert_eq!(mask, vec![false, true, true, true, false, false]);
        let unmasked: String = ctc_greedy_decode(&probs, 6, None)
            .iter()
            .map(|x| d.symbol(x.class))
            .collect();
        assert_eq!(unmasked, "A《");
        let masked = ctc_greedy_decode(&probs, 6, Some(&mask));
        let text: String = masked.iter().map(|x| d.symbol(x.class)).collect();
        assert_eq!(text, "A<");
        assert!((masked[1].probability - 0.3).abs() < 1e-6);
        // The runner-up among allowed classes, the blank never counted.
        assert_eq!(masked[0].second, 2);
        assert_eq!(masked[0].second_probability, 0.02);
    }

    #[test]
    fn widths_fall_into_buckets() {
        assert_eq!(bucket_width(1), 320);
        assert_eq!(bucket_width(320), 320);
        assert_eq!(bucket_width(321), 480);
        assert_eq!(bucket_width(1000), 1120);
        assert_eq!(bucket_width(1920), 1920);
    }
}
