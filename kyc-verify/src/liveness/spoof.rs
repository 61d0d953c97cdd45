//! Presentation attacks and head movements made from a real photo, for the
//! model tests and the spoof calibration. Crude on purpose and documented
//! step by step, so what a score reacts to can be reasoned about.

use image::{Rgb, RgbImage};

use crate::face::align::sample_bilinear;

/// Deterministic noise in −1..1 from a pixel position (a hash, no state).
fn noise(x: u32, y: u32, salt: u32) -> f32 {
    let mut h = u64::from(x) | (u64::from(y) << 24) | (u64::from(salt) << 48);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h % 20_001) as f32 / 10_000.0 - 1.0
}

fn map_pixels(image: &RgbImage, f: impl Fn(u32, u32, [f32; 3]) -> [f32; 3]) -> RgbImage {
    let mut out = image.clone();
    for (x, y, px) in out.enumerate_pixels_mut() {
        let rgb = f(x, y, px.0.map(|c| f32::from(c) / 255.0));
        *px = Rgb(rgb.map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8));
    }
    out
}

/// The photo as if printed on paper and photographed again: ink gamma,
/// washed-out colour, the paper's white and the ink's black (a lower dynamic
/// range), a warm paper tint, a 4-pixel half-tone grid and paper grain.
pub fn printed(image: &RgbImage) -> RgbImage {
    map_pixels(image, |x, y, rgb| {
        let rgb = rgb.map(|c| c.powf(0.8));
        let grey = (rgb[0] + rgb[1] + rgb[2]) / 3.0;
        let tint = [1.0, 0.97, 0.88];
        let tau = std::f32::consts::TAU;
        let halftone = 0.04 * (x as f32 * tau / 4.0).sin() * (y as f32 * tau / 4.0).sin();
        let grain = 0.025 * noise(x, y, 1);
        let mut out = [0.0; 3];
        for c in 0..3 {
            let washed = grey + (rgb[c] - grey) * 0.7;
            out[c] = (0.12 + 0.78 * washed) * tint[c] + halftone + grain;
        }
        out
    })
}

/// The photo as if shown on a screen and filmed: a raised black level, a
/// cool white point, moiré (two slightly rotated gratings beating against
/// each other, as the screen's pixel grid does against the camera's) and a
/// glare spot of a window reflected at the upper right.
pub fn screen(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let long = w.max(h) as f32;
    let tau = std::f32::consts::TAU;
    let (sin_a, cos_a) = 3f32.to_radians().sin_cos();
    map_pixels(image, |x, y, rgb| {
        let (xf, yf) = (x as f32, y as f32);
        let moire = 0.05 * ((xf * cos_a + yf * sin_a) * tau / 6.0).sin() * (yf * tau / 6.3).sin();
        let r = ((yf - 0.3 * h as f32).powi(2) + (xf - 0.7 * w as f32).powi(2)).sqrt() / long;
        let glare = 0.35 * (-(r / 0.25).powi(2)).exp();
        let white = [0.92, 0.97, 1.08];
        let mut out = [0.0; 3];
        for c in 0..3 {
            out[c] = (0.05 + 0.9 * rgb[c]) * white[c] + moire + glare;
        }
        out
    })
}

/// A head turn or nod as a flat image can fake it: across the face (a band
/// `half_width` either side of `centre`, along x for a turn, along y for a
/// nod) one half is stretched and the other compressed so that `centre`
/// moves by `amount` × `half_width`, the way the far half of a turning head
/// is foreshortened. Outside the band nothing moves; across it the effect
/// fades out over the other axis's `fade` pixels. A five-point landmark
/// model reads less movement from this than from a real turn (the face's
/// outline and shading do not change), so tests that use it set their own,
/// lower bars.
pub fn foreshorten(
    image: &RgbImage,
    centre: (f32, f32),
    half_width: f32,
    fade: f32,
    amount: f32,
    vertical: bool,
) -> RgbImage {
    let mut out = image.clone();
    let c = amount.clamp(-0.9, 0.9);
    for (x, y, px) in out.enumerate_pixels_mut() {
        let (xf, yf) = (x as f32, y as f32);
        let (along, across, origin) = if vertical {
            (yf - centre.1, xf - centre.0, centre.1)
        } else {
            (xf - centre.0, yf - centre.1, centre.0)
        };
        let u = along / half_width;
        if u.abs() >= 1.0 {
            continue;
        }
        // Output position u came from: [-1, c] ← [-1, 0], [c, 1] ← [0, 1].
        let src = if u < c {
            -1.0 + (u + 1.0) / (1.0 + c)
        } else {
            (u - c) / (1.0 - c)
        };
        let weight = (-(across / fade).powi(4)).exp();
        let moved = origin + (src * half_width) * weight + along * (1.0 - weight);
        *px = if vertical {
            sample_bilinear(image, xf, moved)
        } else {
            sample_bilinear(image, moved, yf)
        };
    }
    out
}

/// The photo mirrored left to right: the same head turned the other way.
pub fn mirrored(image: &RgbImage) -> RgbImage {
    image::imageops::flip_horizontal(image)
}

/// The photo shifted by a whole number of pixels (edges repeat): the small
/// sway of a hand-held phone.
pub fn shifted(image: &RgbImage, dx: i32, dy: i32) -> RgbImage {
    let (w, h) = image.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let sx = (x as i32 - dx).clamp(0, w as i32 - 1) as u32;
        let sy = (y as i32 - dy).clamp(0, h as i32 - 1) as u32;
        *image.get_pixel(sx, sy)
    })
}
