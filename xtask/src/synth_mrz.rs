//! Synthetic travel documents for the MRZ evaluation: random holders and
//! numbers laid out as TD1, TD2 or TD3 with correct check digits, printed in
//! OCR-B on a card-like background, then photographed badly (rotation, blur,
//! noise, JPEG). Everything follows from one seed.

use std::path::Path;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use anyhow::{Context, Result, anyhow, bail};
use image::{Rgb, RgbImage};
use kyc_verify::mrz::{MrzFormat, check_digit};
use kyc_verify::ocr::sample_bilinear;
use time::{Date, Duration};

/// Where Debian's `fonts-ocr-b` puts the MRZ typeface.
pub const OCR_B_PATH: &str = "/usr/share/fonts/opentype/ocr-b/OCRB.otf";

/// A small deterministic generator (SplitMix64): the evaluation must give the
/// same documents for the same seed on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (0 for n = 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    pub fn chance(&mut self, p: f32) -> bool {
        self.uniform(0.0, 1.0) < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform(1e-7, 1.0);
        let u2 = self.uniform(0.0, 1.0);
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

const COUNTRIES: [&str; 16] = [
    "UTO", "D<<", "FRA", "ITA", "NLD", "ESP", "USA", "GBR", "CAN", "POL", "SWE", "AUT", "BEL",
    "CHE", "PRT", "IRL",
];

/// A random name component of 3 to 10 letters.
fn name_part(rng: &mut Rng) -> String {
    const CONSONANTS: &[u8] = b"BCDFGHJKLMNPRSTVWZ";
    const VOWELS: &[u8] = b"AEIOUY";
    let len = 3 + rng.below(8);
    (0..len)
        .map(|i| {
            let set = if i % 2 == 0 { CONSONANTS } else { VOWELS };
            set[rng.below(set.len())] as char
        })
        .collect()
}

fn alnum(rng: &mut Rng, len: usize, letter_share: f32) -> String {
    (0..len)
        .map(|_| {
            if rng.chance(letter_share) {
                (b'A' + rng.below(26) as u8) as char
            } else {
                (b'0' + rng.below(10) as u8) as char
            }
        })
        .collect()
}

/// `alnum` of `min + below(spread)` characters.
fn alnum_of_random_length(rng: &mut Rng, min: usize, spread: usize, letter_share: f32) -> String {
    let len = min + rng.below(spread);
    alnum(rng, len, letter_share)
}

fn digit_char(field: &str) -> Result<char> {
    let d = check_digit(field).ok_or_else(|| anyhow!("no check digit for {field:?}"))?;
    Ok((b'0' + d) as char)
}

fn yymmdd(date: Date) -> String {
    format!(
        "{:02}{:02}{:02}",
        date.year() % 100,
        u8::from(date.month()),
        date.day()
    )
}

/// `text` cut or filled with `<` to exactly `len` characters.
fn field(text: &str, len: usize) -> String {
    let mut out: String = text.chars().take(len).collect();
    while out.chars().count() < len {
        out.push('<');
    }
    out
}

/// A random document: its format, its MRZ lines, and the words printed above them.
#[derive(Debug, Clone)]
pub struct Document {
    pub format: MrzFormat,
    pub lines: Vec<String>,
    pub surname: String,
    pub given: String,
}

