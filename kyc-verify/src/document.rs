//! Reading an identity document's machine-readable zone off a photo: find the
//! MRZ lines (the lowest long text lines of the document), read each with OCR
//! restricted to the MRZ alphabet, parse them with [`crate::mrz`] and turn the
//! result into checks and reasons — found, check digits, expiry, and the
//! integrator's allowed document types and countries.

use image::RgbImage;
use serde::Serialize;
use time::Date;

use crate::mrz::{self, CharKind, DocumentKind, Mrz, MrzError, MrzFormat};
use crate::ocr::{
    Aligned, Dictionary, FoldedSteps, LINE_HEIGHT, Ocr, OcrError, TextBox, bucket_width,
    crop_to_size, ctc_constrained_decode,
};
use crate::reason::{Check, Reason};

/// What the integrator allows; an empty list allows everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentPolicy {
    /// Names as `document_types` takes them: `passport`, `id_card`, `residence_permit`.
    pub document_types: Vec<String>,
    /// ISO 3166-1 alpha-3 codes of issuing countries (`DEU`, `USA`, …).
    pub document_countries: Vec<String>,
}

/// One text line read in the zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MrzLine {
    /// The recogniser's reading, restricted to the MRZ alphabet.
    pub text: String,
    /// The lowest character probability.
    pub min_confidence: f32,
    /// Each character's probability, in order.
    #[serde(skip)]
    pub confidences: Vec<f32>,
    /// Each character's runner-up, when it is an OCR-B look-alike the model
    /// gave at least [`ALTERNATIVE_MIN`] (`O` for a `0` read, …) and the
    /// glyph's height does not rule it out (see `GlyphHeights`).
    #[serde(skip)]
    pub alternatives: Vec<Option<char>>,
    /// Each character's runner-up reading and its probability, whatever it is.
    #[serde(skip)]
    pub runners_up: Vec<Option<(char, f32)>>,
    /// Each character: whether it stands off the line's regular spacing (see
    /// `misplaced`); empty when the reading had no positions.
    #[serde(skip)]
    pub misplaced: Vec<bool>,
    /// Each character's glyph height in the photo (pixels; 0 when it could
    /// not be measured): see `GlyphHeights`.
    #[serde(skip)]
    pub heights: Vec<f32>,
    /// Whether the glyph's height confirms its look-alike alternative (a
    /// `0` as low as the capitals, an `O` as tall as the digits): see
    /// `GlyphHeights`. Empty when the heights said nothing.
    #[serde(skip)]
    pub confirmed: Vec<bool>,
    /// Where the line stands: centre, size (pixels) and direction (radians).
    pub cx: f32,
    pub cy: f32,
    pub width: f32,
    pub height: f32,
    pub angle: f32,
}

/// What the document's MRZ says and which checks it passes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentReading {
    /// The parsed zone; `None` when no MRZ was found or it could not be parsed.
    pub mrz: Option<Mrz>,
    /// The lines handed to the parser, bottom of the document last.
    pub lines: Vec<MrzLine>,
    /// Why the lines could not be parsed, when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// Look-alike characters swapped for the model's runner-up (line,
    /// column, 1-based; from, to): each confirmed by its glyph's height, the
    /// fewest that make every check digit hold, and the only such set.
    pub lookalike_swaps: Vec<LookalikeSwap>,
    pub checks: Vec<Check>,
    /// The reasons of the failed checks, in check order, each once.
    pub reasons: Vec<Reason>,
}

impl DocumentReading {
    pub fn passed(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// The MRZ character a recogniser symbol stands for: letters (either case,
/// full-width too), digits and the filler with its look-alikes. `«` (and the
/// CJK `《`) stay `«`, which the parser reads as one or two fillers. `None`
/// for everything else, which the recogniser is then not allowed to read.
pub fn mrz_char(symbol: &str) -> Option<char> {
    let mut chars = symbol.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    let c = match c {
        // Full-width forms: U+FF01..=U+FF5E mirror ASCII 0x21..=0x7E.
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0)?,
        other => other,
    };
    match c {
        'A'..='Z' | '0'..='9' | '<' => Some(c),
        'a'..='z' => Some(c.to_ascii_uppercase()),
        '‹' | '〈' | 'く' => Some('<'),
        '«' | '《' => Some('«'),
        _ => None,
    }
}

/// A line as the parser should see it: every symbol mapped by [`mrz_char`],
/// anything else dropped.
pub fn to_mrz_alphabet(text: &str) -> String {
    let mut buf = [0u8; 4];
    text.chars()
        .filter_map(|c| mrz_char(c.encode_utf8(&mut buf)))
        .collect()
}

/// Line widths of the formats.
const WIDTHS: [usize; 3] = [30, 36, 44];

/// A runner-up this probable is a reading the model nearly made.
pub const ALTERNATIVE_MIN: f32 = 0.002;

/// OCR-B glyphs the recogniser confuses: letter and digit look-alikes.
const LOOKALIKES: [(char, char); 9] = [
    ('O', '0'),
    ('Q', '0'),
    ('D', '0'),
    ('I', '1'),
    ('Z', '2'),
    ('S', '5'),
    ('G', '6'),
    ('T', '7'),
    ('B', '8'),
];

/// Whether `a` and `b` are a letter and the digit it is mistaken for.
pub fn are_lookalikes(a: char, b: char) -> bool {
    LOOKALIKES
        .iter()
        .any(|&(l, d)| (a, b) == (l, d) || (a, b) == (d, l))
}

/// Reads the MRZ of a document photo. `today` resolves two-digit years and
/// decides expiry.
///
/// How: the detector's boxes give the zone (the lowest run of long lines,
/// stacked and left-aligned), every line of it is cut out along the zone's
/// common direction and over the zone's full length (the detector often
/// misses a line's trailing fillers), and each line is decoded against the
/// format's layout: exactly 30, 36 or 44 characters, each of the kind its
/// place allows. When the check digits or the legibility check fail, the
/// lines are read again at other scales, and then cut out for the other
/// line lengths the zone's line count allows (the estimate of the length
/// from the lines' height fails on wide letter spacing); a later reading is
/// taken only if it passes, otherwise the one that came closest is reported.
pub fn read_document(
    ocr: &Ocr,
    image: &RgbImage,
    today: Date,
    policy: &DocumentPolicy,
) -> Result<DocumentReading, OcrError> {
    let boxes = ocr.detector.detect(image)?;
    // Every MRZ has two or three lines: a single long line of text is not one.
    let frame = ZoneFrame::find(&boxes).filter(|frame| frame.lines.len() >= 2);
    let Some(frame) = frame else {
        return Ok(assess(Vec::new(), today, policy));
    };
    let map = symbol_map(ocr.recognizer.dictionary());
    let mut best: Option<DocumentReading> = None;
    for chars in frame.line_lengths() {
        // At a two-line length, a three-line frame is a two-line zone under
        // a line of other print: only its lower two lines are read.
        let lines = match frame.lines.len() {
            3 if chars != WIDTHS[0] => &frame.lines[1..],
            _ => &frame.lines[..],
        };
        for pass in READING_PASSES {
            let read_line = |line: &TextBox| -> Result<LineSteps, OcrError> {
                let (crop, rect) = frame.crop(image, line, chars, pass);
                let (probs, classes) = ocr.recognizer.probabilities(&crop)?;
                Ok(LineSteps {
                    folded: FoldedSteps::fold(&probs, classes, &map, SYMBOLS.len()),
                    rect,
                    crop,
                })
            };
            // One after the other: a recognition's matrix products already
            // keep both cores of tract's pool busy, and two side by side
            // were slower (bench pipeline: read_document 370 ms against 328).
            let steps = lines
                .iter()
                .map(read_line)
                .collect::<Result<Vec<_>, OcrError>>()?;
            let reading = decode_zone(&steps, today, policy);
            if zone_accepted(&reading) {
                return Ok(reading);
            }
            if best
                .as_ref()
                .is_none_or(|b| closeness(&reading) > closeness(b))
            {
                best = Some(reading);
            }
        }
    }
    Ok(best.unwrap_or_else(|| assess(Vec::new(), today, policy)))
}

/// How near a reading that was not accepted came to being: a parsed zone
/// over none, every check digit valid over some, more valid over fewer. Of
/// the failed readings the closest is reported, so that a zone whose check
/// digits all held on one reading is not reported as not found on another.
fn closeness(reading: &DocumentReading) -> (bool, bool, usize) {
    match &reading.mrz {
        Some(mrz) => (
            true,
            mrz.all_check_digits_valid(),
            mrz.check_digits.iter().filter(|c| c.valid).count(),
        ),
        None => (false, false, 0),
    }
}

/// Whether a reading's zone is trusted: found, every check digit valid and
/// the unprotected fields legible (an expired document is still read right).
fn zone_accepted(reading: &DocumentReading) -> bool {
    reading.mrz.is_some()
        && !reading.reasons.iter().any(|r| {
            matches!(
                r,
                Reason::MrzCheckDigit | Reason::MrzIllegible | Reason::MrzNotFound
            )
        })
}

/// How a pass cuts the lines out: the width of one MRZ character in the
/// recogniser's input (its height is [`LINE_HEIGHT`]) and the blank margin
/// at each end, in characters.
#[derive(Debug, Clone, Copy)]
struct ReadingPass {
    pitch: f32,
    margin: f32,
}

/// The first pass reads at about five and a half recogniser steps per
/// character (OCR-B at its natural aspect gives four, and runs of `<` then
/// merge); the second at a narrower pitch with wider margins, the third at
/// a wider one: each moves every glyph to another place in the network's
/// receptive fields and another scale. A later pass runs only when the
/// earlier ones were not accepted, so it costs time on those documents only.
const READING_PASSES: [ReadingPass; 3] = [
    ReadingPass {
        pitch: 44.0,
        margin: 1.0,
    },
    ReadingPass {
        pitch: 36.0,
        margin: 2.0,
    },
    ReadingPass {
        pitch: 52.0,
        margin: 1.5,
    },
];

/// (digit, letter) symbol pairs of [`mrz::letter_for_digit_char`].
const DIGIT_LETTERS: [(usize, usize); 6] =
    [(26, 14), (27, 8), (28, 25), (31, 18), (32, 6), (34, 1)];

/// The MRZ alphabet, in the order of the constrained decoder's symbols.
const SYMBOLS: &[u8; 37] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<";

fn symbol_of(c: char) -> Option<u8> {
    SYMBOLS
        .iter()
        .position(|&b| char::from(b) == c)
        .and_then(|i| u8::try_from(i).ok())
}

fn char_of(symbol: usize) -> char {
    SYMBOLS.get(symbol).map_or('<', |&b| char::from(b))
}

/// For every class of the recogniser's dictionary, the MRZ symbol it stands
/// for ([`mrz_char`]; `«` counts as a filler).
fn symbol_map(dictionary: &Dictionary) -> Vec<Option<u8>> {
    (0..dictionary.classes())
        .map(|class| {
            if class == 0 {
                return None;
            }
            mrz_char(dictionary.symbol(class))
                .map(|c| if c == '«' { '<' } else { c })
                .and_then(symbol_of)
        })
        .collect()
}

/// The zone's lines as the detector found them, and the frame they share:
/// one direction, and one extent along it (the lines of a zone start and end
/// together; the detector's box of a line ending in fillers often stops short).
#[derive(Debug, Clone)]
struct ZoneFrame {
    /// Top to bottom.
    lines: Vec<TextBox>,
    angle: f32,
    /// A point of the zone, and the extent along `angle` measured from it.
    origin: (f32, f32),
    along: (f32, f32),
}

impl ZoneFrame {
    /// The lowest long line and the lines stacked right above it (at most
    /// three, left- or right-aligned with it, of its height); `None` when
    /// there is no long line.
    fn find(boxes: &[TextBox]) -> Option<ZoneFrame> {
        let merged = merge_collinear(boxes);
        let longest = merged
            .iter()
            .filter(|b| b.width >= 8.0 * b.height)
            .map(|b| b.width)
            .fold(0.0f32, f32::max);
        let bottom = merged
            .iter()
            .filter(|b| b.width >= 8.0 * b.height && b.width >= longest / 2.0)
            .max_by(|a, b| a.cy.total_cmp(&b.cy))
            .copied()?;
        let mut lines = vec![bottom];
        while lines.len() < 3 {
            let Some(&top) = lines.last() else { break };
            let ((ux, uy), (vx, vy)) = top.axes();
            let next = merged
                .iter()
                .filter(|b| {
                    let (dx, dy) = (b.cx - top.cx, b.cy - top.cy);
                    let across = -(dx * vx + dy * vy);
                    let along = dx * ux + dy * uy;
                    let left = along - b.width / 2.0 + top.width / 2.0;
                    let right = along + b.width / 2.0 - top.width / 2.0;
                    let h = top.height;
                    b.width >= 4.0 * b.height
                        && b.height >= 0.6 * h
                        && b.height <= 1.6 * h
                        && across >= 0.7 * h
                        && across <= 2.6 * h
                        && (left.abs() <= 2.0 * h || right.abs() <= 2.0 * h)
                        && (b.angle - top.angle).abs() < 0.06
                })
                .max_by(|a, b| a.cy.total_cmp(&b.cy))
                .copied();
            match next {
                Some(line) => lines.push(line),
                None => break,
            }
        }
        lines.reverse();
        // The common direction: the lines' directions weighted by length.
        let total: f32 = lines.iter().map(|l| l.width).sum();
        let angle = lines.iter().map(|l| l.angle * l.width).sum::<f32>() / total.max(1.0);
        let origin = (bottom.cx, bottom.cy);
        let (s, c) = angle.sin_cos();
        let range = |line: &TextBox| {
            line.corners()
                .iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &(x, y)| {
                    let a = (x - origin.0) * c + (y - origin.1) * s;
                    (lo.min(a), hi.max(a))
                })
        };
        // The second line of every format starts with a number or a date and
        // ends with a check digit, so the detector's box of it spans the
        // zone; the others may stop short where fillers end them, and may
        // only stretch it a little (a box of other print that the detector
        // joined to a line must not pull the crop off the zone).
        let data = lines.get(1).or(lines.first()).copied().unwrap_or(bottom);
        let (mut lo, mut hi) = range(&data);
        let slack = data.height;
        for line in &lines {
            let (a, b) = range(line);
            lo = lo.min(a.max(lo - slack));
            hi = hi.max(b.min(hi + slack));
        }
        // A lone check digit after a long run of fillers is a box of its own
        // far from its line's (the detector sees no text in the fillers):
        // boxes on a zone line's axis stretch the zone to include them.
        let length = hi - lo;
        for other in &merged {
            let on_a_line = lines.iter().any(|line| {
                let (dx, dy) = (other.cx - line.cx, other.cy - line.cy);
                let across = (-dx * s + dy * c).abs();
                // A lone glyph's box is lower than a line's: the detector
                // grows a box by its area over its perimeter.
                let lowest = if other.width <= 2.0 * line.height {
                    0.3
                } else {
                    0.5
                };
                across < 0.4 * line.height
                    && other.height >= lowest * line.height
                    && other.height <= 1.6 * line.height
            });
            if !on_a_line {
                continue;
            }
            let (a, b) = range(other);
            if a.min(lo) >= hi - 1.6 * length && b.max(hi) <= lo + 1.6 * length {
                lo = lo.min(a);
                hi = hi.max(b);
            }
        }
        Some(ZoneFrame {
            lines,
            angle,
            origin,
            along: (lo, hi),
        })
    }

