//! Rotated text boxes: how the detector describes a line, and how a line is
//! cut out of the photo upright for the recogniser. Pure geometry, no model.

use image::{Rgb, RgbImage};

/// A text line as a rotated rectangle in image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextBox {
    /// Centre, in pixels.
    pub cx: f32,
    pub cy: f32,
    /// Length along the line's direction (the longer side for a text line).
    pub width: f32,
    /// Extent across the line.
    pub height: f32,
    /// Direction of the line, radians, in (−π/2, π/2]; 0 is left to right.
    pub angle: f32,
    /// Mean text probability inside the region (0..1).
    pub score: f32,
}

impl TextBox {
    /// Unit vector along the line and unit vector across it (pointing down when `angle` is 0).
    pub fn axes(&self) -> ((f32, f32), (f32, f32)) {
        let (s, c) = self.angle.sin_cos();
        ((c, s), (-s, c))
    }

    /// The corners: top-left, top-right, bottom-right, bottom-left as read.
    pub fn corners(&self) -> [(f32, f32); 4] {
        let ((ux, uy), (vx, vy)) = self.axes();
        let (hw, hh) = (self.width / 2.0, self.height / 2.0);
        let at = |a: f32, b: f32| (self.cx + a * ux + b * vx, self.cy + a * uy + b * vy);
        [at(-hw, -hh), at(hw, -hh), at(hw, hh), at(-hw, hh)]
    }

    /// The rectangle grown by `by` pixels on every side.
    pub fn grown(&self, by: f32) -> TextBox {
        TextBox {
            width: (self.width + 2.0 * by).max(1.0),
            height: (self.height + 2.0 * by).max(1.0),
            ..*self
        }
    }

    /// The same rectangle in an image scaled by `sx` horizontally and `sy`
    /// vertically (a rotated rectangle stays nearly rectangular for the small
    /// aspect changes of resizing to multiples of 32).
    pub fn scaled(&self, sx: f32, sy: f32) -> TextBox {
        let corners = self.corners().map(|(x, y)| (x * sx, y * sy));
        TextBox::from_corners(corners, self.score)
    }

    /// A rectangle from four corners in reading order (see [`TextBox::corners`]).
    pub fn from_corners(corners: [(f32, f32); 4], score: f32) -> TextBox {
        let [tl, tr, br, bl] = corners;
        let cx = (tl.0 + tr.0 + br.0 + bl.0) / 4.0;
        let cy = (tl.1 + tr.1 + br.1 + bl.1) / 4.0;
        let top = (tr.0 - tl.0, tr.1 - tl.1);
        let bottom = (br.0 - bl.0, br.1 - bl.1);
        let dir = (top.0 + bottom.0, top.1 + bottom.1);
        let width = (hypot(top) + hypot(bottom)) / 2.0;
        let height = (hypot((bl.0 - tl.0, bl.1 - tl.1)) + hypot((br.0 - tr.0, br.1 - tr.1))) / 2.0;
        TextBox {
            cx,
            cy,
            width,
            height,
            angle: dir.1.atan2(dir.0),
            score,
        }
    }

    /// The oriented rectangle enclosing `points` whose long side follows
    /// their principal direction (for the pixels of a text line this is the
    /// minimum-area rectangle up to a fraction of a degree). The long side
    /// becomes `width`; `None` for no points.
    pub fn enclosing(points: &[(f32, f32)], score: f32) -> Option<TextBox> {
        if points.is_empty() {
            return None;
        }
        let n = points.len() as f32;
        let mx = points.iter().map(|p| p.0).sum::<f32>() / n;
        let my = points.iter().map(|p| p.1).sum::<f32>() / n;
        let (mut sxx, mut syy, mut sxy) = (0.0f32, 0.0f32, 0.0f32);
        for &(x, y) in points {
            let (dx, dy) = (x - mx, y - my);
            sxx += dx * dx;
            syy += dy * dy;
            sxy += dx * dy;
        }
        let mut angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
        let (mut width, mut height, mut cx, mut cy) = extent(points, angle, mx, my);
        if height > width {
            angle += std::f32::consts::FRAC_PI_2;
            (width, height, cx, cy) = extent(points, angle, mx, my);
        }
        Some(TextBox {
            cx,
            cy,
            width,
            height,
            angle: normalise_angle(angle),
            score,
        })
    }
}

