//! Capture quality: is this picture good enough to read a document or
//! compare a face, before any model spends time on it?
//!
//! Why this exists: a blurred, dark or glared photo makes OCR misread and
//! face matching guess. Telling the user at once ("too dark, try again")
//! costs a second; finding out after the decision costs a review. Each check
//! reports its measured score and threshold, so staff see by how much a
//! capture missed, and the thresholds are named constants here, each with the
//! reason for its value.
//!
//! Everything but the resolution check looks at a grey copy of the picture
//! scaled down so its long side is at most [`WORKING_LONG_SIDE`]. That makes
//! the checks fast on large photos and, as important, makes the sharpness
//! score mean the same thing whatever the camera's resolution (the variance
//! of the Laplacian grows as a picture is scaled down).
//!
//! The thresholds were chosen on scenes the tests draw (a card with
//! text-like strokes and a portrait on a textured desk, at several sizes
//! and placements), by measuring the clear passes and clear failures and
//! putting each threshold between them with a margin, not by fitting one
//! picture. They are a first calibration: revisit them on real captures.

use image::{DynamicImage, GrayImage};

use crate::reason::{Check, Reason};

/// Long side, in pixels, of the grey copy the checks measure. Half of Full
/// HD: text strokes of a document filling a 1080p frame are still a few
/// pixels wide at this size, and the checks take milliseconds.
pub const WORKING_LONG_SIDE: u32 = 960;

/// Full HD, required in either orientation with `requireHdMedia`.
pub const HD: (u32, u32) = (1920, 1080);
/// VGA, always required: at 640 px a passport page that fills the frame
/// leaves about 11 px for each character of its machine-readable zone, near
/// the least OCR reads reliably.
pub const MINIMUM: (u32, u32) = (640, 480);

/// Sharpness (see [`sharpness`]) below which a picture is blurry.
///
/// Why this value: measured on the test scenes (1920×1080, 1280×720,
/// 1080×1920 and 3000×2000, cards of different sizes and places), a sharp
/// capture scores 8 800–13 800; blurred by a Gaussian of σ = 1 working pixel
/// (2 px at 1080p: text still crisp enough for OCR) 225–580; σ = 1.5
/// (borderline) 50–120; σ = 2 (strokes of the machine-readable zone merge)
/// 20–36; σ = 3 under 10. 100 puts the line at about σ = 1.5 working
/// pixels, passing what OCR can read and failing what it cannot. It is also
/// the customary threshold for the variance of the Laplacian of 8-bit grey
/// pictures. Sensor noise is discounted (see [`sharpness`]); noise much
/// beyond σ = 6 grey levels can still lift a blurred picture over the line.
pub const BLUR_THRESHOLD: f64 = 100.0;
/// Tile side, in working pixels, over which the Laplacian's variance is taken.
const TILE: u32 = 32;
/// Share of tiles, the sharpest, whose variance makes the score: a document
/// on a plain desk has detail in only part of the frame, and a blurred photo
/// has no sharp tile anywhere.
const SHARPEST_SHARE: f64 = 0.1;

/// Grey level from which a pixel counts as blown out.
const SATURATED: u8 = 250;
/// Smallest blob of blown-out pixels that counts as glare, as a share of the
/// working image: a specular dot or the white of an eye is not glare.
const MIN_GLARE_BLOB: f64 = 0.001;
/// Largest share of the picture that glare may cover. A card fills about
/// half of a good document capture, so 1 % of the frame is about 2 % of the
/// card: enough to hide a few characters of the machine-readable zone or
/// part of the portrait. On the test scenes (three sizes) a highlight blown
/// out over a radius of 40 px at 1080p covers 0.8–0.9 % of the frame, one of
/// 100 px 4–5 %, one of 160 px 9–11 %; a specular dot of 8 px, none (too
/// small a blob to count).
pub const GLARE_THRESHOLD: f64 = 0.01;

/// Which fraction of pixels the brightness score is taken at: the 90th
/// percentile, so a dark desk or background around a lit document does not
/// count as darkness, while a picture whose bright parts are dim does.
const BRIGHT_PERCENTILE: f64 = 0.9;
/// Brightness (0–255) below which a picture is too dark. A lit document or
/// face has its bright tenth above 150 (the test scenes: 224; darkened to
/// half 112, to 30 % 67, to 20 % 45, to 10 % 22). At 60 the paper of a
/// document is under a quarter of the range, and the text on it has so few
/// grey levels left that OCR and the face model lose it in noise.
pub const DARK_THRESHOLD: f64 = 60.0;