    /// The line lengths (characters) the zone may have, the likeliest first:
    /// every ICAO length its line count allows. Three lines are a TD1 zone
    /// (30) or a two-line zone under a line of other print (36 or 44); two
    /// lines are 36 or 44 long. The order follows an estimate from the
    /// lines' height (the detector's box is about 1.5 character pitches
    /// high), which only decides what is tried first: letter spacing varies
    /// between issuers, so the check digits choose, not the estimate.
    fn line_lengths(&self) -> Vec<usize> {
        let height =
            self.lines.iter().map(|l| l.height).sum::<f32>() / self.lines.len().max(1) as f32;
        let estimate = (self.along.1 - self.along.0) / (height / 1.5).max(1.0);
        let mut two_line = [36usize, 44];
        two_line.sort_by(|a, b| {
            (*a as f32 - estimate)
                .abs()
                .total_cmp(&(*b as f32 - estimate).abs())
        });
        match self.lines.len() {
            3 => vec![30, two_line[0], two_line[1]],
            _ => two_line.to_vec(),
        }
    }

    /// Line `line` cut out over the zone's whole extent, upright, as the
    /// recogniser's input for `pass` and a zone `chars` characters wide,
    /// with the rectangle it was cut from. `chars` sets the input's width
    /// and scale only, never the reading's length, and keeps the recogniser
    /// to a few shapes.
    fn crop(
        &self,
        image: &RgbImage,
        line: &TextBox,
        chars: usize,
        pass: ReadingPass,
    ) -> (RgbImage, TextBox) {
        let (s, c) = self.angle.sin_cos();
        let (dx, dy) = (line.cx - self.origin.0, line.cy - self.origin.1);
        let across = -dx * s + dy * c;
        let length = (self.along.1 - self.along.0).max(1.0);
        let middle = (self.along.0 + self.along.1) / 2.0;
        let chars = chars as f32;
        let text_width = chars * pass.pitch;
        let wanted = text_width + 2.0 * pass.margin * pass.pitch;
        let out_width = bucket_width(wanted.round() as u32);
        // Squeeze when the line would not fit; the extra width of the bucket
        // becomes margin on both sides.
        let scale = (out_width as f32 / wanted).min(1.0) * text_width / length;
        let rect = TextBox {
            cx: self.origin.0 + middle * c - across * s,
            cy: self.origin.1 + middle * s + across * c,
            width: out_width as f32 / scale,
            height: line.height,
            angle: self.angle,
            score: line.score,
        };
        (crop_to_size(image, &rect, out_width, LINE_HEIGHT), rect)
    }
}

/// One line as the recogniser saw it: its output, the rectangle of the photo
/// it was cut from, and the cut-out itself.
struct LineSteps {
    folded: FoldedSteps,
    rect: TextBox,
    crop: RgbImage,
}

/// The formats a zone of `count` lines may be in, the likelier first by the
/// lengths greedy decoding gives.
fn candidate_formats(steps: &[LineSteps]) -> Vec<MrzFormat> {
    match steps.len() {
        3 => vec![MrzFormat::Td1],
        2 => {
            let length: usize = steps.iter().map(|s| s.folded.greedy().len()).sum();
            let visa = steps.first().and_then(|s| {
                s.folded
                    .greedy()
                    .first()
                    .map(|&(symbol, _)| char_of(symbol))
            }) == Some('V');
            let (short, long) = if visa {
                (MrzFormat::MrvB, MrzFormat::MrvA)
            } else {
                (MrzFormat::Td2, MrzFormat::Td3)
            };
            if length.abs_diff(72) <= length.abs_diff(88) {
                vec![short, long]
            } else {
                vec![long, short]
            }
        }
        _ => Vec::new(),
    }
}