fn hypot(v: (f32, f32)) -> f32 {
    (v.0 * v.0 + v.1 * v.1).sqrt()
}

/// Folds an angle into (−π/2, π/2]: a line read left to right.
fn normalise_angle(mut angle: f32) -> f32 {
    use std::f32::consts::PI;
    while angle > PI / 2.0 {
        angle -= PI;
    }
    while angle <= -PI / 2.0 {
        angle += PI;
    }
    angle
}

/// Width, height and centre of `points` measured along `angle` and across it.
/// Pixels are unit squares, so half a pixel is added on each side.
fn extent(points: &[(f32, f32)], angle: f32, mx: f32, my: f32) -> (f32, f32, f32, f32) {
    let (s, c) = angle.sin_cos();
    let (mut amin, mut amax, mut bmin, mut bmax) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for &(x, y) in points {
        let (dx, dy) = (x - mx, y - my);
        let a = dx * c + dy * s;
        let b = -dx * s + dy * c;
        amin = amin.min(a);
        amax = amax.max(a);
        bmin = bmin.min(b);
        bmax = bmax.max(b);
    }
    let (am, bm) = ((amin + amax) / 2.0, (bmin + bmax) / 2.0);
    (
        amax - amin + 1.0,
        bmax - bmin + 1.0,
        mx + am * c - bm * s,
        my + am * s + bm * c,
    )
}

/// Cuts `rect` out of `image`, upright, scaled so that its height becomes
/// `out_height` pixels and its width keeps the aspect ratio times `stretch`
/// (at most `max_width`). Bilinear sampling; outside the image reads as the
/// nearest edge pixel.
pub fn crop_upright(
    image: &RgbImage,
    rect: &TextBox,
    out_height: u32,
    max_width: u32,
    stretch: f32,
) -> RgbImage {
    let scale = out_height as f32 / rect.height.max(1.0) * stretch.max(0.1);
    let out_width = ((rect.width * scale).round() as u32).clamp(1, max_width.max(1));
    crop_to_size(image, rect, out_width, out_height)
}

/// Cuts `rect` out of `image` upright into exactly `out_width` × `out_height`
/// pixels: the rectangle's length maps onto the width and its extent across
/// onto the height, each with its own scale. The MRZ reader uses it to give
/// every character of a line the same number of recogniser steps whatever
/// the photo's resolution. Bilinear; outside the image reads as the nearest edge.
pub fn crop_to_size(image: &RgbImage, rect: &TextBox, out_width: u32, out_height: u32) -> RgbImage {
    let (out_width, out_height) = (out_width.max(1), out_height.max(1));
    let sx = rect.width / out_width as f32;
    let sy = rect.height / out_height as f32;
    let ((ux, uy), (vx, vy)) = rect.axes();
    let (x0, y0) = (
        rect.cx - rect.width / 2.0 * ux - rect.height / 2.0 * vx,
        rect.cy - rect.width / 2.0 * uy - rect.height / 2.0 * vy,
    );
    RgbImage::from_fn(out_width, out_height, |ox, oy| {
        let a = (ox as f32 + 0.5) * sx;
        let b = (oy as f32 + 0.5) * sy;
        sample_bilinear(
            image,
            x0 + a * ux + b * vx - 0.5,
            y0 + a * uy + b * vy - 0.5,
        )
    })
}

