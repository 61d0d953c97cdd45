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

/// The recogniser's output folded onto a small alphabet: per time step the
/// probability of the blank and of each of `symbols` symbols, each the sum
/// over the dictionary classes that stand for it (`a`, `A` and the
/// full-width `Ａ` are one MRZ letter). Decoding against a layout is then
/// cheap: a few dozen columns instead of 6625.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedSteps {
    /// Number of symbols (blank excluded).
    pub symbols: usize,
    /// Per step, `symbols + 1` values: the blank first, then each symbol.
    pub probs: Vec<f32>,
}

impl FoldedSteps {
    /// Folds `probs` (time steps × `classes`) with `map`: class → symbol
    /// index, `None` for a class that stands for no symbol (its probability is dropped).
    pub fn fold(probs: &[f32], classes: usize, map: &[Option<u8>], symbols: usize) -> Self {
        let mut out = Vec::new();
        if classes == 0 {
            return Self {
                symbols,
                probs: out,
            };
        }
        for row in probs.chunks_exact(classes) {
            let start = out.len();
            out.resize(start + symbols + 1, 0.0);
            out[start] = row[0];
            for (class, &p) in row.iter().enumerate().skip(1) {
                if let Some(Some(symbol)) = map.get(class)
                    && let Some(slot) = out.get_mut(start + 1 + *symbol as usize)
                {
                    *slot += p;
                }
            }
        }
        Self {
            symbols,
            probs: out,
        }
    }

    /// A view of the same steps where each `(from, into)` pair's
    /// probability is added to `into` and taken from `from`: a letters-only
    /// place reads the digit `0` as the letter `O` it stands for.
    pub fn folded_into(&self, pairs: &[(usize, usize)]) -> Self {
        let mut probs = self.probs.clone();
        let width = self.symbols + 1;
        for row in probs.chunks_exact_mut(width) {
            for &(from, into) in pairs {
                if from < self.symbols && into < self.symbols {
                    row[1 + into] += row[1 + from];
                    row[1 + from] = 0.0;
                }
            }
        }
        Self {
            symbols: self.symbols,
            probs,
        }
    }

    pub fn steps(&self) -> usize {
        self.probs.len() / (self.symbols + 1)
    }

    /// The blank's probability at `step`.
    pub fn blank(&self, step: usize) -> f32 {
        self.probs
            .get(step * (self.symbols + 1))
            .copied()
            .unwrap_or(0.0)
    }

    /// The probability of `symbol` at `step`.
    pub fn symbol(&self, step: usize, symbol: usize) -> f32 {
        self.probs
            .get(step * (self.symbols + 1) + 1 + symbol)
            .copied()
            .unwrap_or(0.0)
    }

    /// Greedy CTC decoding over the folded symbols: the likeliest entry per
    /// step, runs merged, blanks dropped. The symbols and their steps.
    pub fn greedy(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut previous = None;
        for step in 0..self.steps() {
            let mut best = None;
            let mut best_p = self.blank(step);
            for symbol in 0..self.symbols {
                let p = self.symbol(step, symbol);
                if p > best_p {
                    (best, best_p) = (Some(symbol), p);
                }
            }
            if let Some(symbol) = best
                && previous != Some(symbol)
            {
                out.push((symbol, step));
            }
            previous = best;
        }
        out
    }
}

/// One character of a constrained decoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aligned {
    pub symbol: usize,
    /// The highest probability the symbol had over its steps.
    pub probability: f32,
    /// The step where it had it: where the glyph stands along the line.
    pub step: usize,
    /// The likeliest other symbol at that step among those allowed at this
    /// position, and its probability (0 when no other is allowed).
    pub second: usize,
    pub second_probability: f32,
    /// The likeliest other symbol at that step among all symbols, allowed
    /// here or not, and its probability.
    pub rival: usize,
    pub rival_probability: f32,
}