/// Decodes every line against each candidate format and assesses the
/// result; the first format whose reading is accepted wins, otherwise the
/// closest ([`closeness`]).
fn decode_zone(steps: &[LineSteps], today: Date, policy: &DocumentPolicy) -> DocumentReading {
    let mut fallback: Option<DocumentReading> = None;
    // Three lines are a TD1 zone, or a two-line zone under a line of other text.
    let mut trials: Vec<(&[LineSteps], MrzFormat)> = candidate_formats(steps)
        .into_iter()
        .map(|format| (steps, format))
        .collect();
    if let Some(lower) = steps.get(1..).filter(|_| steps.len() == 3) {
        trials.extend(
            candidate_formats(lower)
                .into_iter()
                .map(|format| (lower, format)),
        );
    }
    for (steps, format) in trials {
        let kinds = mrz::position_kinds(format);
        let mut zone = Vec::with_capacity(steps.len());
        for (line, kinds) in steps.iter().zip(&kinds) {
            let folded = &line.folded;
            // Letters-only places see a digit's probability as its
            // look-alike letter's, the reading the parser would give it.
            let letters = folded.folded_into(&DIGIT_LETTERS);
            let views: Vec<&FoldedSteps> = kinds
                .iter()
                .map(|&kind| {
                    if kind == CharKind::Letter {
                        &letters
                    } else {
                        folded
                    }
                })
                .collect();
            let allowed: Vec<Vec<bool>> = kinds
                .iter()
                .map(|kind| {
                    SYMBOLS
                        .iter()
                        .map(|&b| kind.admits(char::from(b)))
                        .collect()
                })
                .collect();
            let Some(aligned) = ctc_constrained_decode(&views, &allowed) else {
                break;
            };
            zone.push(mrz_line(&aligned, line, kinds));
        }
        if zone.len() != steps.len() {
            continue;
        }
        if let Some(heights) = GlyphHeights::fit(&zone, &kinds) {
            heights.rule_out_lookalikes(&mut zone);
        }
        let reading = assess(zone, today, policy);
        if zone_accepted(&reading) {
            return reading;
        }
        if fallback
            .as_ref()
            .is_none_or(|f| closeness(&reading) > closeness(f))
        {
            fallback = Some(reading);
        }
    }
    fallback.unwrap_or_else(|| assess(Vec::new(), today, policy))
}

/// How far (in character pitches) a glyph may stand from where the line's
/// regular spacing puts it before its place is in doubt.
const MAX_MISPLACEMENT: f32 = 0.5;

/// The support the model must give a letter `O` read as `0` (or the reverse)
/// in a letters-and-digits field for the swap to be tried when the check
/// digits fail. OCR-B's `O` and `0` differ by a few pixels of width, and the
/// recogniser, trained mostly on other fonts, reads an `O` among digits as
/// `0` with 0.99 and more: the letter keeps only a trace of probability, yet
/// a trace well above that of glyphs that are not there at all.
pub const O_ZERO_SUPPORT: f32 = 1e-4;

/// A decoded line as the parser and the checks see it. `line` is the
/// line's recogniser output and cut-out, `kinds` what each place may hold.
fn mrz_line(aligned: &[Aligned], line: &LineSteps, kinds: &[CharKind]) -> MrzLine {
    let (folded, rect) = (&line.folded, &line.rect);
    let text: String = aligned.iter().map(|a| char_of(a.symbol)).collect();
    let confidences: Vec<f32> = aligned.iter().map(|a| a.probability).collect();
    let alternatives = aligned
        .iter()
        .zip(kinds)
        .map(|(a, kind)| {
            let (read, other) = (char_of(a.symbol), char_of(a.second));
            if a.second_probability >= ALTERNATIVE_MIN && are_lookalikes(read, other) {
                return Some(other);
            }
            // The O/0 confusion, where the field admits both.
            let partner = match read {
                'O' => '0',
                '0' => 'O',
                _ => return None,
            };
            let support = symbol_of(partner).map_or(0.0, |p| folded.symbol(a.step, usize::from(p)));
            (*kind == CharKind::Alphanumeric && support >= O_ZERO_SUPPORT).then_some(partner)
        })
        .collect();
    let runners_up = aligned
        .iter()
        .map(|a| (a.rival_probability > 0.0).then(|| (char_of(a.rival), a.rival_probability)))
        .collect();
    let misplaced = misplaced(aligned);
    let heights = glyph_heights(aligned, line);
    MrzLine {
        min_confidence: confidences.iter().copied().fold(1.0f32, f32::min),
        confidences,
        alternatives,
        runners_up,
        misplaced,
        heights,
        confirmed: Vec::new(),
        cx: rect.cx,
        cy: rect.cy,
        width: rect.width,
        height: rect.height,
        angle: rect.angle,
        text,
    }
}

/// Each character's glyph height in the photo, in pixels (0 where it could
/// not be measured): measured on the recogniser's input around the step
/// where the character was read, over a little more than half a pitch.
fn glyph_heights(aligned: &[Aligned], line: &LineSteps) -> Vec<f32> {
    let steps = line.folded.steps().max(1);
    let columns_per_step = line.crop.width() as f32 / steps as f32;
    let pitch = match (aligned.first(), aligned.last()) {
        (Some(first), Some(last)) if aligned.len() > 1 => {
            (last.step as f32 - first.step as f32) / (aligned.len() - 1) as f32 * columns_per_step
        }
        _ => return vec![0.0; aligned.len()],
    };
    let Some(levels) = InkLevels::of(&line.crop) else {
        return vec![0.0; aligned.len()];
    };
    let to_photo = line.rect.height / line.crop.height().max(1) as f32;
    aligned
        .iter()
        .map(|a| {
            let centre = (a.step as f32 + 0.5) * columns_per_step;
            glyph_height(&line.crop, levels, centre, 0.3 * pitch).map_or(0.0, |h| h * to_photo)
        })
        .collect()
}

/// A line crop's paper and ink brightness.
#[derive(Debug, Clone, Copy)]
struct InkLevels {
    ink: f32,
    paper: f32,
}

impl InkLevels {
    /// The darkest few percent of the crop are ink, the brightest tenth
    /// paper; `None` when the two are too close to tell apart.
    fn of(crop: &RgbImage) -> Option<InkLevels> {
        // A histogram of r + g + b (0..=765) rather than a sort: it runs on
        // every line of every upload, and gives the same quantiles.
        let mut counts = vec![0usize; 766];
        for p in crop.pixels() {
            let [r, g, b] = p.0;
            counts[usize::from(r) + usize::from(g) + usize::from(b)] += 1;
        }
        let total: usize = counts.iter().sum();
        let at = |q: f32| {
            {
                let index = ((total.max(1) - 1) as f32 * q) as usize;
                let mut seen = 0;
                counts.iter().position(|&n| {
                    seen += n;
                    seen > index
                })
            }
            .map(|sum| sum as f32 / 3.0)
        };
        let (ink, paper) = (at(0.03)?, at(0.9)?);
        (paper - ink >= 30.0).then_some(InkLevels { ink, paper })
    }
}

fn brightness([r, g, b]: [u8; 3]) -> f32 {
    (f32::from(r) + f32::from(g) + f32::from(b)) / 3.0
}