/// What was captured: decides which checks apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// A photo of an identity document (all checks; HD when required).
    IdentityDocument,
    /// A selfie or a liveness frame (no glare check: shine on skin is
    /// harmless; HD when required).
    Face,
    /// An uploaded general document such as a proof of address (no glare
    /// check: a scan's white paper is pure white; never HD, which the
    /// specification requires for camera steps only).
    GeneralDocument,
}

/// How strict to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualityPolicy {
    pub capture: Capture,
    /// The flow's `requireHdMedia` flag.
    pub require_hd: bool,
}

/// Runs every check that applies to the capture, in a fixed order:
/// resolution, sharpness, brightness, then glare.
pub fn assess(image: &DynamicImage, policy: &QualityPolicy) -> Vec<Check> {
    let grey = working_grey(image);
    let mut checks = vec![
        resolution_check(image.width(), image.height(), policy),
        sharpness_check(&grey),
        brightness_check(&grey),
    ];
    if policy.capture == Capture::IdentityDocument {
        checks.push(glare_check(&grey));
    }
    checks
}

/// The grey copy the checks measure (see the module documentation): each
/// working pixel is the mean grey of the block of pixels it covers.
pub fn working_grey(image: &DynamicImage) -> GrayImage {
    let (width, height) = (image.width(), image.height());
    let long = width.max(height);
    let (new_width, new_height) = if long <= WORKING_LONG_SIDE {
        (width, height)
    } else {
        let scale = |side: u32| {
            let scaled = u64::from(side) * u64::from(WORKING_LONG_SIDE) / u64::from(long);
            u32::try_from(scaled).unwrap_or(WORKING_LONG_SIDE).max(1)
        };
        (scale(width), scale(height))
    };
    // What cameras and decoders give, 8-bit RGB, RGBA or grey, is averaged
    // in one pass over the pixels: several times faster than converting and
    // then resizing with the `image` crate's generic code (about 30 ms, down
    // to under 8 ms, for 1920×1080 in a release build). Anything else goes
    // the generic way.
    let channels = match image {
        DynamicImage::ImageRgb8(_) => 3,
        DynamicImage::ImageRgba8(_) => 4,
        DynamicImage::ImageLuma8(_) => 1,
        _ => {
            let grey = image.to_luma8();
            return if (new_width, new_height) == (width, height) {
                grey
            } else {
                image::imageops::thumbnail(&grey, new_width, new_height)
            };
        }
    };
    box_grey(
        image.as_bytes(),
        channels,
        (width, height),
        (new_width, new_height),
    )
}

/// Averages `channels`-byte pixels into a `to`-sized grey image, each source
/// pixel falling into exactly one target pixel; grey is Rec. 709 luma, as
/// the `image` crate computes it.
fn box_grey(raw: &[u8], channels: usize, from: (u32, u32), to: (u32, u32)) -> GrayImage {
    let (w, h) = (from.0 as usize, from.1 as usize);
    let (nw, nh) = (to.0 as usize, to.1 as usize);
    if w == 0 || h == 0 {
        return GrayImage::new(to.0, to.1);
    }
    let column: Vec<usize> = (0..w).map(|x| x * nw / w).collect();
    let mut sums = vec![0u32; nw * nh];
    let mut counts = vec![0u32; nw * nh];
    for (y, row) in raw.chunks_exact(w * channels).take(h).enumerate() {
        let target_row = y * nh / h * nw;
        let sums = &mut sums[target_row..target_row + nw];
        let counts = &mut counts[target_row..target_row + nw];
        for (pixel, &target) in row.chunks_exact(channels).zip(&column) {
            let grey = if channels >= 3 {
                // 0.2126, 0.7152 and 0.0722, in 256ths.
                (54 * u32::from(pixel[0]) + 183 * u32::from(pixel[1]) + 19 * u32::from(pixel[2]))
                    >> 8
            } else {
                u32::from(pixel[0])
            };
            sums[target] += grey;
            counts[target] += 1;
        }
    }
    let pixels = sums
        .iter()
        .zip(&counts)
        .map(|(&sum, &count)| u8::try_from((sum + count / 2) / count.max(1)).unwrap_or(u8::MAX))
        .collect();
    GrayImage::from_raw(to.0, to.1, pixels).unwrap_or_else(|| GrayImage::new(to.0, to.1))
}