pub fn random_document(rng: &mut Rng, today: Date) -> Result<Document> {
    let format = match rng.below(3) {
        0 => MrzFormat::Td1,
        1 => MrzFormat::Td2,
        _ => MrzFormat::Td3,
    };
    let issuing = *rng
        .pick(&COUNTRIES)
        .ok_or_else(|| anyhow!("no countries"))?;
    let nationality = if rng.chance(0.8) {
        issuing
    } else {
        *rng.pick(&COUNTRIES)
            .ok_or_else(|| anyhow!("no countries"))?
    };
    let mut surname = name_part(rng);
    if rng.chance(0.2) {
        surname = format!("{surname}<{}", name_part(rng));
    }
    let given_count = 1 + rng.below(3);
    let given = (0..given_count)
        .map(|_| name_part(rng))
        .collect::<Vec<_>>()
        .join("<");
    let birth = today - Duration::days(365 * 18 + rng.below(365 * 60) as i64);
    let expiry = today + Duration::days(rng.below(365 * 12) as i64 - 365 * 2);
    let sex = *rng
        .pick(&['M', 'F', 'F', 'M', '<', 'X'])
        .ok_or_else(|| anyhow!("no sex"))?;
    let number = alnum(rng, 9, 0.3);
    let number_cd = digit_char(&number)?;
    let birth_s = yymmdd(birth);
    let expiry_s = yymmdd(expiry);
    let birth_cd = digit_char(&birth_s)?;
    let expiry_cd = digit_char(&expiry_s)?;
    let name = format!("{surname}<<{given}");
    let lines = match format {
        MrzFormat::Td3 => {
            let personal = if rng.chance(0.5) {
                field("", 14)
            } else {
                field(&alnum_of_random_length(rng, 6, 9, 0.2), 14)
            };
            let personal_cd = if personal.starts_with('<') {
                '<'
            } else {
                digit_char(&personal)?
            };
            let line1 = field(&format!("P<{issuing}{name}"), 44);
            let body = format!(
                "{number}{number_cd}{nationality}{birth_s}{birth_cd}{sex}{expiry_s}{expiry_cd}{personal}{personal_cd}"
            );
            let composite_input = format!("{}{}{}", &body[0..10], &body[13..20], &body[21..43]);
            let line2 = format!("{body}{}", digit_char(&composite_input)?);
            vec![line1, line2]
        }
        MrzFormat::Td2 => {
            let code = if rng.chance(0.5) { "I<" } else { "ID" };
            let optional = if rng.chance(0.6) {
                field("", 7)
            } else {
                field(&alnum_of_random_length(rng, 1, 7, 0.3), 7)
            };
            let line1 = field(&format!("{code}{issuing}{name}"), 36);
            let body = format!(
                "{number}{number_cd}{nationality}{birth_s}{birth_cd}{sex}{expiry_s}{expiry_cd}{optional}"
            );
            let composite_input = format!("{}{}{}", &body[0..10], &body[13..20], &body[21..35]);
            let line2 = format!("{body}{}", digit_char(&composite_input)?);
            vec![line1, line2]
        }
        _ => {
            let code = if rng.chance(0.5) { "I<" } else { "ID" };
            let optional1 = if rng.chance(0.6) {
                field("", 15)
            } else {
                field(&alnum_of_random_length(rng, 1, 12, 0.3), 15)
            };
            let optional2 = if rng.chance(0.7) {
                field("", 11)
            } else {
                field(&alnum_of_random_length(rng, 1, 11, 0.3), 11)
            };
            let line1 = format!("{code}{issuing}{number}{number_cd}{optional1}");
            let body2 =
                format!("{birth_s}{birth_cd}{sex}{expiry_s}{expiry_cd}{nationality}{optional2}");
            let composite_input = format!(
                "{}{}{}{}",
                &line1[5..30],
                &body2[0..7],
                &body2[8..15],
                &body2[18..29]
            );
            let line2 = format!("{body2}{}", digit_char(&composite_input)?);
            let line3 = field(&name, 30);
            vec![line1, line2, line3]
        }
    };
    for line in &lines {
        let expected = match format {
            MrzFormat::Td1 => 30,
            MrzFormat::Td2 | MrzFormat::MrvB => 36,
            MrzFormat::Td3 | MrzFormat::MrvA => 44,
        };
        if line.len() != expected {
            bail!(
                "generated line {line:?} is {} long, not {expected}",
                line.len()
            );
        }
    }
    Ok(Document {
        format,
        lines,
        surname: surname.replace('<', " "),
        given: given.replace('<', " "),
    })
}

/// The OCR-B font, loaded once.
pub fn load_font(path: &Path) -> Result<FontVec> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "reading {}: install Debian's fonts-ocr-b (apt-get install fonts-ocr-b)",
            path.display()
        )
    })?;
    FontVec::try_from_vec(bytes).map_err(|err| anyhow!("{}: not a font: {err}", path.display()))
}

/// How a run of text is printed: where it starts, its baseline, glyph size
/// (`px`), a fixed advance per character (`pitch`: MRZ printing is
/// monospaced; `None` keeps the font's) and its colour.
#[derive(Debug, Clone, Copy)]
struct Print {
    x: f32,
    baseline: f32,
    px: f32,
    pitch: Option<f32>,
    ink: [u8; 3],
}

