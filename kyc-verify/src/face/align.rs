//! Face alignment: the similarity transform (rotation, uniform scale,
//! translation — 4 degrees of freedom) that best maps the five detected
//! landmarks onto a fixed five-point template in the least-squares sense, and
//! a bilinear warp of the image through it. Description models compare faces
//! reliably only when eyes, nose and mouth land on the same pixels every time.

use image::{Rgb, RgbImage};

use super::detect::Point;

/// The usual five-point template (eyes, nose tip, mouth corners) for a
/// 112×112 crop, as the face recognition literature uses it.
pub const TEMPLATE_112: [Point; 5] = [
    Point {
        x: 38.2946,
        y: 51.6963,
    },
    Point {
        x: 73.5318,
        y: 51.5014,
    },
    Point {
        x: 56.0252,
        y: 71.7366,
    },
    Point {
        x: 41.5493,
        y: 92.3655,
    },
    Point {
        x: 70.7299,
        y: 92.2041,
    },
];

/// The template for a square crop of `size` pixels: [`TEMPLATE_112`] scaled,
/// then shrunk about the centre by `1 / (1 + 2·margin)` so `margin` (a fraction
/// of the face crop on each side) of extra context shows around the face.
pub fn template(size: u32, margin: f32) -> [Point; 5] {
    let s = size as f32 / 112.0;
    let shrink = 1.0 / (1.0 + 2.0 * margin.max(0.0));
    let c = size as f32 / 2.0;
    TEMPLATE_112.map(|p| Point {
        x: c + (p.x * s - c) * shrink,
        y: c + (p.y * s - c) * shrink,
    })
}