/// The most probable CTC path that reads exactly `allowed.len()` symbols,
/// the symbol at position k one that `allowed[k]` marks (a mask over the
/// symbols), its probabilities taken from `views[k]` (all views of one line,
/// same steps and symbols: a position may see look-alikes folded together),
/// found by dynamic programming over (time step, position, symbol). `None`
/// when no such path exists (fewer steps than needed, a position that allows
/// nothing, views that disagree).
///
/// Why: an MRZ line has a known length and a known kind of character at
/// every position (letters in names, digits in dates). Greedy decoding
/// merges runs of the same glyph (`<<<<`) or splits one, and picks `0` for a
/// letter `O`; asking for the best reading among the ones the layout permits
/// uses everything the model said, instead of repairing its top choice afterwards.
pub fn ctc_constrained_decode(
    views: &[&FoldedSteps],
    allowed: &[Vec<bool>],
) -> Option<Vec<Aligned>> {
    let n = allowed.len();
    let steps = *views.first()?;
    let s = steps.symbols;
    let t_count = steps.steps();
    if n == 0
        || s >= 254
        || t_count < n
        || views.len() != n
        || views
            .iter()
            .any(|v| v.symbols != s || v.probs.len() != steps.probs.len())
        || allowed.iter().any(|a| !a.iter().take(s).any(|&x| x))
    {
        return None;
    }
    const NONE: f32 = f32::NEG_INFINITY;
    let ln = |p: f32| p.max(1e-30).ln();
    // Scores: blank[k] (k symbols read, now on a blank), on[k][c] (the k-th
    // symbol, 1-based, is c and the path is on it).
    let mut blank = vec![NONE; n + 1];
    let mut on = vec![NONE; (n + 1) * s];
    // Back pointers per step: for blank[k], STAY or the symbol it came from;
    // for on[k][c], STAY, FROM_BLANK or the previous symbol.
    const STAY: u8 = 255;
    const FROM_BLANK: u8 = 254;
    let mut back_blank = vec![STAY; t_count * (n + 1)];
    let mut back_on = vec![STAY; t_count * (n + 1) * s];
    let permitted = |k: usize, c: usize| allowed[k - 1].get(c).copied().unwrap_or(false);
    blank[0] = ln(steps.blank(0));
    for c in 0..s {
        if permitted(1, c) {
            on[s + c] = ln(views[0].symbol(0, c));
            back_on[s + c] = FROM_BLANK;
        }
    }
    for t in 1..t_count {
        let lb = ln(steps.blank(t));
        let mut next_blank = vec![NONE; n + 1];
        let mut next_on = vec![NONE; (n + 1) * s];
        // Positions reachable at t and still completable afterwards.
        let k_max = n.min(t + 1);
        let k_min = n.saturating_sub(t_count - t);
        for k in k_min..=k_max {
            // Blank after k symbols: stay, or leave symbol k.
            let mut best = (blank[k], STAY);
            if k > 0 {
                for c in 0..s {
                    let v = on[k * s + c];
                    if v > best.0 {
                        best = (v, c as u8);
                    }
                }
            }
            if best.0 > NONE {
                next_blank[k] = best.0 + lb;
                back_blank[t * (n + 1) + k] = best.1;
            }
            if k == 0 {
                continue;
            }
            // The two best symbols at k - 1, for "a different symbol before".
            let mut first = (NONE, usize::MAX);
            let mut second = (NONE, usize::MAX);
            if k > 1 {
                for c in 0..s {
                    let v = on[(k - 1) * s + c];
                    if v > first.0 {
                        second = first;
                        first = (v, c);
                    } else if v > second.0 {
                        second = (v, c);
                    }
                }
            }
            for c in 0..s {
                if !permitted(k, c) {
                    continue;
                }
                let mut best = (on[k * s + c], STAY);
                if blank[k - 1] > best.0 {
                    best = (blank[k - 1], FROM_BLANK);
                }
                let other = if first.1 == c { second } else { first };
                if other.0 > best.0 && other.1 != usize::MAX {
                    best = (other.0, other.1 as u8);
                }
                if best.0 > NONE {
                    next_on[k * s + c] = best.0 + ln(views[k - 1].symbol(t, c));
                    back_on[(t * (n + 1) + k) * s + c] = best.1;
                }
            }
        }
        blank = next_blank;
        on = next_on;
    }
    // The end: on the last symbol or on a blank after it.
    #[derive(Clone, Copy)]
    enum State {
        Blank(usize),
        On(usize, usize),
    }
    let mut end = (blank[n], State::Blank(n));
    for c in 0..s {
        if on[n * s + c] > end.0 {
            end = (on[n * s + c], State::On(n, c));
        }
    }
    if end.0 == NONE {
        return None;
    }
    // Walk back, noting each symbol's steps.
    let mut symbol_steps: Vec<(usize, Vec<usize>)> = vec![(usize::MAX, Vec::new()); n];
    let mut state = end.1;
    for t in (0..t_count).rev() {
        match state {
            State::Blank(k) => {
                let from = back_blank[t * (n + 1) + k];
                if t > 0 && from != STAY {
                    state = State::On(k, from as usize);
                }
            }
            State::On(k, c) => {
                if let Some(slot) = symbol_steps.get_mut(k - 1) {
                    slot.0 = c;
                    slot.1.push(t);
                }
                let from = back_on[(t * (n + 1) + k) * s + c];
                state = match from {
                    STAY => State::On(k, c),
                    FROM_BLANK => State::Blank(k - 1),
                    prev => State::On(k - 1, prev as usize),
                };
            }
        }
    }
    let mut out = Vec::with_capacity(n);
    for (k, (symbol, at)) in symbol_steps.into_iter().enumerate() {
        if symbol == usize::MAX {
            return None;
        }
        let view = views[k];
        let step = at
            .iter()
            .copied()
            .max_by(|&a, &b| view.symbol(a, symbol).total_cmp(&view.symbol(b, symbol)))?;
        let (mut second, mut second_probability) = (symbol, 0.0f32);
        let (mut rival, mut rival_probability) = (symbol, 0.0f32);
        for other in (0..s).filter(|&o| o != symbol) {
            let p = view.symbol(step, other);
            if allowed[k].get(other).copied().unwrap_or(false) && p > second_probability {
                (second, second_probability) = (other, p);
            }
            if p > rival_probability {
                (rival, rival_probability) = (other, p);
            }
        }
        out.push(Aligned {
            symbol,
            probability: view.symbol(step, symbol),
            step,
            second,
            second_probability,
            rival,
            rival_probability,
        });
    }
    Some(out)
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

    /// Folded steps over 3 symbols (A, B, <) from per-step (blank, A, B, <) rows.
    fn folded(rows: &[[f32; 4]]) -> FoldedSteps {
        FoldedSteps {
            symbols: 3,
            probs: rows.iter().flatten().copied().collect(),
        }
    }

    const BLANK: [f32; 4] = [0.9, 0.03, 0.03, 0.04];
    const A: [f32; 4] = [0.05, 0.9, 0.03, 0.02];
    const FILL: [f32; 4] = [0.05, 0.02, 0.03, 0.9];

    #[test]
    fn folding_sums_the_classes_of_one_symbol() {
        // Classes: blank, a, A, 中, <; symbols A = 0, < = 1.
        let map = [None, Some(0), Some(0), None, Some(1)];
        let probs = [0.1, 0.2, 0.3, 0.3, 0.1];
        let f = FoldedSteps::fold(&probs, 5, &map, 2);
        assert_eq!(f.steps(), 1);
        assert!((f.blank(0) - 0.1).abs() < 1e-6);
        assert!((f.symbol(0, 0) - 0.5).abs() < 1e-6);
        assert!((f.symbol(0, 1) - 0.1).abs() < 1e-6);
        let moved = f.folded_into(&[(1, 0)]);
        assert!((moved.symbol(0, 0) - 0.6).abs() < 1e-6);
        assert_eq!(moved.symbol(0, 1), 0.0);
    }

    #[test]
    fn the_constrained_decoder_restores_a_merged_run_of_fillers() {
        // A, then one long run of < with no blank inside: greedy reads "A<".
        let steps = folded(&[BLANK, A, BLANK, FILL, FILL, FILL, FILL, BLANK]);
        assert_eq!(steps.greedy().len(), 2);
        let any = vec![true; 3];
        let views = vec![&steps; 3];
        let read = ctc_constrained_decode(&views, &vec![any.clone(); 3]).unwrap();
        let symbols: Vec<usize> = read.iter().map(|a| a.symbol).collect();
        assert_eq!(symbols, [0, 2, 2]);
        assert!(read[1].step < read[2].step);
        // Too many characters for the steps: no reading.
        let views = vec![&steps; 9];
        assert!(ctc_constrained_decode(&views, &vec![any; 9]).is_none());
    }

    #[test]
    fn the_constrained_decoder_keeps_each_place_to_its_kind() {
        // The second glyph looks like B (0.6) but the place admits only < and A.
        let b_ish = [0.05, 0.05, 0.6, 0.3];
        let steps = folded(&[A, BLANK, b_ish, BLANK]);
        let views = vec![&steps; 2];
        let allowed = vec![vec![true, true, true], vec![true, false, true]];
        let read = ctc_constrained_decode(&views, &allowed).unwrap();
        assert_eq!(read[1].symbol, 2);
        assert!((read[1].probability - 0.3).abs() < 1e-6);
        // The likeliest symbol overall is still reported as the rival.
        assert_eq!(read[1].rival, 1);
        assert!((read[1].rival_probability - 0.6).abs() < 1e-6);
        // A place that admits nothing, or views of another length: no reading.
        assert!(ctc_constrained_decode(&views, &[vec![true; 3], vec![false; 3]]).is_none());
        assert!(ctc_constrained_decode(&[&steps], &allowed).is_none());
    }
}