fn draw_text(image: &mut RgbImage, font: &FontVec, text: &str, print: Print) {
    let Print {
        x,
        baseline,
        px,
        pitch,
        ink,
    } = print;
    let scale = PxScale::from(px);
    let scaled = font.as_scaled(scale);
    let mut pen = x;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        let glyph = id.with_scale_and_position(scale, point(pen, baseline));
        pen += pitch.unwrap_or_else(|| scaled.h_advance(id));
        let Some(outlined) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outlined.px_bounds();
        outlined.draw(|gx, gy, coverage| {
            let (px_, py_) = (
                bounds.min.x as i64 + gx as i64,
                bounds.min.y as i64 + gy as i64,
            );
            if px_ < 0 || py_ < 0 || px_ >= image.width() as i64 || py_ >= image.height() as i64 {
                return;
            }
            let p = image.get_pixel_mut(px_ as u32, py_ as u32);
            let c = coverage.clamp(0.0, 1.0);
            for (v, ink) in p.0.iter_mut().zip(ink) {
                *v = (*v as f32 * (1.0 - c) + ink as f32 * c).round() as u8;
            }
        });
    }
}

/// The printed card: background, portrait box, a few printed words, the MRZ at the bottom.
pub fn render_card(rng: &mut Rng, font: &FontVec, doc: &Document) -> RgbImage {
    // Physical size in mm, and the MRZ's 2.54 mm character pitch (Doc 9303).
    let (width_mm, height_mm, line_gap_mm) = match doc.format {
        MrzFormat::Td1 => (85.6, 54.0, 4.0),
        MrzFormat::Td2 | MrzFormat::MrvB => (105.0, 74.0, 4.3),
        MrzFormat::Td3 | MrzFormat::MrvA => (125.0, 88.0, 4.5),
    };
    let ppm = rng.uniform(7.0, 11.0); // pixels per mm
    let (w, h) = ((width_mm * ppm) as u32, (height_mm * ppm) as u32);
    let base = [
        200 + rng.below(50) as u8,
        200 + rng.below(50) as u8,
        190 + rng.below(60) as u8,
    ];
    let wave = rng.uniform(0.02, 0.08);
    let phase = rng.uniform(0.0, std::f32::consts::TAU);
    let mut card = RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let shade = 1.0 - 0.08 * fx - 0.05 * fy;
        // A faint guilloche-like pattern of sine lines.
        let pattern = ((x as f32 * wave + (y as f32 * 0.05 + phase).sin() * 6.0).sin() * 0.5 + 0.5)
            .powi(8)
            * 18.0;
        let mut px = [0u8; 3];
        for (k, v) in px.iter_mut().enumerate() {
            *v = (base[k] as f32 * shade - pattern).clamp(0.0, 255.0) as u8;
        }
        Rgb(px)
    });
    // Portrait: a grey, textured block.
    let (pw, ph) = (
        (width_mm * 0.28 * ppm) as u32,
        (height_mm * 0.5 * ppm) as u32,
    );
    let (px0, py0) = ((4.0 * ppm) as u32, (height_mm * 0.16 * ppm) as u32);
    let tone = 90 + rng.below(80) as u8;
    for y in py0..(py0 + ph).min(h) {
        for x in px0..(px0 + pw).min(w) {
            let v = tone.saturating_add(((x * 7 + y * 13) % 23) as u8);
            card.put_pixel(x, y, Rgb([v, v.saturating_sub(10), v.saturating_sub(20)]));
        }
    }
    // Printed words: a header and the holder's names.
    let text_ink = [
        40 + rng.below(40) as u8,
        40 + rng.below(40) as u8,
        60 + rng.below(60) as u8,
    ];
    let header = match doc.format {
        MrzFormat::Td3 | MrzFormat::MrvA => "PASSPORT",
        _ => "IDENTITY CARD",
    };
    let words = |x: f32, baseline: f32, px: f32| Print {
        x,
        baseline,
        px,
        pitch: None,
        ink: text_ink,
    };
    draw_text(
        &mut card,
        font,
        header,
        words(4.0 * ppm, 8.0 * ppm, 4.0 * ppm),
    );
    let tx = px0 as f32 + pw as f32 + 4.0 * ppm;
    draw_text(
        &mut card,
        font,
        &doc.surname,
        words(tx, py0 as f32 + 5.0 * ppm, 3.0 * ppm),
    );
    draw_text(
        &mut card,
        font,
        &doc.given,
        words(tx, py0 as f32 + 11.0 * ppm, 3.0 * ppm),
    );
    // The zone: the last line's baseline about 4 mm above the bottom edge.
    let pitch = 2.54 * ppm;
    let advance = font
        .as_scaled(PxScale::from(100.0))
        .h_advance(font.glyph_id('<'));
    let px_size = if advance > 0.0 {
        pitch * 100.0 / advance
    } else {
        3.5 * ppm
    };
    let ink = [
        10 + rng.below(30) as u8,
        10 + rng.below(30) as u8,
        10 + rng.below(30) as u8,
    ];
    let chars = doc.lines.first().map(|l| l.len()).unwrap_or(44) as f32;
    let left = ((width_mm - chars * 2.54) / 2.0 * ppm).max(ppm);
    let count = doc.lines.len() as f32;
    for (i, line) in doc.lines.iter().enumerate() {
        let baseline = h as f32 - (3.5 + (count - 1.0 - i as f32) * line_gap_mm) * ppm;
        let print = Print {
            x: left,
            baseline,
            px: px_size,
            pitch: Some(pitch),
            ink,
        };
        draw_text(&mut card, font, line, print);
    }
    card
}