/// The height of the glyph standing around column `centre` of a line crop
/// (its columns within `half` of it): the extent of the longest run of rows
/// where the ink is at least half as dark as the line's, to a fraction of
/// a row.
fn glyph_height(crop: &RgbImage, levels: InkLevels, centre: f32, half: f32) -> Option<f32> {
    let x0 = (centre - half).max(0.0) as u32;
    let x1 = ((centre + half).max(0.0) as u32).min(crop.width());
    if x1 <= x0 {
        return None;
    }
    let span = levels.paper - levels.ink;
    let ink: Vec<f32> = (0..crop.height())
        .map(|y| {
            (x0..x1)
                .map(|x| (levels.paper - brightness(crop.get_pixel(x, y).0)) / span)
                .fold(0.0f32, f32::max)
        })
        .collect();
    let mut longest: Option<(usize, usize)> = None;
    let mut start = None;
    for (y, &v) in ink.iter().chain([0.0].iter()).enumerate() {
        match (v >= 0.5, start) {
            (true, None) => start = Some(y),
            (false, Some(first)) => {
                if longest.is_none_or(|(a, b)| y - first > b - a) {
                    longest = Some((first, y));
                }
                start = None;
            }
            _ => {}
        }
    }
    let (first, end) = longest?;
    let last = end - 1;
    // Where the ink crosses one half between a row inside and one outside.
    let crossing = |inside: f32, outside: f32| {
        if inside > outside {
            ((inside - 0.5) / (inside - outside)).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let above = first
        .checked_sub(1)
        .and_then(|y| ink.get(y))
        .copied()
        .unwrap_or(0.0);
    let below = ink.get(end).copied().unwrap_or(0.0);
    let top = first as f32 - crossing(ink[first], above);
    let bottom = last as f32 + crossing(ink[last], below);
    Some(bottom - top)
}

/// OCR-B's digits stand taller than its capitals (a `0` by about a tenth
/// more than an `O`, the one pair the recogniser cannot tell apart among
/// digits). The zone's own glyphs in places that admit only letters or
/// only digits show whether its print has that difference and how large it
/// is: heights = base + slope · place along the line + rise for a digit,
/// fitted by least squares. Where the print shows a clear rise with little
/// noise, a glyph's height says which side of a look-alike pair it is on
/// (any letter–digit pair: `O`/`0`, `Z`/`2`, `S`/`5`…), and a look-alike
/// swap is only ever made where it does; elsewhere it says nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GlyphHeights {
    base: f32,
    slope: f32,
    rise: f32,
}

/// The smallest rise of digits over capitals, relative to the capitals'
/// height, that glyph heights are used at.
const MIN_DIGIT_RISE: f32 = 0.04;

/// The largest scatter (standard deviation) of the known glyphs' heights
/// about the fit, relative to the rise, that glyph heights are used at.
const MAX_HEIGHT_NOISE: f32 = 0.2;

/// Known glyphs of each kind needed to fit the heights.
const MIN_HEIGHT_SAMPLES: usize = 4;

/// A glyph at least this far (in rises above a capital's height) from a
/// capital's height is a digit; at most [`LETTER_HEIGHT`], a letter.
const DIGIT_HEIGHT: f32 = 0.8;
const LETTER_HEIGHT: f32 = 0.6;

/// Glyph heights (in rises above a capital's) outside this range are
/// failed measurements.
const PLAUSIBLE_HEIGHT: (f32, f32) = (-1.0, 2.0);

impl GlyphHeights {
    /// The fit over `zone`'s letters in letters-only places and digits in
    /// digits-only places (`kinds`, per line); `None` unless the rise is
    /// clear.
    fn fit(zone: &[MrzLine], kinds: &[Vec<CharKind>]) -> Option<GlyphHeights> {
        let mut samples: Vec<(f32, f32, f32)> = Vec::new();
        for (line, kinds) in zone.iter().zip(kinds) {
            let length = line.heights.len().max(2) as f32 - 1.0;
            for ((j, c), (&height, kind)) in line
                .text
                .chars()
                .enumerate()
                .zip(line.heights.iter().zip(kinds))
            {
                let digit = match kind {
                    CharKind::Letter if c.is_ascii_uppercase() => 0.0,
                    CharKind::Digit if c.is_ascii_digit() => 1.0,
                    _ => continue,
                };
                if height > 0.0 {
                    samples.push((j as f32 / length, digit, height));
                }
            }
        }
        // Fit, then once more without the glyphs the first fit puts far off
        // (a neighbour's ink, a stain).
        let mut fit = least_squares(&samples)?;
        let mut kept = samples.clone();
        for _ in 0..2 {
            let noise = fit.noise(&kept);
            kept = samples
                .iter()
                .copied()
                .filter(|&(x, d, h)| {
                    (h - fit.predict(x, d)).abs() <= 3.0 * noise.max(0.02 * fit.base)
                })
                .collect();
            fit = least_squares(&kept)?;
        }
        let letters = kept.iter().filter(|s| s.1 == 0.0).count();
        let digits = kept.len() - letters;
        let clear = letters >= MIN_HEIGHT_SAMPLES
            && digits >= MIN_HEIGHT_SAMPLES
            && fit.rise >= MIN_DIGIT_RISE * fit.base
            && fit.noise(&kept) <= MAX_HEIGHT_NOISE * fit.rise;
        clear.then_some(fit)
    }

    fn predict(&self, x: f32, digit: f32) -> f32 {
        self.base + self.slope * x + self.rise * digit
    }

    /// The standard deviation of `samples` about the fit.
    fn noise(&self, samples: &[(f32, f32, f32)]) -> f32 {
        let n = samples.len().max(1) as f32;
        (samples
            .iter()
            .map(|&(x, d, h)| (h - self.predict(x, d)).powi(2))
            .sum::<f32>()
            / n)
            .sqrt()
    }

    /// Where a glyph of `height` at `x` (0..1 along its line) stands: 0 at
    /// a capital's height, 1 at a digit's.
    fn digitness(&self, x: f32, height: f32) -> f32 {
        (height - self.predict(x, 0.0)) / self.rise
    }

    /// Drops the look-alike alternatives the glyphs' heights contradict (a
    /// `0` as tall as the digits is no `O`, an `O` as low as the capitals
    /// no `0`) and marks those they confirm (the other way round).
    fn rule_out_lookalikes(&self, zone: &mut [MrzLine]) {
        for line in zone {
            let length = line.heights.len().max(2) as f32 - 1.0;
            let text: Vec<char> = line.text.chars().collect();
            line.confirmed = vec![false; line.alternatives.len()];
            for (j, alternative) in line.alternatives.iter_mut().enumerate() {
                let (Some(to), Some(&read), Some(&height)) =
                    (*alternative, text.get(j), line.heights.get(j))
                else {
                    continue;
                };
                if height <= 0.0 || !are_lookalikes(read, to) {
                    continue;
                }
                let digitness = self.digitness(j as f32 / length, height);
                // Far outside every glyph's height is a failed measurement
                // (the ink run broken, a neighbour caught), which says nothing.
                if !(PLAUSIBLE_HEIGHT.0..=PLAUSIBLE_HEIGHT.1).contains(&digitness) {
                    continue;
                }
                let (contradicted, confirmed) = if read.is_ascii_digit() {
                    (digitness >= DIGIT_HEIGHT, digitness <= LETTER_HEIGHT)
                } else {
                    (digitness <= LETTER_HEIGHT, digitness >= DIGIT_HEIGHT)
                };
                if contradicted {
                    *alternative = None;
                }
                line.confirmed[j] = confirmed;
            }
        }
    }
}

/// Least squares h = base + slope · x + rise · d over `(x, d, h)` samples.
fn least_squares(samples: &[(f32, f32, f32)]) -> Option<GlyphHeights> {
    // Normal equations over (1, x, d), solved by Cramer's rule.
    let mut m = [[0.0f64; 3]; 3];
    let mut v = [0.0f64; 3];
    for &(x, d, h) in samples {
        let row = [1.0, f64::from(x), f64::from(d)];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += row[i] * row[j];
            }
            v[i] += row[i] * f64::from(h);
        }
    }
    let det = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let whole = det(&m);
    if whole.abs() < 1e-9 {
        return None;
    }
    let solve = |column: usize| {
        let mut replaced = m;
        for (row, value) in replaced.iter_mut().zip(v) {
            row[column] = value;
        }
        (det(&replaced) / whole) as f32
    };
    Some(GlyphHeights {
        base: solve(0),
        slope: solve(1),
        rise: solve(2),
    })
}

/// Which glyphs stand off the line's regular spacing: MRZ printing is
/// monospaced, so the k-th character's step is about a + b·k. A reading that
/// lost a letter and gained a filler elsewhere (the length is forced) puts
/// the characters between the two a whole pitch off; fitted robustly (least
/// squares, then again without the outliers), those stand out.
fn misplaced(aligned: &[Aligned]) -> Vec<bool> {
    let points: Vec<(f32, f32)> = aligned
        .iter()
        .enumerate()
        .map(|(k, a)| (k as f32, a.step as f32))
        .collect();
    let mut keep = vec![true; points.len()];
    let mut fit = (0.0f32, 0.0f32);
    for _ in 0..3 {
        let Some(line) = fit_line(&points, &keep) else {
            return vec![false; points.len()];
        };
        fit = line;
        let pitch = fit.1.abs().max(1e-3);
        for (i, &(k, step)) in points.iter().enumerate() {
            keep[i] = (step - (fit.0 + fit.1 * k)).abs() <= MAX_MISPLACEMENT * pitch;
        }
    }
    let pitch = fit.1.abs().max(1e-3);
    points
        .iter()
        .map(|&(k, step)| (step - (fit.0 + fit.1 * k)).abs() > MAX_MISPLACEMENT * pitch)
        .collect()
}

/// Least squares y = a + b·x over the kept points.
fn fit_line(points: &[(f32, f32)], keep: &[bool]) -> Option<(f32, f32)> {
    let kept: Vec<(f32, f32)> = points
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(p, _)| *p)
        .collect();
    if kept.len() < 2 {
        return None;
    }
    let n = kept.len() as f32;
    let mx = kept.iter().map(|p| p.0).sum::<f32>() / n;
    let my = kept.iter().map(|p| p.1).sum::<f32>() / n;
    let sxx: f32 = kept.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f32 = kept.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

/// Boxes that may be MRZ lines: long and thin, and at least a third as long as
/// the longest such box (the zone spans the document's width). Top to bottom.
pub fn line_candidates(boxes: &[TextBox]) -> Vec<TextBox> {
    let thin: Vec<TextBox> = merge_collinear(boxes)
        .into_iter()
        .filter(|b| b.width >= 8.0 * b.height)
        .collect();
    let longest = thin.iter().map(|b| b.width).fold(0.0f32, f32::max);
    let mut out: Vec<TextBox> = thin
        .into_iter()
        .filter(|b| b.width >= longest / 3.0)
        .collect();
    out.sort_by(|a, b| a.cy.total_cmp(&b.cy));
    out
}

/// Joins boxes that are pieces of one line: the detector may split an MRZ
/// line where a long run of fillers looks like no text to it.
pub fn merge_collinear(boxes: &[TextBox]) -> Vec<TextBox> {
    let mut out: Vec<TextBox> = boxes.to_vec();
    'again: loop {
        for i in 0..out.len() {
            for j in (i + 1)..out.len() {
                if same_line(&out[i], &out[j]) {
                    let (a, b) = (out[i], out[j]);
                    let points: Vec<(f32, f32)> =
                        a.corners().into_iter().chain(b.corners()).collect();
                    if let Some(mut merged) = TextBox::enclosing(&points, (a.score + b.score) / 2.0)
                    {
                        // `enclosing` counts points as unit pixels; corners are exact.
                        merged.width -= 1.0;
                        merged.height -= 1.0;
                        out[i] = merged;
                        out.remove(j);
                        continue 'again;
                    }
                }
            }
        }
        return out;
    }
}