/// Resolution against [`MINIMUM`], or [`HD`] when the policy requires it and
/// the capture is a camera step. The score is the smaller of the long-side
/// and short-side ratios to the requirement; 1.0 passes.
pub fn resolution_check(width: u32, height: u32, policy: &QualityPolicy) -> Check {
    let hd = policy.require_hd && policy.capture != Capture::GeneralDocument;
    let (need_long, need_short) = if hd { HD } else { MINIMUM };
    let (long, short) = (width.max(height), width.min(height));
    let score =
        (f64::from(long) / f64::from(need_long)).min(f64::from(short) / f64::from(need_short));
    check(
        "resolution",
        score >= 1.0,
        score,
        1.0,
        Reason::LowResolution,
    )
}

/// Sharpness against [`BLUR_THRESHOLD`]; see [`sharpness`].
pub fn sharpness_check(grey: &GrayImage) -> Check {
    let score = sharpness(grey);
    check(
        "sharpness",
        score >= BLUR_THRESHOLD,
        score,
        BLUR_THRESHOLD,
        Reason::Blurry,
    )
}

/// Brightness against [`DARK_THRESHOLD`]; see [`brightness`].
pub fn brightness_check(grey: &GrayImage) -> Check {
    let score = brightness(grey);
    check(
        "brightness",
        score >= DARK_THRESHOLD,
        score,
        DARK_THRESHOLD,
        Reason::TooDark,
    )
}

/// Glare against [`GLARE_THRESHOLD`]; see [`glare`].
pub fn glare_check(grey: &GrayImage) -> Check {
    let score = glare(grey);
    check(
        "glare",
        score <= GLARE_THRESHOLD,
        score,
        GLARE_THRESHOLD,
        Reason::Glare,
    )
}

fn check(name: &str, passed: bool, score: f64, threshold: f64, reason: Reason) -> Check {
    Check {
        name: name.to_owned(),
        passed,
        // Four decimals: enough for a glare share, no noise for a person.
        score: (score * 10_000.0).round() / 10_000.0,
        threshold,
        reason: (!passed).then_some(reason),
    }
}

/// How much sharp detail a picture has: the variance of the 4-neighbour
/// Laplacian (grey levels 0–255) taken per 32×32 tile, averaged over the
/// sharpest tenth of the tiles, less the same average over the flattest
/// tenth. The subtraction removes the noise floor: in flat areas the
/// Laplacian sees only sensor noise, which is everywhere in a dim photo and
/// would otherwise pass for detail (noise of σ = 6 grey levels scores about
/// 200 on its own). Higher is sharper; a flat picture scores 0.
pub fn sharpness(grey: &GrayImage) -> f64 {
    let (width, height) = grey.dimensions();
    if width < 3 || height < 3 {
        return 0.0;
    }
    let (w, h) = (width as usize, height as usize);
    let pixels = grey.as_raw();
    let tiles_x = (width - 2).div_ceil(TILE) as usize;
    let tiles_y = (height - 2).div_ceil(TILE) as usize;
    // Per tile: count, sum and sum of squares of the Laplacian.
    let mut sums = vec![(0u32, 0i64, 0i64); tiles_x * tiles_y];
    for y in 1..h - 1 {
        let row = &pixels[y * w..(y + 1) * w];
        let up = &pixels[(y - 1) * w..y * w];
        let down = &pixels[(y + 1) * w..(y + 2) * w];
        let tile_row = (y - 1) / TILE as usize * tiles_x;
        for x in 1..w - 1 {
            let laplacian = i64::from(up[x])
                + i64::from(down[x])
                + i64::from(row[x - 1])
                + i64::from(row[x + 1])
                - 4 * i64::from(row[x]);
            let tile = &mut sums[tile_row + (x - 1) / TILE as usize];
            tile.0 += 1;
            tile.1 += laplacian;
            tile.2 += laplacian * laplacian;
        }
    }
    // Slivers of tiles at the right and bottom edges say little: leave out
    // any tile with under a quarter of a full tile's pixels.
    let full = sums.iter().map(|t| t.0).max().unwrap_or(0);
    let mut variances: Vec<f64> = sums
        .iter()
        .filter(|(n, _, _)| *n > 1 && *n >= full / 4)
        .map(|&(n, sum, squares)| {
            let n = f64::from(n);
            let mean = sum as f64 / n;
            (squares as f64 / n - mean * mean).max(0.0)
        })
        .collect();
    if variances.is_empty() {
        return 0.0;
    }
    variances.sort_by(|a, b| b.total_cmp(a));
    let take =
        ((variances.len() as f64 * SHARPEST_SHARE).ceil() as usize).clamp(1, variances.len());
    let sharpest = variances[..take].iter().sum::<f64>() / take as f64;
    let flattest = variances[variances.len() - take..].iter().sum::<f64>() / take as f64;
    (sharpest - flattest).max(0.0)
}