/// `u = a·x − b·y + tx`, `v = b·x + a·y + ty`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    /// Least-squares fit mapping `from[i]` onto `to[i]`; `None` when the
    /// source points all coincide (no scale or rotation can be told).
    pub fn fit(from: &[Point], to: &[Point]) -> Option<Self> {
        let n = from.len().min(to.len());
        if n < 2 {
            return None;
        }
        let nf = n as f64;
        let mean = |pts: &[Point]| {
            let (sx, sy) = pts[..n].iter().fold((0.0f64, 0.0f64), |(sx, sy), p| {
                (sx + f64::from(p.x), sy + f64::from(p.y))
            });
            (sx / nf, sy / nf)
        };
        let (fx, fy) = mean(from);
        let (tx, ty) = mean(to);
        let (mut num_a, mut num_b, mut den) = (0.0f64, 0.0f64, 0.0f64);
        for (p, q) in from[..n].iter().zip(&to[..n]) {
            let (x, y) = (f64::from(p.x) - fx, f64::from(p.y) - fy);
            let (u, v) = (f64::from(q.x) - tx, f64::from(q.y) - ty);
            num_a += x * u + y * v;
            num_b += x * v - y * u;
            den += x * x + y * y;
        }
        if den < 1e-9 {
            return None;
        }
        let (a, b) = (num_a / den, num_b / den);
        Some(Self {
            a: a as f32,
            b: b as f32,
            tx: (tx - (a * fx - b * fy)) as f32,
            ty: (ty - (b * fx + a * fy)) as f32,
        })
    }

    pub fn apply(&self, p: Point) -> Point {
        Point {
            x: self.a * p.x - self.b * p.y + self.tx,
            y: self.b * p.x + self.a * p.y + self.ty,
        }
    }

    /// The inverse transform; `None` for a degenerate (zero-scale) one.
    pub fn inverse(&self) -> Option<Self> {
        let d = self.a * self.a + self.b * self.b;
        if d < 1e-12 {
            return None;
        }
        let (a, b) = (self.a / d, -self.b / d);
        Some(Self {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }

    /// The uniform scale factor.
    pub fn scale(&self) -> f32 {
        (self.a * self.a + self.b * self.b).sqrt()
    }
}

/// Warps `image` so `landmarks` land on `template`, into a `size`×`size` crop.
/// Pixels that fall outside the source image are black.
pub fn align(
    image: &RgbImage,
    landmarks: &[Point; 5],
    template: &[Point; 5],
    size: u32,
) -> Option<RgbImage> {
    let to_crop = Similarity::fit(landmarks, template)?;
    let to_image = to_crop.inverse()?;
    Some(warp(image, &to_image, size, size))
}

/// Fills a `width`×`height` image by sampling `image` bilinearly at
/// `to_image(u, v)` for every output pixel centre.
pub fn warp(image: &RgbImage, to_image: &Similarity, width: u32, height: u32) -> RgbImage {
    let mut out = RgbImage::new(width, height);
    for (u, v, px) in out.enumerate_pixels_mut() {
        let p = to_image.apply(Point {
            x: u as f32,
            y: v as f32,
        });
        *px = sample_bilinear(image, p.x, p.y);
    }
    out
}

/// Bilinear sample at pixel coordinates (pixel centres at integers); black
/// outside the image.
pub fn sample_bilinear(image: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (w, h) = image.dimensions();
    if !(x > -1.0 && y > -1.0 && x < w as f32 && y < h as f32) {
        return Rgb([0, 0, 0]);
    }
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let fetch = |xi: i64, yi: i64| -> [f32; 3] {
        if xi < 0 || yi < 0 || xi >= i64::from(w) || yi >= i64::from(h) {
            [0.0; 3]
        } else {
            let p = image.get_pixel(xi as u32, yi as u32);
            [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
        }
    };
    let (p00, p10, p01, p11) = (
        fetch(x0, y0),
        fetch(x0 + 1, y0),
        fetch(x0, y0 + 1),
        fetch(x0 + 1, y0 + 1),
    );
    let mut rgb = [0u8; 3];
    for c in 0..3 {
        let top = p00[c] * (1.0 - fx) + p10[c] * fx;
        let bottom = p01[c] * (1.0 - fx) + p11[c] * fx;
        rgb[c] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    Rgb(rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_an_exact_similarity() {
        let truth = Similarity {
            a: 0.8 * 0.3f32.cos(),
            b: 0.8 * 0.3f32.sin(),
            tx: 12.0,
            ty: -7.5,
        };
        let from = TEMPLATE_112;
        let to = from.map(|p| truth.apply(p));
        let fit = Similarity::fit(&from, &to).unwrap();
        assert!((fit.a - truth.a).abs() < 1e-4, "{fit:?}");
        assert!((fit.b - truth.b).abs() < 1e-4);
        assert!((fit.tx - truth.tx).abs() < 1e-3);
        assert!((fit.ty - truth.ty).abs() < 1e-3);
        let back = fit.inverse().unwrap();
        for p in from {
            let q = back.apply(fit.apply(p));
            assert!((q.x - p.x).abs() < 1e-3 && (q.y - p.y).abs() < 1e-3);
        }
    }

    #[test]
    fn fit_is_least_squares_under_noise() {
        // Symmetric noise on two points cancels: the fit stays the identity.
        let from = [
            Point { x: 0.0, y: 0.0 },
            Point { x: 10.0, y: 0.0 },
            Point { x: 5.0, y: 5.0 },
        ];
        let to = [
            Point { x: 0.0, y: 1.0 },
            Point { x: 10.0, y: -1.0 },
            Point { x: 5.0, y: 5.0 },
        ];
        let fit = Similarity::fit(&from, &to).unwrap();
        assert!(fit.scale() > 0.95 && fit.scale() < 1.05);
        assert!(Similarity::fit(&[Point { x: 1.0, y: 1.0 }; 3], &to).is_none());
    }

    #[test]
    fn warp_moves_a_marked_pixel_to_the_template() {
        // A white dot at each landmark of a shifted, scaled face.
        let truth = Similarity {
            a: 2.0,
            b: 0.0,
            tx: 30.0,
            ty: 20.0,
        };
        let landmarks = TEMPLATE_112.map(|p| truth.apply(p));
        let mut image = RgbImage::new(300, 300);
        for p in landmarks {
            for dy in -2..=2 {
                for dx in -2..=2 {
                    image.put_pixel(
                        (p.x.round() as i32 + dx) as u32,
                        (p.y.round() as i32 + dy) as u32,
                        Rgb([255, 255, 255]),
                    );
                }
            }
        }
        let crop = align(&image, &landmarks, &TEMPLATE_112, 112).unwrap();
        for p in TEMPLATE_112 {
            assert_eq!(
                crop.get_pixel(p.x.round() as u32, p.y.round() as u32)[0],
                255
            );
        }
        assert_eq!(crop.get_pixel(5, 5)[0], 0);
    }

    #[test]
    fn template_margin_shrinks_about_the_centre() {
        let t = template(224, 0.0);
        assert!((t[0].x - 38.2946 * 2.0).abs() < 1e-3);
        let m = template(224, 0.25);
        let eye_gap = |t: &[Point; 5]| t[1].x - t[0].x;
        assert!((eye_gap(&m) / eye_gap(&t) - 1.0 / 1.5).abs() < 1e-4);
    }

    #[test]
    fn bilinear_interpolates_between_pixels() {
        let mut image = RgbImage::new(2, 1);
        image.put_pixel(1, 0, Rgb([200, 100, 0]));
        assert_eq!(sample_bilinear(&image, 0.5, 0.0), Rgb([100, 50, 0]));
        assert_eq!(sample_bilinear(&image, -5.0, 0.0), Rgb([0, 0, 0]));
    }
}
