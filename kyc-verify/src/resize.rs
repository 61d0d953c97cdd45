//! Resizing RGB images to the sizes the models read: the same pixels as
//! `image::imageops::resize` with its triangle (bilinear) filter, several
//! times faster.
//!
//! Every photo is scaled before a detector sees it: a 1280×720 video frame
//! to CenterFace's 384 columns, a selfie to 640, a document to PP-OCR's
//! detector size. `image`'s resize took 4.4 ms for one frame here, this one
//! 1.2 ms (release builds): `image`'s is written for any pixel type and
//! reaches every sample through a generic `get_pixel`. This one computes the same sums, in the same order and with
//! the same `f32` rounding, so the models see identical inputs (the tests
//! compare every byte), but as loops over whole rows the compiler
//! vectorises.
//!
//! Why identical and not merely close: the presentation-attack scores were
//! calibrated on these inputs. A SIMD resizer with the same filter
//! (`fast_image_resize`, tried) differs by one level here and there, which
//! moves a detected face by a fraction of a pixel, and the small liveness
//! model's score on a 32×32 crop moved enough to change which of the
//! calibration's spoofs the threshold catches.
//!
//! The method, as `image` does it: each output pixel's filter is a
//! triangle centred on its position in the input, widened by the scale when
//! shrinking; weights are normalised to sum to one. The columns are
//! filtered first (to `f32`, no rounding), then the rows, rounded to the
//! nearest level and clamped.

use image::RgbImage;

/// The input samples one output sample reads: `first..first + weights.len()`.
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// The taps of every output position when `source` samples become
/// `target`, with `image`'s arithmetic (see the module's comment).
fn taps(source: u32, target: u32) -> Vec<Taps> {
    let ratio = source as f32 / target as f32;
    let scale = if ratio < 1.0 { 1.0 } else { ratio };
    // The triangle's support is 1 input sample, widened by the scale.
    let support = scale;
    (0..target)
        .map(|out| {
            let centre = (out as f32 + 0.5) * ratio;
            let first = ((centre - support).floor() as i64).clamp(0, i64::from(source) - 1);
            let end = ((centre + support).ceil() as i64).clamp(first + 1, i64::from(source));
            let centre = centre - 0.5;
            let mut weights: Vec<f32> = (first..end)
                .map(|i| {
                    let x = ((i as f32 - centre) / scale).abs();
                    if x < 1.0 { 1.0 - x } else { 0.0 }
                })
                .collect();
            let sum = weights.iter().fold(0.0f32, |sum, &w| sum + w);
            for w in &mut weights {
                *w /= sum;
            }
            Taps {
                first: first as usize,
                weights,
            }
        })
        .collect()
}

/// `image` scaled to `width`×`height` with a triangle (bilinear) filter:
/// byte for byte what `image::imageops::resize(image, width, height,
/// FilterType::Triangle)` gives.
pub fn resize_rgb(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 || width == 0 || height == 0 {
        return RgbImage::new(width, height);
    }
    if (w, h) == (width, height) {
        return image.clone();
    }
    let (w, nw, nh) = (w as usize, width as usize, height as usize);
    let source = image.as_raw();
    let row_len = w * 3;

    // Columns first: output row `y` of every column, kept column by column
    // (`columns[x]` holds `nh` RGB samples) so that the row pass below
    // reads whole columns.
    let mut columns = vec![0f32; w * nh * 3];
    let mut sums = vec![0f32; row_len];
    for (y, taps) in taps(h, height).iter().enumerate() {
        sums.fill(0.0);
        for (i, &weight) in taps.weights.iter().enumerate() {
            let row = &source[(taps.first + i) * row_len..][..row_len];
            for (sum, &value) in sums.iter_mut().zip(row) {
                *sum += f32::from(value) * weight;
            }
        }
        for (x, pixel) in sums.chunks_exact(3).enumerate() {
            columns[(x * nh + y) * 3..][..3].copy_from_slice(pixel);
        }
    }

    // Then the rows: output column `x` of every row, from whole columns.
    let mut out = vec![0u8; nw * nh * 3];
    let column_len = nh * 3;
    let mut sums = vec![0f32; column_len];
    for (x, taps) in taps(w as u32, width).iter().enumerate() {
        sums.fill(0.0);
        for (i, &weight) in taps.weights.iter().enumerate() {
            let column = &columns[(taps.first + i) * column_len..][..column_len];
            for (sum, &value) in sums.iter_mut().zip(column) {
                *sum += value * weight;
            }
        }
        for (y, pixel) in sums.chunks_exact(3).enumerate() {
            let dst = &mut out[(y * nw + x) * 3..][..3];
            for (d, &v) in dst.iter_mut().zip(pixel) {
                *d = v.clamp(0.0, 255.0).round() as u8;
            }
        }
    }
    RgbImage::from_raw(width, height, out).unwrap_or_else(|| RgbImage::new(width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 % 251) as u8,
                (y * 5 % 241) as u8,
                ((x * y + 3 * x) % 239) as u8,
            ])
        })
    }

    #[test]
    fn the_same_bytes_as_image_triangle_filter() {
        let cases = [
            ((1280, 720), (384, 216)),
            ((1920, 1080), (640, 360)),
            ((640, 480), (333, 250)),
            ((50, 40), (120, 90)),
            ((7, 3), (5, 9)),
            ((1, 1), (4, 2)),
            ((300, 1), (17, 1)),
        ];
        for (source, target) in cases {
            let image = pattern(source.0, source.1);
            let ours = resize_rgb(&image, target.0, target.1);
            let theirs = image::imageops::resize(
                &image,
                target.0,
                target.1,
                image::imageops::FilterType::Triangle,
            );
            assert_eq!(ours.dimensions(), target);
            assert!(ours == theirs, "{source:?} → {target:?}");
        }
    }

    #[test]
    fn empty_and_same_size() {
        assert_eq!(resize_rgb(&RgbImage::new(0, 5), 4, 4).dimensions(), (4, 4));
        assert_eq!(resize_rgb(&pattern(8, 8), 0, 3).dimensions(), (0, 3));
        let image = pattern(9, 7);
        assert_eq!(resize_rgb(&image, 9, 7), image);
    }
}