/// Whether two boxes lie on one text line, end to end with a small gap.
fn same_line(a: &TextBox, b: &TextBox) -> bool {
    let h = a.height.max(b.height);
    if a.height.min(b.height) < 0.6 * h {
        return false;
    }
    // Directions: compare along the longer box when one is short and squat.
    let reference = if a.width >= b.width { a } else { b };
    let other = if a.width >= b.width { b } else { a };
    if other.width >= 2.0 * other.height && (a.angle - b.angle).abs() > 0.06 {
        return false;
    }
    let ((ux, uy), (vx, vy)) = reference.axes();
    let (dx, dy) = (other.cx - reference.cx, other.cy - reference.cy);
    let across = (dx * vx + dy * vy).abs();
    let along = (dx * ux + dy * uy).abs();
    let gap = along - reference.width / 2.0 - other.width / 2.0;
    across < 0.35 * h && gap < 2.0 * h
}

/// Parses the zone's lines (trying the last two as well when there are three)
/// and turns the best reading into checks.
pub fn assess(zone: Vec<MrzLine>, today: Date, policy: &DocumentPolicy) -> DocumentReading {
    let texts: Vec<String> = zone.iter().map(|l| l.text.clone()).collect();
    let mut attempts: Vec<&[String]> = vec![&texts[..]];
    if texts.len() == 3 {
        attempts.push(&texts[1..]);
    }
    let mut best: Option<(Result<Mrz, MrzError>, usize)> = None;
    for (start, attempt) in attempts.iter().enumerate() {
        if attempt.is_empty() {
            continue;
        }
        let result = parse_with_filler_fix(attempt, today);
        let better = match (&best, &result) {
            (None, _) => true,
            (Some((Err(_), _)), Ok(_)) => true,
            (Some((Ok(old), _)), Ok(new)) => valid_count(new) > valid_count(old),
            _ => false,
        };
        if better {
            best = Some((result, start));
        }
    }
    let (mut mrz, parse_error, mut lines) = match best {
        Some((Ok(mrz), start)) => (Some(mrz), None, zone[start..].to_vec()),
        Some((Err(err), _)) => (None, Some(err.to_string()), zone),
        None => (None, None, zone),
    };
    let mut lookalike_swaps = Vec::new();
    if mrz.as_ref().is_some_and(|m| !m.all_check_digits_valid())
        && let Some((fixed, swaps)) = lookalike_fix(&lines, today)
    {
        for &(line, column, _, to) in &swaps {
            if let Some(read) = lines.get_mut(line - 1) {
                let mut chars: Vec<char> = read.text.chars().collect();
                if let Some(c) = chars.get_mut(column - 1) {
                    *c = to;
                }
                read.text = chars.into_iter().collect();
            }
        }
        lookalike_swaps = swaps;
        mrz = Some(fixed);
    }
    let mut checks = checks(mrz.as_ref(), today, policy);
    if let Some(mrz) = &mrz {
        checks.push(unverified_check(mrz, &lines));
    }
    let mut reasons = Vec::new();
    for check in &checks {
        if let Some(reason) = check.reason.filter(|_| !check.passed)
            && !reasons.contains(&reason)
        {
            reasons.push(reason);
        }
    }
    DocumentReading {
        mrz,
        lines,
        parse_error,
        lookalike_swaps,
        checks,
        reasons,
    }
}

/// A look-alike swap: line and column (1-based), the character read and the
/// one put in its place.
pub type LookalikeSwap = (usize, usize, char, char);

/// At most this many look-alike swaps explain a reading's failed check digits.
const MAX_LOOKALIKE_SWAPS: usize = 2;

/// More doubtful places than this and no swap is tried: the check digits
/// cannot single out one explanation among so many.
const MAX_LOOKALIKE_CANDIDATES: usize = 24;

/// The reading with a few characters swapped for the look-alikes the model
/// gave as their runners-up, whose every check digit holds — when the
/// glyphs' heights confirm every swap and the check digits single the set
/// out. The candidates are the runners-up under a failed check digit only;
/// the explanation with the fewest swaps is taken if it is the only one of
/// its size and no other set of one more swap explains the failure too (a
/// set that merely adds a swap to it explains nothing more).
/// A letter `O` among digits is read as `0` nearly every time, so two of
/// them in one number are as likely as one: a single swap that happens to
/// satisfy the check digit while a pair of swaps does too is a guess, and a
/// guessed document number accepted is the one failure that must not happen.
fn lookalike_fix(lines: &[MrzLine], today: Date) -> Option<(Mrz, Vec<LookalikeSwap>)> {
    let texts: Vec<Vec<char>> = lines.iter().map(|l| l.text.chars().collect()).collect();
    let candidates: Vec<LookalikeSwap> = lines
        .iter()
        .zip(&texts)
        .enumerate()
        .flat_map(|(i, (line, text))| {
            line.alternatives.iter().zip(text).enumerate().filter_map(
                move |(j, (alternative, &from))| alternative.map(|to| (i + 1, j + 1, from, to)),
            )
        })
        .collect();
    // Only places under a failed check digit and under no check digit that
    // holds may change: a swap under a holding check digit would have to
    // break it, and two of them keeping it whole is a coincidence, not a
    // repair. Without a parse of the reading there is nothing to go by.
    let original: Vec<String> = texts.iter().map(String::from_iter).collect();
    let checks = parse_with_filler_fix(&original, today).ok()?.check_digits;
    let covered = |valid: bool, line: usize, column: usize| {
        checks
            .iter()
            .any(|c| c.valid == valid && c.covers.contains(&(line, column)))
    };
    let candidates: Vec<LookalikeSwap> = candidates
        .into_iter()
        .filter(|&(line, column, _, _)| {
            covered(false, line, column) && !covered(true, line, column)
        })
        .collect();
    if candidates.is_empty() || candidates.len() > MAX_LOOKALIKE_CANDIDATES {
        return None;
    }
    let solve = |subset: &[usize]| -> Option<Mrz> {
        let mut candidate = texts.clone();
        for &k in subset {
            let (line, column, _, to) = candidates[k];
            *candidate.get_mut(line - 1)?.get_mut(column - 1)? = to;
        }
        let candidate: Vec<String> = candidate.into_iter().map(String::from_iter).collect();
        parse_with_filler_fix(&candidate, today)
            .ok()
            .filter(Mrz::all_check_digits_valid)
    };
    // Every swap must be confirmed by its glyph's height. The check digits
    // alone cannot prove a swap: a misread that is no look-alike leaves the
    // truth out of every set of swaps, and the document number weighs in the
    // composite exactly as in its own check digit, so a wrong set satisfies
    // both one time in ten.
    let confirmed = |&(line, column, _, _): &LookalikeSwap| {
        lines
            .get(line - 1)
            .and_then(|l| l.confirmed.get(column - 1))
            .copied()
            .unwrap_or(false)
    };
    let all_confirmed = |subset: &[usize]| subset.iter().all(|&k| confirmed(&candidates[k]));
    for size in 1..=MAX_LOOKALIKE_SWAPS {
        let mut found: Option<(Mrz, Vec<usize>)> = None;
        for subset in combinations(candidates.len(), size) {
            if !all_confirmed(&subset) {
                continue;
            }
            if let Some(mrz) = solve(&subset) {
                if found.is_some() {
                    return None;
                }
                found = Some((mrz, subset));
            }
        }
        let Some((mrz, subset)) = found else { continue };
        let rival = combinations(candidates.len(), size + 1)
            .filter(|larger| !subset.iter().all(|k| larger.contains(k)))
            .any(|larger| solve(&larger).is_some());
        if rival {
            return None;
        }
        return Some((mrz, subset.iter().map(|&k| candidates[k]).collect()));
    }
    None
}

/// Every set of `size` indexes below `n`, each in increasing order.
fn combinations(n: usize, size: usize) -> impl Iterator<Item = Vec<usize>> {
    let mut next: Option<Vec<usize>> = (size <= n).then(|| (0..size).collect());
    std::iter::from_fn(move || {
        let current = next.take()?;
        let mut following = current.clone();
        // The rightmost index that can still move right, and everything after it reset.
        if let Some(at) = (0..size).rev().find(|&at| following[at] < n - size + at) {
            following[at] += 1;
            for later in at + 1..size {
                following[later] = following[later - 1] + 1;
            }
            next = Some(following);
        }
        Some(current)
    })
}

/// Characters below this probability in a field no check digit covers make
/// the zone unverified.
pub const UNCOVERED_MIN_CONFIDENCE: f32 = 0.2;

/// A runner-up at least this fraction of the reading's probability, in a
/// field no check digit covers, makes the zone unverified (`<` read as `K`
/// between two names is the usual case).
pub const UNCOVERED_MAX_RUNNER_UP: f32 = 0.25;

/// Columns (0-based, per line) of the fields no check digit covers: document
/// code, issuing state, name, nationality, sex.
fn uncovered(format: mrz::MrzFormat, line: usize, column: usize) -> bool {
    use mrz::MrzFormat::*;
    match (format, line) {
        (Td1, 0) => column < 5,
        (Td1, 1) => column == 7 || (15..18).contains(&column),
        (Td1, _) => true,
        (_, 0) => true,
        (_, _) => (10..13).contains(&column) || column == 20,
    }
}