/// The grey level (0–255) that 90 % of the pixels are at or below.
pub fn brightness(grey: &GrayImage) -> f64 {
    let mut histogram = [0u64; 256];
    for &p in grey.as_raw() {
        histogram[usize::from(p)] += 1;
    }
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let wanted = (total as f64 * BRIGHT_PERCENTILE).ceil() as u64;
    let mut seen = 0;
    for (level, &count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= wanted {
            return level as f64;
        }
    }
    255.0
}

/// The share of the picture covered by glare: blown-out pixels (grey ≥ 250)
/// in 4-connected blobs of at least 0.1 % of the picture.
pub fn glare(grey: &GrayImage) -> f64 {
    let (width, height) = grey.dimensions();
    let (w, h) = (width as usize, height as usize);
    let total = w * h;
    if total == 0 {
        return 0.0;
    }
    let min_blob = ((total as f64 * MIN_GLARE_BLOB).ceil() as usize).max(1);
    let pixels = grey.as_raw();
    let mut seen = vec![false; total];
    let mut stack = Vec::new();
    let mut glared = 0usize;
    for start in 0..total {
        if seen[start] || pixels[start] < SATURATED {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut blob = 0usize;
        while let Some(i) = stack.pop() {
            blob += 1;
            let (x, y) = (i % w, i / w);
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < w).then(|| i + 1),
                (y > 0).then(|| i - w),
                (y + 1 < h).then(|| i + w),
            ];
            for n in neighbours.into_iter().flatten() {
                if !seen[n] && pixels[n] >= SATURATED {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
        if blob >= min_blob {
            glared += blob;
        }
    }
    glared as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A small deterministic generator, so every scene is reproducible.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u32
        }

        fn below(&mut self, n: u32) -> u32 {
            self.next() % n
        }
    }

    /// Where the card lies and how big, as shares of the frame.
    #[derive(Clone, Copy)]
    struct Layout {
        card_width: f64,
        left: f64,
        top: f64,
    }

    const CENTRED: Layout = Layout {
        card_width: 0.6,
        left: 0.2,
        top: 0.2,
    };

    /// A lit identity card on a textured desk: a portrait, lines of
    /// text-like strokes and a three-line machine-readable zone.
    fn card_scene(width: u32, height: u32, layout: Layout, seed: u64) -> RgbImage {
        let mut rng = Lcg(seed);
        let mut image = RgbImage::from_fn(width, height, |x, y| {
            let shade = 95 + (20 * (x + y) / (width + height)) as u8;
            Rgb([shade + 15, shade, shade - 20])
        });
        for p in image.pixels_mut() {
            let grain = rng.below(9) as u8;
            p.0 = p.0.map(|c| c.saturating_add(grain));
        }
        let card_w = (f64::from(width) * layout.card_width) as u32;
        let card_h = card_w * 54 / 86;
        let left = (f64::from(width) * layout.left) as u32;
        let top = (f64::from(height) * layout.top) as u32;
        fill(&mut image, left, top, card_w, card_h, Rgb([228, 224, 216]));
        // Portrait: a face-toned oval-ish block with a darker frame.
        let (pw, ph) = (card_w * 28 / 100, card_h * 45 / 100);
        fill(
            &mut image,
            left + card_w / 20,
            top + card_h / 8,
            pw,
            ph,
            Rgb([90, 80, 75]),
        );
        fill(
            &mut image,
            left + card_w / 20 + pw / 6,
            top + card_h / 8 + ph / 6,
            pw * 2 / 3,
            ph * 2 / 3,
            Rgb([200, 160, 140]),
        );
        // Text: glyph cells of random strokes, in lines right of the portrait
        // and in three machine-readable lines at the bottom.
        let glyph = (card_w / 45).max(4);
        let stroke = (glyph / 7).max(1);
        let ink = Rgb([35, 35, 45]);
        let mut write_line = |image: &mut RgbImage, x0: u32, y0: u32, count: u32| {
            for i in 0..count {
                let gx = x0 + i * glyph * 6 / 5;
                for _ in 0..3 {
                    match rng.below(3) {
                        0 => fill(
                            image,
                            gx + rng.below(glyph - stroke),
                            y0,
                            stroke,
                            glyph * 3 / 2,
                            ink,
                        ),
                        1 => fill(
                            image,
                            gx,
                            y0 + rng.below(glyph * 3 / 2 - stroke),
                            glyph,
                            stroke,
                            ink,
                        ),
                        _ => fill(
                            image,
                            gx + glyph / 4,
                            y0 + glyph / 2,
                            glyph / 2,
                            stroke,
                            ink,
                        ),
                    }
                }
            }
        };
        for line in 0..5 {
            let y = top + card_h / 8 + line * glyph * 2;
            write_line(&mut image, left + card_w * 38 / 100, y, 20);
        }
        for line in 0..3 {
            let y = top + card_h * 68 / 100 + line * glyph * 2;
            write_line(&mut image, left + card_w / 20, y, 30);
        }
        image
    }

    fn fill(image: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, colour: Rgb<u8>) {
        for yy in y..(y + h).min(image.height()) {
            for xx in x..(x + w).min(image.width()) {
                image.put_pixel(xx, yy, colour);
            }
        }
    }

    fn darkened(image: &RgbImage, factor: f64) -> RgbImage {
        let mut out = image.clone();
        for p in out.pixels_mut() {
            p.0 = p.0.map(|c| (f64::from(c) * factor).round() as u8);
        }
        out
    }

    /// A highlight centred at (`cx`, `cy`): brightness added with a soft
    /// fall-off, blown out to white within about `radius` pixels.
    fn with_highlight(image: &RgbImage, cx: u32, cy: u32, radius: f64) -> RgbImage {
        let mut out = image.clone();
        for (x, y, p) in out.enumerate_pixels_mut() {
            let d2 =
                (f64::from(x) - f64::from(cx)).powi(2) + (f64::from(y) - f64::from(cy)).powi(2);
            let add = 400.0 * (-d2 / (2.0 * (radius / 1.2).powi(2))).exp();
            p.0 = p.0.map(|c| (f64::from(c) + add).min(255.0) as u8);
        }
        out
    }

    fn grey_of(image: &RgbImage) -> GrayImage {
        working_grey(&DynamicImage::ImageRgb8(image.clone()))
    }

    fn sharpness_of(image: &RgbImage) -> f64 {
        sharpness(&grey_of(image))
    }

    /// The test scenes: sizes, orientations and card placements that differ,
    /// so no threshold is fitted to one picture.
    fn scenes() -> Vec<RgbImage> {
        vec![
            card_scene(1920, 1080, CENTRED, 1),
            card_scene(
                1280,
                720,
                Layout {
                    card_width: 0.45,
                    left: 0.1,
                    top: 0.3,
                },
                2,
            ),
            card_scene(
                1080,
                1920,
                Layout {
                    card_width: 0.8,
                    left: 0.1,
                    top: 0.35,
                },
                3,
            ),
        ]
    }

    /// Blurs as a defocused camera would, by `sigma` pixels of the working
    /// image (so the same amount of blur relative to the frame at any size).
    fn blurred(image: &RgbImage, working_sigma: f32) -> RgbImage {
        let long = image.width().max(image.height()) as f32;
        let sigma = working_sigma * long / WORKING_LONG_SIDE as f32;
        DynamicImage::ImageRgb8(image.clone()).blur(sigma).to_rgb8()
    }

    #[test]
    fn blur_lowers_sharpness_and_clear_blur_fails() {
        for scene in scenes() {
            let size = scene.dimensions();
            let sharp = sharpness_of(&scene);
            let slight = sharpness_of(&blurred(&scene, 1.0));
            let heavy = sharpness_of(&blurred(&scene, 2.0));
            let heavier = sharpness_of(&blurred(&scene, 3.0));
            assert!(
                sharp > slight && slight > heavy && heavy > heavier,
                "{size:?}: {sharp} {slight} {heavy} {heavier}"
            );
            // Clear passes with room to spare, clear failures.
            assert!(sharp > 10.0 * BLUR_THRESHOLD, "{size:?}: sharp {sharp}");
            assert!(slight > 1.5 * BLUR_THRESHOLD, "{size:?}: σ 1 {slight}");
            assert!(heavy < BLUR_THRESHOLD, "{size:?}: σ 2 {heavy}");
            let check = sharpness_check(&grey_of(&blurred(&scene, 2.5)));
            assert!(
                !check.passed && check.reason == Some(Reason::Blurry),
                "{size:?}: {check:?}"
            );
        }
    }

    fn noisy(image: &RgbImage, sigma: f64, seed: u64) -> RgbImage {
        let mut rng = Lcg(seed);
        let mut out = image.clone();
        for p in out.pixels_mut() {
            // Sum of four uniforms: near enough to Gaussian, σ as asked.
            let sum: f64 = (0..4)
                .map(|_| f64::from(rng.below(1000)) / 1000.0 - 0.5)
                .sum();
            let n = sum * sigma / (4.0f64 / 12.0).sqrt();
            p.0 =
                p.0.map(|c| (f64::from(c) + n).round().clamp(0.0, 255.0) as u8);
        }
        out
    }

    #[test]
    fn sensor_noise_does_not_pass_for_sharpness() {
        let scene = card_scene(1920, 1080, CENTRED, 9);
        let soft = blurred(&scene, 2.5);
        for sigma in [3.0, 6.0] {
            let sharp = sharpness_of(&noisy(&scene, sigma, 1));
            let blurry = sharpness_of(&noisy(&soft, sigma, 2));
            let dark = sharpness_of(&noisy(&darkened(&soft, 0.3), sigma, 3));
            assert!(
                sharp > 10.0 * BLUR_THRESHOLD,
                "noise {sigma}: sharp {sharp}"
            );
            assert!(blurry < BLUR_THRESHOLD, "noise {sigma}: blurred {blurry}");
            assert!(
                dark < BLUR_THRESHOLD,
                "noise {sigma}: dark and blurred {dark}"
            );
        }
    }

    #[test]
    fn the_working_copy_is_the_pictures_grey_scaled_down() {
        let scene = card_scene(1920, 1080, CENTRED, 8);
        let rgb = DynamicImage::ImageRgb8(scene.clone());
        let reference = image::imageops::thumbnail(&rgb.to_luma8(), 960, 540);
        for picture in [
            rgb.clone(),
            DynamicImage::ImageRgba8(rgb.to_rgba8()),
            DynamicImage::ImageLuma8(rgb.to_luma8()),
            DynamicImage::ImageRgb16(rgb.to_rgb16()),
        ] {
            let grey = working_grey(&picture);
            assert_eq!(grey.dimensions(), (960, 540));
            let worst = grey
                .as_raw()
                .iter()
                .zip(reference.as_raw())
                .map(|(&a, &b)| a.abs_diff(b))
                .max();
            assert!(worst <= Some(3), "{:?}: {worst:?}", picture.color());
        }
        // Small pictures are measured as they are; odd ones do not break it.
        assert_eq!(
            working_grey(&DynamicImage::new_rgb8(640, 480)).dimensions(),
            (640, 480)
        );
        assert_eq!(
            working_grey(&DynamicImage::new_rgb8(5000, 3)).dimensions(),
            (960, 1)
        );
        let dot = DynamicImage::new_rgb8(1, 1);
        let checks = assess(&dot, &policy(Capture::IdentityDocument, false));
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(failed, ["resolution", "sharpness", "brightness"]);
    }

    #[test]
    fn flat_pictures_have_no_sharpness() {
        let flat = GrayImage::from_pixel(200, 100, image::Luma([128]));
        assert_eq!(sharpness(&flat), 0.0);
        assert_eq!(sharpness(&GrayImage::new(2, 2)), 0.0);
    }

    #[test]
    fn darkness_lowers_brightness_and_clear_darkness_fails() {
        for scene in scenes() {
            let size = scene.dimensions();
            let scores: Vec<f64> = [1.0, 0.5, 0.2, 0.1]
                .iter()
                .map(|&f| brightness(&grey_of(&darkened(&scene, f))))
                .collect();
            assert!(
                scores.windows(2).all(|w| w[0] > w[1]),
                "{size:?}: {scores:?}"
            );
            assert!(
                scores[0] > 2.0 * DARK_THRESHOLD && scores[1] > DARK_THRESHOLD,
                "{size:?}: {scores:?}"
            );
            assert!(
                scores[2] < DARK_THRESHOLD && scores[3] < DARK_THRESHOLD,
                "{size:?}: {scores:?}"
            );
            let check = brightness_check(&grey_of(&darkened(&scene, 0.15)));
            assert_eq!(check.reason, Some(Reason::TooDark));
        }
    }

    #[test]
    fn a_lit_card_on_a_dark_desk_is_not_too_dark() {
        let lit = card_scene(1280, 720, CENTRED, 4);
        let mut dark_desk = darkened(&lit, 0.15);
        for (x, y, p) in dark_desk.enumerate_pixels_mut() {
            let card = lit.get_pixel(x, y);
            if card.0.iter().all(|&c| c > 200) {
                *p = *card;
            }
        }
        assert!(brightness_check(&grey_of(&dark_desk)).passed);
    }

    #[test]
    fn a_blown_out_highlight_is_glare_and_a_specular_dot_is_not() {
        for scene in scenes() {
            let (w, h) = scene.dimensions();
            let at = |r: f64| {
                glare(&grey_of(&with_highlight(
                    &scene,
                    w / 2,
                    h * 2 / 5,
                    r * f64::from(w.max(h)) / 1920.0,
                )))
            };
            let (none, dot, small, large, huge) = (
                glare(&grey_of(&scene)),
                at(8.0),
                at(25.0),
                at(100.0),
                at(160.0),
            );
            assert_eq!((none, dot), (0.0, 0.0), "{w}×{h}");
            assert!(
                small < large && large < huge,
                "{w}×{h}: {small} {large} {huge}"
            );
            assert!(small <= GLARE_THRESHOLD, "{w}×{h}: {small}");
            assert!(large > GLARE_THRESHOLD, "{w}×{h}: {large}");
            let check = glare_check(&grey_of(&with_highlight(&scene, w / 3, h / 2, 160.0)));
            assert_eq!(check.reason, Some(Reason::Glare));
        }
    }

    fn policy(capture: Capture, require_hd: bool) -> QualityPolicy {
        QualityPolicy {
            capture,
            require_hd,
        }
    }

    #[test]
    fn hd_means_1920_by_1080_either_way_round_for_camera_steps() {
        let hd = policy(Capture::IdentityDocument, true);
        assert!(resolution_check(1920, 1080, &hd).passed);
        assert!(resolution_check(1080, 1920, &policy(Capture::Face, true)).passed);
        let short = resolution_check(1920, 1000, &hd);
        assert!(!short.passed && short.reason == Some(Reason::LowResolution));
        assert!((short.score - 1000.0 / 1080.0).abs() < 0.001);
        assert!(!resolution_check(1280, 720, &policy(Capture::Face, true)).passed);
        // Without the flag, or for an uploaded general document, VGA is enough.
        assert!(resolution_check(1280, 720, &policy(Capture::IdentityDocument, false)).passed);
        assert!(resolution_check(640, 480, &policy(Capture::GeneralDocument, true)).passed);
        assert!(!resolution_check(600, 480, &policy(Capture::GeneralDocument, false)).passed);
        assert!(!resolution_check(0, 0, &hd).passed);
    }

    #[test]
    fn assess_runs_the_checks_that_apply_and_gives_reasons() {
        let scene = card_scene(1920, 1080, CENTRED, 5);
        let image = DynamicImage::ImageRgb8(scene.clone());
        let started = std::time::Instant::now();
        let checks = assess(&image, &policy(Capture::IdentityDocument, true));
        eprintln!("assess on 1920×1080 took {:?}", started.elapsed());
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["resolution", "sharpness", "brightness", "glare"]);
        assert!(
            checks.iter().all(|c| c.passed && c.reason.is_none()),
            "{checks:?}"
        );

        let face = assess(&image, &policy(Capture::Face, false));
        assert_eq!(face.len(), 3);

        let bad = DynamicImage::ImageRgb8(darkened(
            &blurred(&card_scene(800, 600, CENTRED, 6), 3.0),
            0.1,
        ));
        let reasons: Vec<Reason> = assess(&bad, &policy(Capture::GeneralDocument, true))
            .iter()
            .filter_map(|c| c.reason)
            .collect();
        assert_eq!(reasons, [Reason::Blurry, Reason::TooDark]);
    }
}