/// How a card was photographed.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Capture {
    pub rotation_deg: f32,
    pub blur_sigma: f32,
    pub noise_sigma: f32,
    pub jpeg_quality: u8,
}

pub fn random_capture(rng: &mut Rng) -> Capture {
    Capture {
        rotation_deg: rng.uniform(-5.0, 5.0),
        blur_sigma: rng.uniform(0.0, 1.2),
        noise_sigma: rng.uniform(0.0, 8.0),
        jpeg_quality: 60 + rng.below(36) as u8,
    }
}

/// Puts the card on a table, rotates it, blurs, adds noise, JPEG round trip.
pub fn photograph(rng: &mut Rng, card: &RgbImage, capture: &Capture) -> Result<RgbImage> {
    let (cw, ch) = card.dimensions();
    let margin = (cw.max(ch) as f32 * 0.08) as u32;
    let (w, h) = (cw + 2 * margin, ch + 2 * margin);
    let table = [
        40 + rng.below(80) as u8,
        40 + rng.below(80) as u8,
        40 + rng.below(80) as u8,
    ];
    let (s, c) = capture.rotation_deg.to_radians().sin_cos();
    let (mx, my) = (w as f32 / 2.0, h as f32 / 2.0);
    let (cx, cy) = (cw as f32 / 2.0, ch as f32 / 2.0);
    let mut photo = RgbImage::from_fn(w, h, |x, y| {
        // Inverse rotation into the card's frame.
        let (dx, dy) = (x as f32 - mx, y as f32 - my);
        let (sx, sy) = (dx * c + dy * s + cx, -dx * s + dy * c + cy);
        if sx < -0.5 || sy < -0.5 || sx > cw as f32 - 0.5 || sy > ch as f32 - 0.5 {
            Rgb(table)
        } else {
            sample_bilinear(card, sx, sy)
        }
    });
    if capture.blur_sigma > 0.05 {
        photo = image::imageops::blur(&photo, capture.blur_sigma);
    }
    if capture.noise_sigma > 0.0 {
        for p in photo.pixels_mut() {
            for v in p.0.iter_mut() {
                *v = (*v as f32 + rng.normal() * capture.noise_sigma)
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
        }
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, capture.jpeg_quality)
        .encode_image(&photo)
        .context("JPEG encoding")?;
    let decoded = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
        .context("JPEG decoding")?;
    Ok(decoded.to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn generated_zones_parse_with_every_check_digit_valid() {
        let today = date!(2026 - 11 - 24);
        let mut rng = Rng::new(7);
        for _ in 0..300 {
            let doc = random_document(&mut rng, today).unwrap();
            let refs: Vec<&str> = doc.lines.iter().map(String::as_str).collect();
            let mrz = kyc_verify::mrz::parse_mrz_lines(&refs, today).unwrap();
            assert!(
                mrz.all_check_digits_valid(),
                "{:?} {:?}",
                doc.lines,
                mrz.check_digits
            );
            assert_eq!(mrz.format, doc.format);
            assert!(mrz.corrections.is_empty(), "{:?}", mrz.corrections);
        }
    }

    #[test]
    fn the_generator_is_deterministic() {
        let today = date!(2026 - 11 - 24);
        let a = random_document(&mut Rng::new(42), today).unwrap();
        let b = random_document(&mut Rng::new(42), today).unwrap();
        assert_eq!(a.lines, b.lines);
        let c = random_document(&mut Rng::new(43), today).unwrap();
        assert_ne!(a.lines, c.lines);
    }
}