/// The check that the fields no check digit protects were read with
/// confidence and without a miscounted name line: a name line whose length
/// the parser had to repair may have lost a letter rather than a filler.
/// Fails with `mrz_check_digit`, the reason that sends a zone to be captured again.
fn unverified_check(mrz: &Mrz, lines: &[MrzLine]) -> Check {
    let mut lowest = 1.0f32;
    let mut doubtful = false;
    for (i, line) in lines.iter().enumerate() {
        for (j, &confidence) in line.confidences.iter().enumerate() {
            if !uncovered(mrz.format, i, j) {
                continue;
            }
            lowest = lowest.min(confidence);
            // A letter whose runner-up is the filler (`<` read as `K`
            // between names) is the confusion that changes a name.
            let read = line.text.chars().nth(j).unwrap_or('<');
            let runner_up = line
                .runners_up
                .get(j)
                .copied()
                .flatten()
                .filter(|&(c, _)| c == '<' && read != '<')
                .map_or(0.0, |(_, p)| p);
            let off_place = line.misplaced.get(j).copied().unwrap_or(false);
            doubtful |= confidence < UNCOVERED_MIN_CONFIDENCE
                || runner_up >= UNCOVERED_MAX_RUNNER_UP * confidence
                || off_place;
        }
    }
    let recounted = mrz
        .corrections
        .iter()
        .any(|c| c.kind == mrz::CorrectionKind::FillerCount);
    let passed = !doubtful && !recounted;
    check(
        "mrz_unprotected_fields_legible",
        passed,
        if passed { f64::from(lowest) } else { 0.0 },
        f64::from(UNCOVERED_MIN_CONFIDENCE),
        Reason::MrzIllegible,
    )
}

fn valid_count(mrz: &Mrz) -> usize {
    mrz.check_digits.iter().filter(|c| c.valid).count()
}

/// Parses `lines`; when a line is one or two characters off its format's
/// width, retries with its longest run of fillers stretched or shrunk to fit
/// (OCR miscounts runs of identical glyphs). The check digits then decide:
/// a wrong fix moves fields and fails them.
pub fn parse_with_filler_fix(lines: &[String], today: Date) -> Result<Mrz, MrzError> {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let first = mrz::parse_mrz_lines(&refs, today);
    if first.is_ok() {
        return first;
    }
    let Some(width) = target_width(lines) else {
        return first;
    };
    let fixed: Vec<String> = lines.iter().map(|l| fit_filler_run(l, width)).collect();
    if fixed == lines {
        return first;
    }
    let refs: Vec<&str> = fixed.iter().map(String::as_str).collect();
    match mrz::parse_mrz_lines(&refs, today) {
        Ok(mrz) => Ok(mrz),
        Err(_) => first,
    }
}

/// The format width the lines are nearest to, if each is within two of it
/// and the line count fits (3 lines: TD1; 2 lines: TD2/TD3).
fn target_width(lines: &[String]) -> Option<usize> {
    let candidates: &[usize] = match lines.len() {
        3 => &WIDTHS[..1],
        2 => &WIDTHS[1..],
        _ => return None,
    };
    candidates
        .iter()
        .copied()
        .find(|&w| lines.iter().all(|l| l.chars().count().abs_diff(w) <= 2))
}

