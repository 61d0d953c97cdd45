//! Tests that run the real PP-OCRv4 models (`cargo xtask models` fetches
//! them; CI does not yet, hence `#[ignore]`). Text is rendered with the OCR-B
//! font of Debian's `fonts-ocr-b`.

use std::path::PathBuf;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use image::{Rgb, RgbImage};
use time::macros::date;

use super::*;
use crate::document::{DocumentPolicy, mrz_char, read_document};

const OCR_B: &str = "/usr/share/fonts/opentype/ocr-b/OCRB.otf";

fn model_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/files");
    for file in [DETECTOR_FILE, RECOGNIZER_FILE, KEYS_FILE] {
        assert!(
            dir.join(file).is_file(),
            "model file {} is missing: run `cargo xtask models` first",
            dir.join(file).display()
        );
    }
    dir
}

fn font() -> FontVec {
    let bytes = std::fs::read(OCR_B)
        .unwrap_or_else(|err| panic!("{OCR_B}: {err}; install Debian's fonts-ocr-b"));
    FontVec::try_from_vec(bytes).unwrap()
}

/// Draws `text` in black at (`x`, `baseline`), `px` pixels high.
fn draw(image: &mut RgbImage, font: &FontVec, text: &str, x: f32, baseline: f32, px: f32) {
    let scaled = font.as_scaled(PxScale::from(px));
    let mut pen = x;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        let glyph = id.with_scale_and_position(PxScale::from(px), ab_glyph::point(pen, baseline));
        pen += scaled.h_advance(id);
        if let Some(outlined) = font.outline_glyph(glyph) {
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, coverage| {
                let (px_, py_) = (
                    bounds.min.x as i32 + gx as i32,
                    bounds.min.y as i32 + gy as i32,
                );
                if px_ >= 0
                    && py_ >= 0
                    && (px_ as u32) < image.width()
                    && (py_ as u32) < image.height()
                {
                    let p = image.get_pixel_mut(px_ as u32, py_ as u32);
                    for v in p.0.iter_mut() {
                        *v = (*v as f32 * (1.0 - coverage)).round() as u8;
                    }
                }
            });
        }
    }
}

const TD3: [&str; 2] = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
];

fn passport() -> RgbImage {
    let font = font();
    let mut image = RgbImage::from_pixel(960, 640, Rgb([236, 230, 214]));
    draw(&mut image, &font, "PASSPORT UTOPIA", 60.0, 80.0, 36.0);
    draw(&mut image, &font, "ERIKSSON ANNA MARIA", 330.0, 220.0, 26.0);
    draw(&mut image, &font, TD3[0], 40.0, 540.0, 34.0);
    draw(&mut image, &font, TD3[1], 40.0, 590.0, 34.0);
    image
}

#[test]
#[ignore = "needs cargo xtask models"]
fn the_detector_finds_the_mrz_lines() {
    let detector =
        Detector::load(&model_dir().join(DETECTOR_FILE), DetectorOptions::default()).unwrap();
    let boxes = detector.detect(&passport()).unwrap();
    let long: Vec<&TextBox> = boxes.iter().filter(|b| b.width > 700.0).collect();
    assert_eq!(long.len(), 2, "{boxes:#?}");
    assert!((long[0].cy - 528.0).abs() < 15.0, "{long:?}");
    assert!((long[1].cy - 578.0).abs() < 15.0, "{long:?}");
    assert!(
        long.iter().all(|b| b.angle.abs() < 0.02 && b.height < 50.0),
        "{long:?}"
    );
}

#[test]
#[ignore = "needs cargo xtask models"]
fn the_recogniser_reads_an_mrz_line() {
    let dir = model_dir();
    let recognizer = Recognizer::load(&dir.join(RECOGNIZER_FILE), &dir.join(KEYS_FILE)).unwrap();
    assert_eq!(recognizer.dictionary().classes(), 6625);
    let mut line = RgbImage::from_pixel(1000, 48, Rgb([250, 250, 250]));
    draw(&mut line, &font(), TD3[1], 8.0, 38.0, 36.0);
    let mask = recognizer.dictionary().mask(|s| mrz_char(s).is_some());
    let read = recognizer.read_line(&line, Some(&mask)).unwrap();
    // O and 0 are one glyph apart in OCR-B; the MRZ parser tells them apart by field.
    assert_eq!(
        read.text.replace('O', "0"),
        TD3[1].replace('O', "0"),
        "{read:?}"
    );
    assert!(read.min_confidence > 0.3, "{read:?}");
}

#[test]
#[ignore = "needs cargo xtask models"]
fn a_rendered_passport_reads_with_every_check_digit() {
    let ocr = Ocr::load(&model_dir()).unwrap();
    let reading = read_document(
        &ocr,
        &passport(),
        date!(2010 - 01 - 01),
        &DocumentPolicy::default(),
    )
    .unwrap();
    let mrz = reading
        .mrz
        .as_ref()
        .unwrap_or_else(|| panic!("{reading:#?}"));
    assert!(mrz.all_check_digits_valid(), "{reading:#?}");
    assert_eq!(mrz.lines, TD3);
    assert!(reading.passed(), "{:?}", reading.reasons);
}

#[test]
#[ignore = "needs cargo xtask models"]
fn a_blank_page_has_no_mrz() {
    let ocr = Ocr::load(&model_dir()).unwrap();
    let blank = RgbImage::from_pixel(640, 448, Rgb([240, 240, 240]));
    let reading = read_document(
        &ocr,
        &blank,
        date!(2010 - 01 - 01),
        &DocumentPolicy::default(),
    )
    .unwrap();
    assert!(reading.mrz.is_none());
    assert_eq!(reading.reasons, [crate::reason::Reason::MrzNotFound]);
}

#[test]
fn a_missing_model_directory_is_a_clear_error() {
    let err = Ocr::load(std::path::Path::new("/nonexistent/models")).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("ppocr-v4-det.onnx") && message.contains("cargo xtask models"),
        "{message}"
    );
}