/// The colour at a fractional position (pixel centres at integers).
pub fn sample_bilinear(image: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 {
        return Rgb([0, 0, 0]);
    }
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |xx, yy| image.get_pixel(xx, yy).0;
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    let mut out = [0u8; 3];
    for (k, o) in out.iter_mut().enumerate() {
        let top = a[k] as f32 * (1.0 - fx) + b[k] as f32 * fx;
        let bottom = c[k] as f32 * (1.0 - fx) + d[k] as f32 * fx;
        *o = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    Rgb(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32, tol: f32) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn enclosing_an_axis_aligned_bar() {
        let points: Vec<(f32, f32)> = (10..50)
            .flat_map(|x| (20..26).map(move |y| (x as f32, y as f32)))
            .collect();
        let rect = TextBox::enclosing(&points, 1.0).unwrap();
        assert!(close(rect.width, 40.0, 0.01), "{rect:?}");
        assert!(close(rect.height, 6.0, 0.01), "{rect:?}");
        assert!(
            close(rect.cx, 29.5, 0.01) && close(rect.cy, 22.5, 0.01),
            "{rect:?}"
        );
        assert!(close(rect.angle, 0.0, 1e-4), "{rect:?}");
    }

    #[test]
    fn enclosing_a_rotated_bar_finds_its_angle() {
        let angle = 4f32.to_radians();
        let (s, c) = angle.sin_cos();
        let mut points = Vec::new();
        for a in 0..400 {
            for b in 0..40 {
                let (a, b) = (a as f32 * 0.5, b as f32 * 0.25);
                points.push((100.0 + a * c - b * s, 50.0 + a * s + b * c));
            }
        }
        let rect = TextBox::enclosing(&points, 1.0).unwrap();
        assert!(close(rect.angle, angle, 0.01), "{rect:?}");
        assert!(close(rect.width, 200.0, 2.0), "{rect:?}");
        assert!(close(rect.height, 10.75, 1.0), "{rect:?}");
    }

    #[test]
    fn a_tall_region_turns_into_a_wide_box() {
        let points: Vec<(f32, f32)> = (0..5)
            .flat_map(|x| (0..30).map(move |y| (x as f32, y as f32)))
            .collect();
        let rect = TextBox::enclosing(&points, 1.0).unwrap();
        assert!(rect.width > rect.height, "{rect:?}");
        assert!(
            close(rect.angle.abs(), std::f32::consts::FRAC_PI_2, 1e-3),
            "{rect:?}"
        );
        assert!(TextBox::enclosing(&[], 1.0).is_none());
    }

    #[test]
    fn corners_round_trip() {
        let rect = TextBox {
            cx: 40.0,
            cy: 30.0,
            width: 60.0,
            height: 12.0,
            angle: -0.07,
            score: 0.9,
        };
        let back = TextBox::from_corners(rect.corners(), 0.9);
        assert!(close(back.cx, rect.cx, 1e-3) && close(back.cy, rect.cy, 1e-3));
        assert!(close(back.width, rect.width, 1e-3) && close(back.height, rect.height, 1e-3));
        assert!(close(back.angle, rect.angle, 1e-4));
        let scaled = rect.scaled(2.0, 2.0);
        assert!(close(scaled.width, 120.0, 1e-3) && close(scaled.cx, 80.0, 1e-3));
        let grown = rect.grown(3.0);
        assert!(close(grown.width, 66.0, 1e-4) && close(grown.height, 18.0, 1e-4));
    }

    #[test]
    fn crop_upright_reads_a_rotated_patch_level() {
        // A white image with a dark bar tilted by 3°; cropped along the bar,
        // every pixel of the crop's middle row is dark.
        let angle = 3f32.to_radians();
        let rect = TextBox {
            cx: 100.0,
            cy: 60.0,
            width: 120.0,
            height: 10.0,
            angle,
            score: 1.0,
        };
        let image = RgbImage::from_fn(200, 120, |x, y| {
            let (dx, dy) = (x as f32 - 100.0, y as f32 - 60.0);
            let across = -dx * angle.sin() + dy * angle.cos();
            let along = dx * angle.cos() + dy * angle.sin();
            if across.abs() < 3.0 && along.abs() < 60.0 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        let crop = crop_upright(&image, &rect, 20, 1000, 1.0);
        assert_eq!(crop_upright(&image, &rect, 20, 1000, 1.5).width(), 360);
        assert_eq!(crop_upright(&image, &rect, 20, 300, 1.5).width(), 300);
        assert_eq!(crop.height(), 20);
        assert_eq!(crop.width(), 240);
        for x in 4..236 {
            assert!(crop.get_pixel(x, 10).0[0] < 60, "column {x}");
            assert!(crop.get_pixel(x, 0).0[0] > 200, "column {x}");
        }
    }
}