/// `line` with its longest run of at least three fillers lengthened or
/// shortened so that the line is `width` long; unchanged when there is no such run.
pub fn fit_filler_run(line: &str, width: usize) -> String {
    let chars: Vec<char> = line.chars().collect();
    let len = chars.len();
    if len == width {
        return line.to_string();
    }
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let mut i = 0;
    while i < len {
        if chars[i] == '<' {
            let start = i;
            while i < len && chars[i] == '<' {
                i += 1;
            }
            if i - start > best_len {
                (best_start, best_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    if best_len < 3 {
        return line.to_string();
    }
    let new_len = if len < width {
        best_len + (width - len)
    } else if best_len > len - width + 1 {
        best_len - (len - width)
    } else {
        return line.to_string();
    };
    let mut out: String = chars[..best_start].iter().collect();
    out.extend(std::iter::repeat_n('<', new_len));
    out.extend(chars[best_start + best_len..].iter());
    out
}

/// The document type names `document_types` uses for a kind of MRZ document.
pub fn document_type_name(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Passport => "passport",
        DocumentKind::IdCard => "id_card",
        DocumentKind::ResidencePermit => "residence_permit",
        DocumentKind::Visa => "visa",
        DocumentKind::Other => "other",
    }
}

fn check(name: &str, passed: bool, score: f64, threshold: f64, reason: Reason) -> Check {
    Check {
        name: name.to_string(),
        passed,
        score,
        threshold,
        reason: Some(reason),
    }
}

/// The document checks. Without a parsed zone only `mrz_found` is reported.
pub fn checks(mrz: Option<&Mrz>, today: Date, policy: &DocumentPolicy) -> Vec<Check> {
    let Some(mrz) = mrz else {
        return vec![check("mrz_found", false, 0.0, 1.0, Reason::MrzNotFound)];
    };
    let mut out = vec![check("mrz_found", true, 1.0, 1.0, Reason::MrzNotFound)];
    let total = mrz.check_digits.len().max(1) as f64;
    let valid = mrz.check_digits.iter().filter(|c| c.valid).count() as f64;
    out.push(check(
        "mrz_check_digits",
        mrz.all_check_digits_valid(),
        valid / total,
        1.0,
        Reason::MrzCheckDigit,
    ));
    // Days left until expiry; a document without an expiry date never expires.
    let days_left = mrz
        .expiry_date
        .map(|expiry| (expiry - today).whole_days() as f64)
        .unwrap_or(f64::INFINITY);
    out.push(check(
        "document_not_expired",
        days_left >= 0.0,
        if days_left.is_finite() {
            days_left
        } else {
            0.0
        },
        0.0,
        Reason::DocumentExpired,
    ));
    let type_name = document_type_name(mrz.document_kind);
    let type_ok =
        policy.document_types.is_empty() || policy.document_types.iter().any(|t| t == type_name);
    out.push(check(
        "document_type_allowed",
        type_ok,
        f64::from(u8::from(type_ok)),
        1.0,
        Reason::DocumentTypeNotAllowed,
    ));
    let country = &mrz.issuing_state.alpha3;
    let country_ok = policy.document_countries.is_empty()
        || policy
            .document_countries
            .iter()
            .any(|c| c.eq_ignore_ascii_case(country));
    out.push(check(
        "document_country_allowed",
        country_ok,
        f64::from(u8::from(country_ok)),
        1.0,
        Reason::DocumentCountryNotAllowed,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TD3: [&str; 2] = [
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
        "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
    ];

    fn line(text: &str, cy: f32) -> MrzLine {
        MrzLine {
            text: text.to_string(),
            min_confidence: 0.9,
            confidences: vec![0.9; text.len()],
            alternatives: vec![None; text.len()],
            runners_up: vec![None; text.len()],
            misplaced: vec![false; text.len()],
            heights: Vec::new(),
            confirmed: Vec::new(),
            cx: 300.0,
            cy,
            width: 600.0,
            height: 20.0,
            angle: 0.0,
        }
    }

    /// A level text box.
    fn upright(cx: f32, cy: f32, width: f32, height: f32) -> TextBox {
        TextBox {
            cx,
            cy,
            width,
            height,
            angle: 0.0,
            score: 0.9,
        }
    }

    /// Marks the alternatives at `columns` (1-based) as confirmed by the
    /// glyphs' heights.
    fn confirm(line: &mut MrzLine, columns: &[usize]) {
        line.confirmed = vec![false; line.alternatives.len()];
        for &column in columns {
            line.confirmed[column - 1] = true;
        }
    }

    fn zone(texts: &[&str]) -> Vec<MrzLine> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| line(t, 400.0 + 30.0 * i as f32))
            .collect()
    }

    #[test]
    fn symbols_map_onto_the_mrz_alphabet() {
        assert_eq!(mrz_char("A"), Some('A'));
        assert_eq!(mrz_char("z"), Some('Z'));
        assert_eq!(mrz_char("7"), Some('7'));
        assert_eq!(mrz_char("<"), Some('<'));
        assert_eq!(mrz_char("‹"), Some('<'));
        assert_eq!(mrz_char("く"), Some('<'));
        assert_eq!(mrz_char("《"), Some('«'));
        assert_eq!(mrz_char("Ｋ"), Some('K'));
        assert_eq!(mrz_char("０"), Some('0'));
        assert_eq!(mrz_char("中"), None);
        assert_eq!(mrz_char(" "), None);
        assert_eq!(mrz_char("-"), None);
        assert_eq!(mrz_char("AB"), None);
        assert_eq!(mrz_char(""), None);
        assert_eq!(to_mrz_alphabet("p<uto Erik-sson《"), "P<UTOERIKSSON«");
    }

    #[test]
    fn filler_runs_stretch_and_shrink_to_the_width() {
        assert_eq!(fit_filler_run("AB<<<<CD", 10), "AB<<<<<<CD");
        assert_eq!(fit_filler_run("AB<<<<CD<<", 8), "AB<<CD<<");
        assert_eq!(fit_filler_run("AB<<<CD", 7), "AB<<<CD");
        // No run of three fillers: nothing to stretch.
        assert_eq!(fit_filler_run("AB<<CD", 8), "AB<<CD");
        // A run is never removed entirely.
        assert_eq!(fit_filler_run("AB<<<CD", 4), "AB<<<CD");
    }

    #[test]
    fn a_clean_zone_passes_every_check() {
        let reading = assess(
            zone(&TD3),
            date!(2010 - 01 - 01),
            &DocumentPolicy::default(),
        );
        let mrz = reading.mrz.as_ref().unwrap();
        assert_eq!(mrz.document_number, "L898902C3");
        assert_eq!(mrz.surname, "ERIKSSON");
        assert!(reading.passed(), "{:?}", reading.reasons);
        let names: Vec<&str> = reading.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mrz_found",
                "mrz_check_digits",
                "document_not_expired",
                "document_type_allowed",
                "document_country_allowed",
                "mrz_unprotected_fields_legible"
            ]
        );
    }

    #[test]
    fn expiry_type_and_country_give_their_reasons() {
        let policy = DocumentPolicy {
            document_types: vec!["id_card".into()],
            document_countries: vec!["DEU".into()],
        };
        let reading = assess(zone(&TD3), date!(2020 - 06 - 01), &policy);
        assert_eq!(
            reading.reasons,
            [
                Reason::DocumentExpired,
                Reason::DocumentTypeNotAllowed,
                Reason::DocumentCountryNotAllowed
            ]
        );
        let allowed = DocumentPolicy {
            document_types: vec!["passport".into()],
            document_countries: vec!["uto".into()],
        };
        let reading = assess(zone(&TD3), date!(2010 - 01 - 01), &allowed);
        assert!(reading.passed(), "{:?}", reading.reasons);
    }

    #[test]
    fn a_wrong_digit_is_a_check_digit_reason() {
        let bad = "L898902C36UTO7408122F1204159ZE184226B<<<<<10".replace("740812", "740813");
        let reading = assess(
            zone(&[TD3[0], &bad]),
            date!(2010 - 01 - 01),
            &DocumentPolicy::default(),
        );
        assert!(reading.mrz.is_some());
        assert_eq!(reading.reasons, [Reason::MrzCheckDigit]);
    }

    #[test]
    fn no_lines_or_garbage_is_mrz_not_found() {
        let today = date!(2010 - 01 - 01);
        let reading = assess(Vec::new(), today, &DocumentPolicy::default());
        assert_eq!(reading.reasons, [Reason::MrzNotFound]);
        assert!(reading.parse_error.is_none());
        let reading = assess(
            zone(&["HELLO<WORLD<THIS<IS<NOT<AN<MRZ"]),
            today,
            &DocumentPolicy::default(),
        );
        assert_eq!(reading.reasons, [Reason::MrzNotFound]);
        assert!(reading.parse_error.is_some());
    }

    #[test]
    fn a_miscounted_filler_run_is_refitted_and_proved_by_check_digits() {
        // The personal-number run of fillers read one short.
        let short = "L898902C36UTO7408122F1204159ZE184226B<<<<10";
        let reading = assess(
            zone(&[TD3[0], short]),
            date!(2010 - 01 - 01),
            &DocumentPolicy::default(),
        );
        let mrz = reading.mrz.as_ref().unwrap();
        assert!(mrz.all_check_digits_valid());
        assert_eq!(mrz.lines[1], TD3[1]);
    }

    #[test]
    fn a_runner_up_lookalike_that_alone_fixes_the_digits_is_taken() {
        // The personal number's Z read as 2: the parser never repairs an
        // alphanumeric field, the model's runner-up can.
        let truth = "L898902C36UTO7408122F1204159ZE184226B<<<<<10";
        let misread = truth.replacen("ZE", "2E", 1);
        let mut lines = zone(&[TD3[0], &misread]);
        let today = date!(2010 - 01 - 01);
        let plain = assess(lines.clone(), today, &DocumentPolicy::default());
        assert_eq!(plain.reasons, [Reason::MrzCheckDigit]);
        // The model's runner-up at that column was Z, but the glyph's height
        // says nothing: the check digits alone prove no swap.
        lines[1].alternatives[28] = Some('Z');
        let unconfirmed = assess(lines.clone(), today, &DocumentPolicy::default());
        assert_eq!(unconfirmed.reasons, [Reason::MrzCheckDigit]);
        assert!(unconfirmed.lookalike_swaps.is_empty());
        // The glyph stands as low as the capitals: a Z.
        confirm(&mut lines[1], &[29]);
        let reading = assess(lines.clone(), today, &DocumentPolicy::default());
        assert!(reading.passed(), "{:?}", reading.reasons);
        assert_eq!(reading.lookalike_swaps, [(2, 29, '2', 'Z')]);
        assert_eq!(reading.lines[1].text, truth);
        // A runner-up elsewhere that fixes nothing changes nothing.
        lines[1].alternatives[28] = None;
        lines[1].alternatives[5] = Some('S');
        let reading = assess(lines, today, &DocumentPolicy::default());
        assert_eq!(reading.reasons, [Reason::MrzCheckDigit]);
        assert!(reading.lookalike_swaps.is_empty());
    }

    #[test]
    fn letters_o_among_digits_are_restored_only_when_the_check_digits_single_them_out() {
        let today = date!(2010 - 01 - 01);
        let with_alternatives = |line2: &str, columns: &[usize]| {
            let mut lines = zone(&[TD3[0], line2]);
            for &column in columns {
                lines[1].alternatives[column - 1] = Some('O');
            }
            // Every one of them as low as the capitals.
            confirm(&mut lines[1], columns);
            lines
        };
        // Two letters O in the number, both read as 0: the pair of swaps is
        // the only explanation of one or two swaps, and is taken.
        let truth = "L8O89O2C35UTO7408122F1204159ZE184226B<<<<<12";
        let read = "L808902C35UTO7408122F1204159ZE184226B<<<<<12";
        let reading = assess(
            with_alternatives(read, &[3, 6]),
            today,
            &DocumentPolicy::default(),
        );
        assert!(reading.passed(), "{:?}", reading.reasons);
        assert_eq!(
            reading.lookalike_swaps,
            [(2, 3, '0', 'O'), (2, 6, '0', 'O')]
        );
        assert_eq!(reading.lines[1].text, truth);
        // The number LO89O02C3 read as L089002C3: one swap (the third 0)
        // satisfies every check digit, and so does the pair that is the
        // truth. A guess either way; nothing is swapped.
        let read = "L089002C35UTO7408122F1204159ZE184226B<<<<<12";
        let reading = assess(
            with_alternatives(read, &[2, 5, 6]),
            today,
            &DocumentPolicy::default(),
        );
        assert_eq!(reading.reasons, [Reason::MrzCheckDigit]);
        assert!(reading.lookalike_swaps.is_empty());
    }

    /// A TD3 data line with valid check digits.
    fn td3_line(number: &str, birth: &str, expiry: &str, personal: &str) -> String {
        let cd = |field: &str| {
            char::from(b'0' + mrz::check_digit(field).unwrap_or_else(|| panic!("{field}")))
        };
        let (number, personal) = (format!("{number:<<9}"), format!("{personal:<<14}"));
        let composite = format!(
            "{number}{}{birth}{}{expiry}{}{personal}{}",
            cd(&number),
            cd(birth),
            cd(expiry),
            cd(&personal)
        );
        format!(
            "{number}{}UTO{birth}{}F{expiry}{}{personal}{}{}",
            cd(&number),
            cd(birth),
            cd(expiry),
            cd(&personal),
            cd(&composite)
        )
    }

    #[test]
    fn a_misread_that_is_no_lookalike_is_never_repaired_into_an_accept() {
        // Every 0 and O of the alphanumeric fields has its look-alike as the
        // runner-up, as the model gives them; one digit of the number is
        // misread as another digit, which no look-alike swap can undo. Some
        // sets of swaps still satisfy the number's and the composite check
        // digits by chance (one in ten: the number weighs in the composite
        // as in its own check digit), and the glyphs' heights confirm none
        // of them: none may be taken.
        let today = date!(2010 - 01 - 01);
        let truth = td3_line("L0O9O2C0", "740812", "120415", "Z0E18O226B0");
        let alphanumeric = (0..9).chain(28..42);
        let mut attempts = 0;
        for at in [1usize, 3, 5, 7] {
            for digit in b'1'..=b'9' {
                let mut read: Vec<u8> = truth.bytes().collect();
                if read[at] == digit || !read[at].is_ascii_digit() {
                    continue;
                }
                read[at] = digit;
                let read: String = read.iter().map(|&b| char::from(b)).collect();
                let mut lines = zone(&[TD3[0], &read]);
                for column in alphanumeric.clone() {
                    let c = read.as_bytes()[column];
                    if c == b'0' || c == b'O' {
                        lines[1].alternatives[column] = Some(if c == b'0' { 'O' } else { '0' });
                    }
                }
                attempts += 1;
                let reading = assess(lines, today, &DocumentPolicy::default());
                assert!(
                    !reading.passed(),
                    "{read} accepted as {:?} with swaps {:?}",
                    reading.lines.iter().map(|l| &l.text).collect::<Vec<_>>(),
                    reading.lookalike_swaps
                );
            }
        }
        assert!(attempts > 20);
    }

    #[test]
    fn a_glyph_is_as_high_as_its_ink() {
        // Paper at 220, a glyph of ink at 20 over rows 10..34, half-inked
        // rows above and below it.
        let crop = RgbImage::from_fn(100, 48, |x, y| {
            let v = match (x, y) {
                (40..60, 10..34) => 20,
                (40..60, 9 | 34) => 120,
                _ => 220,
            };
            image::Rgb([v, v, v])
        });
        let levels = InkLevels::of(&crop).unwrap();
        let height = glyph_height(&crop, levels, 50.0, 12.0).unwrap();
        assert!((height - 25.0).abs() < 0.1, "{height}");
        // Nothing but paper there.
        assert_eq!(glyph_height(&crop, levels, 85.0, 8.0), None);
        // A blank crop has no ink to measure.
        assert!(InkLevels::of(&RgbImage::from_pixel(50, 48, image::Rgb([200; 3]))).is_none());
    }

    #[test]
    fn digits_standing_taller_than_capitals_rule_out_lookalikes() {
        let kinds = mrz::position_kinds(MrzFormat::Td3);
        let measured = |texts: &[&str], rise: f32| {
            let mut lines = zone(texts);
            for line in &mut lines {
                line.heights = line
                    .text
                    .chars()
                    .enumerate()
                    .map(|(j, c)| {
                        // A slight slope along the line, as a tilted photo gives.
                        let base = 22.0 + 0.02 * j as f32;
                        match c {
                            '0'..='9' => base + rise,
                            '<' => 16.0,
                            _ => base,
                        }
                    })
                    .collect();
            }
            lines
        };
        // The number's 0 (column 6) as tall as the digits, and the personal
        // number's 0 (column 35) as low as the capitals: an O read as 0.
        let line2 = "L898902C36UTO7408122F1204159ZE184206B<<<<<10";
        let mut lines = measured(&[TD3[0], line2], 2.2);
        lines[1].heights[34] = 22.0 + 0.02 * 34.0 + 0.5;
        lines[1].alternatives[5] = Some('O');
        lines[1].alternatives[34] = Some('O');
        lines[1].alternatives[28] = Some('2');
        let heights = GlyphHeights::fit(&lines, &kinds).unwrap();
        assert!((heights.rise - 2.2).abs() < 0.05, "{heights:?}");
        heights.rule_out_lookalikes(&mut lines);
        assert_eq!(lines[1].alternatives[5], None);
        assert_eq!(lines[1].alternatives[34], Some('O'));
        // The Z read as a capital's height: no 2.
        assert_eq!(lines[1].alternatives[28], None);
        // A failed measurement says nothing.
        let mut lines = measured(&[TD3[0], line2], 2.2);
        lines[1].alternatives[5] = Some('O');
        lines[1].heights[5] = 3.0;
        heights.rule_out_lookalikes(&mut lines);
        assert_eq!(lines[1].alternatives[5], Some('O'));
        // Print whose digits are no taller than its capitals tells nothing.
        assert!(GlyphHeights::fit(&measured(&[TD3[0], line2], 0.2), &kinds).is_none());
        // Nor do unmeasured glyphs.
        assert!(GlyphHeights::fit(&zone(&TD3), &kinds).is_none());
    }

    #[test]
    fn combinations_are_every_subset_of_a_size_once() {
        let all: Vec<Vec<usize>> = combinations(4, 2).collect();
        assert_eq!(
            all,
            [
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        assert_eq!(combinations(5, 3).count(), 10);
        assert_eq!(combinations(3, 3).count(), 1);
        assert_eq!(combinations(2, 3).count(), 0);
    }

    #[test]
    fn an_unsure_name_or_a_recounted_name_line_is_unverified() {
        let today = date!(2010 - 01 - 01);
        let mut lines = zone(&TD3);
        lines[0].confidences[7] = 0.15;
        let reading = assess(lines, today, &DocumentPolicy::default());
        assert!(reading.mrz.as_ref().unwrap().all_check_digits_valid());
        assert_eq!(reading.reasons, [Reason::MrzIllegible]);
        // A K whose runner-up is the filler, between the names.
        let mut lines = zone(&TD3);
        lines[0].runners_up[12] = Some(('<', 0.3));
        assert_eq!(
            assess(lines, today, &DocumentPolicy::default()).reasons,
            [Reason::MrzIllegible]
        );
        // Other runners-up in a letters-only field do not count.
        let mut lines = zone(&TD3);
        lines[0].runners_up[2] = Some(('0', 0.5));
        lines[0].runners_up[14] = Some(('K', 0.5));
        assert!(assess(lines, today, &DocumentPolicy::default()).passed());
        // Low confidence in a field a check digit covers is fine.
        let mut lines = zone(&TD3);
        lines[1].confidences[2] = 0.15;
        assert!(assess(lines, today, &DocumentPolicy::default()).passed());
        // The name line one filler short: repaired by the parser, not trusted.
        let short = &TD3[0][..43];
        let reading = assess(zone(&[short, TD3[1]]), today, &DocumentPolicy::default());
        assert_eq!(reading.reasons, [Reason::MrzIllegible]);
    }

    #[test]
    fn lookalikes_are_letter_digit_pairs() {
        assert!(are_lookalikes('O', '0') && are_lookalikes('0', 'O'));
        assert!(are_lookalikes('1', 'I') && are_lookalikes('B', '8'));
        assert!(
            !are_lookalikes('O', 'Q') && !are_lookalikes('A', '4') && !are_lookalikes('<', 'K')
        );
    }

    #[test]
    fn a_header_line_above_a_td3_zone_is_ignored() {
        let reading = assess(
            zone(&["ABCDEFGHIJKLMNOPQRSTUVWXYZ<<<<", TD3[0], TD3[1]]),
            date!(2010 - 01 - 01),
            &DocumentPolicy::default(),
        );
        assert!(
            reading.passed(),
            "{:?} {:?}",
            reading.reasons,
            reading.parse_error
        );
        assert_eq!(reading.lines.len(), 2);
    }

    #[test]
    fn pieces_of_one_line_are_merged_and_other_lines_are_not() {
        let b = |cx, cy, width| upright(cx, cy, width, 20.0);
        // Two pieces of one line with a 20-pixel gap, a line below, a far box on the same row.
        let merged = merge_collinear(&[
            b(200.0, 100.0, 300.0),
            b(420.0, 101.0, 100.0),
            b(250.0, 140.0, 400.0),
            b(900.0, 100.0, 50.0),
        ]);
        assert_eq!(merged.len(), 3, "{merged:?}");
        let line = merged[0];
        assert!((line.width - 420.0).abs() < 2.0, "{line:?}");
        assert!(
            (line.cx - 260.0).abs() < 1.0 && (line.height - 21.0).abs() < 1.5,
            "{line:?}"
        );
    }

    #[test]
    fn candidates_are_long_thin_boxes_top_to_bottom() {
        let b = |cy, width, height| upright(300.0, cy, width, height);
        let boxes = [
            b(500.0, 600.0, 20.0),
            b(100.0, 100.0, 30.0),
            b(470.0, 590.0, 20.0),
            b(50.0, 170.0, 20.0),
        ];
        let out = line_candidates(&boxes);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].cy, 470.0);
        assert_eq!(out[1].cy, 500.0);
    }

    #[test]
    fn digit_letter_pairs_are_the_parsers() {
        for (digit, letter) in DIGIT_LETTERS {
            assert_eq!(
                mrz::letter_for_digit_char(char_of(digit)),
                Some(char_of(letter))
            );
        }
        let mapped = ('0'..='9')
            .filter(|&d| mrz::letter_for_digit_char(d).is_some())
            .count();
        assert_eq!(mapped, DIGIT_LETTERS.len());
    }

    fn aligned_at(steps: &[usize]) -> Vec<Aligned> {
        steps
            .iter()
            .map(|&step| Aligned {
                symbol: 0,
                probability: 0.9,
                step,
                second: 1,
                second_probability: 0.0,
                rival: 1,
                rival_probability: 0.0,
            })
            .collect()
    }

    #[test]
    fn glyphs_off_the_regular_spacing_are_misplaced() {
        // Five steps a character, a little jitter: nothing is off.
        let regular: Vec<usize> = (0..20).map(|k| 3 + 5 * k + (k % 2)).collect();
        assert!(misplaced(&aligned_at(&regular)).iter().all(|&m| !m));
        // Characters 8..12 a whole pitch late (a letter lost before them, a
        // filler gained after them): those and only those are off.
        let shifted: Vec<usize> = (0..20)
            .map(|k| 3 + 5 * k + if (8..12).contains(&k) { 5 } else { 0 })
            .collect();
        let off = misplaced(&aligned_at(&shifted));
        let flagged: Vec<usize> = (0..20).filter(|&k| off[k]).collect();
        assert_eq!(flagged, [8, 9, 10, 11]);
    }

    #[test]
    fn the_zone_is_the_lowest_stack_of_long_lines() {
        let b = |cx, cy, width| upright(cx, cy, width, 20.0);
        // A header, the names, and a two-line zone whose first line's box
        // stops short of its trailing fillers.
        let boxes = [
            b(200.0, 40.0, 300.0),
            b(400.0, 150.0, 250.0),
            b(280.0, 400.0, 450.0),
            b(400.0, 430.0, 700.0),
        ];
        let frame = ZoneFrame::find(&boxes).unwrap();
        assert_eq!(frame.lines.len(), 2);
        assert_eq!(frame.lines[0].cy, 400.0);
        // The common extent is the longer line's: 50..750 around x = 400.
        assert!((frame.along.0 + 350.0).abs() < 1.0, "{frame:?}");
        assert!((frame.along.1 - 350.0).abs() < 1.0, "{frame:?}");
        assert!(ZoneFrame::find(&[b(100.0, 100.0, 100.0)]).is_none());
    }

    #[test]
    fn a_lone_check_digit_stretches_the_zone_and_every_length_is_tried() {
        let b = upright;
        // A TD3 zone with wide letter spacing: both boxes stop where the
        // fillers start; the last line's check digit is a box of its own,
        // lower than a line's.
        let boxes = [
            b(400.0, 400.0, 700.0, 36.0),
            b(400.0, 440.0, 700.0, 36.0),
            b(1100.0, 440.0, 30.0, 14.0),
        ];
        let frame = ZoneFrame::find(&boxes).unwrap();
        assert!((frame.along.1 - 715.0).abs() < 1.0, "{frame:?}");
        // Long for its height (about 44 pitches of 24): 44 first, then 36.
        assert_eq!(frame.line_lengths(), [44, 36]);
        // Dirt off the line's axis stretches nothing.
        let frame = ZoneFrame::find(&[boxes[0], boxes[1], b(1100.0, 470.0, 30.0, 14.0)]).unwrap();
        assert!((frame.along.1 - 350.0).abs() < 1.0, "{frame:?}");
        assert_eq!(frame.line_lengths(), [36, 44]);
        // Three lines: TD1 first.
        let frame = ZoneFrame::find(&[b(400.0, 360.0, 700.0, 36.0), boxes[0], boxes[1]]).unwrap();
        assert_eq!(frame.line_lengths(), [30, 36, 44]);
    }
}
