//! Text detection with PP-OCRv4's DB model: the network gives a probability
//! map of (shrunk) text pixels; binarising it, splitting it into connected
//! regions and growing each region's rectangle back by the shrink DB trained
//! with gives one rotated box per text line.

use std::path::Path;

use image::RgbImage;

use super::OcrError;
use super::geometry::TextBox;
use super::model::{OnnxModel, bgr_tensor_padded};

/// How the probability map becomes boxes. The defaults are PaddleOCR's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorOptions {
    /// The longer side of the image given to the network (rounded to 32).
    pub max_side: u32,
    /// A pixel is text above this probability.
    pub threshold: f32,
    /// A region is kept when its mean probability reaches this.
    pub box_threshold: f32,
    /// How far the shrunk region is grown back: area × ratio / perimeter.
    pub unclip_ratio: f32,
    /// Regions thinner than this (pixels of the map) are dropped.
    pub min_size: f32,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self {
            max_side: 960,
            threshold: 0.3,
            box_threshold: 0.5,
            unclip_ratio: 1.6,
            min_size: 3.0,
        }
    }
}

/// The PP-OCRv4 text detector.
#[derive(Debug)]
pub struct Detector {
    model: OnnxModel,
    options: DetectorOptions,
}

impl Detector {
    pub fn load(path: &Path, options: DetectorOptions) -> Result<Self, OcrError> {
        Ok(Self {
            model: OnnxModel::load(path)?,
            options,
        })
    }

    pub fn options(&self) -> &DetectorOptions {
        &self.options
    }

    /// Text lines in `image`, in image pixels, top to bottom.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<TextBox>, OcrError> {
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        let (nw, nh) = network_size(w, h, self.options.max_side);
        let resized = crate::resize::resize_rgb(image, nw, nh);
        // Padded (with 0, mid-grey after normalisation) to a bucket, so that
        // photos of slightly different aspect share one optimised plan.
        let (pw, ph) = (padded_side(nw), padded_side(nh));
        let input = bgr_tensor_padded(&resized, pw as usize, ph as usize)?;
        let map = self.model.run(input, [1, 3, ph as usize, pw as usize])?;
        if map.len() != (pw * ph) as usize {
            return Err(OcrError::Inference(format!(
                "detector gave {} values for a {pw}x{ph} map",
                map.len()
            )));
        }
        let boxes = boxes_from_map(&map, pw as usize, ph as usize, &self.options);
        let (sx, sy) = (w as f32 / nw as f32, h as f32 / nh as f32);
        let mut boxes: Vec<TextBox> = boxes.iter().map(|b| b.scaled(sx, sy)).collect();
        boxes.sort_by(|a, b| a.cy.total_cmp(&b.cy));
        Ok(boxes)
    }
}

/// The network's input size: the longer side at most `max_side`, never
/// enlarged, each side a multiple of 32 (at least 32).
pub fn network_size(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let longer = width.max(height).max(1) as f32;
    let ratio = (max_side as f32 / longer).min(1.0);
    let round32 = |v: u32| (((v as f32 * ratio) / 32.0).round() as u32).max(1) * 32;
    (round32(width), round32(height))
}

/// Detector input sides are padded up to a multiple of this.
pub const SIDE_BUCKET: u32 = 160;

/// `side` rounded up to a multiple of [`SIDE_BUCKET`].
pub fn padded_side(side: u32) -> u32 {
    side.div_ceil(SIDE_BUCKET).max(1) * SIDE_BUCKET
}

/// Boxes from a probability map of `width` × `height` (row-major).
pub fn boxes_from_map(
    map: &[f32],
    width: usize,
    height: usize,
    options: &DetectorOptions,
) -> Vec<TextBox> {
    let mut boxes = Vec::new();
    for region in regions(map, width, height, options.threshold) {
        let score = region.iter().map(|&i| map[i]).sum::<f32>() / region.len() as f32;
        if score < options.box_threshold {
            continue;
        }
        let points: Vec<(f32, f32)> = region
            .iter()
            .map(|&i| ((i % width) as f32, (i / width) as f32))
            .collect();
        let Some(rect) = TextBox::enclosing(&points, score) else {
            continue;
        };
        if rect.height < options.min_size {
            continue;
        }
        let grow =
            rect.width * rect.height * options.unclip_ratio / (2.0 * (rect.width + rect.height));
        let grown = rect.grown(grow);
        if grown.height < options.min_size + 2.0 {
            continue;
        }
        boxes.push(grown);
    }
    boxes
}

/// 4-connected regions of pixels above `threshold`, each as its pixel indices.
pub fn regions(map: &[f32], width: usize, height: usize, threshold: f32) -> Vec<Vec<usize>> {
    let mut seen = vec![false; width * height];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..(width * height).min(map.len()) {
        if seen[start] || map[start] <= threshold {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut region = Vec::new();
        while let Some(i) = stack.pop() {
            region.push(i);
            let (x, y) = (i % width, i / width);
            let mut visit = |j: usize| {
                if !seen[j] && map[j] > threshold {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < width {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - width);
            }
            if y + 1 < height {
                visit(i + width);
            }
        }
        out.push(region);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_size_keeps_multiples_of_32_and_never_enlarges() {
        assert_eq!(network_size(1920, 1280, 960), (960, 640));
        assert_eq!(network_size(100, 50, 960), (96, 64));
        assert_eq!(network_size(10, 10, 960), (32, 32));
        let (w, h) = network_size(1000, 704, 960);
        assert_eq!((w % 32, h % 32), (0, 0));
        assert!(w <= 960);
    }

    #[test]
    fn sides_pad_to_buckets() {
        assert_eq!(padded_side(960), 960);
        assert_eq!(padded_side(640), 640);
        assert_eq!(padded_side(672), 800);
        assert_eq!(padded_side(32), 160);
    }

    #[test]
    fn two_separated_bars_give_two_boxes() {
        let (w, h) = (100usize, 40usize);
        let mut map = vec![0.0f32; w * h];
        for y in 8..12 {
            for x in 10..90 {
                map[y * w + x] = 0.9;
            }
        }
        for y in 24..28 {
            for x in 10..70 {
                map[y * w + x] = 0.8;
            }
        }
        // A speck that is too thin to be text.
        map[35 * w + 50] = 0.9;
        let boxes = boxes_from_map(&map, w, h, &DetectorOptions::default());
        assert_eq!(boxes.len(), 2, "{boxes:?}");
        let first = boxes[0];
        assert!((first.cy - 9.5).abs() < 0.01, "{first:?}");
        // Grown by area × 1.6 / perimeter = 80·4·1.6 / 168 ≈ 3.05 on each side.
        assert!(
            (first.height - (4.0 + 2.0 * 3.047)).abs() < 0.01,
            "{first:?}"
        );
        assert!(
            (first.width - (80.0 + 2.0 * 3.047)).abs() < 0.01,
            "{first:?}"
        );
        assert!((boxes[1].score - 0.8).abs() < 1e-5);
    }

    #[test]
    fn faint_regions_are_dropped() {
        let (w, h) = (50usize, 20usize);
        let mut map = vec![0.0f32; w * h];
        for y in 5..10 {
            for x in 5..45 {
                map[y * w + x] = 0.35;
            }
        }
        assert!(boxes_from_map(&map, w, h, &DetectorOptions::default()).is_empty());
        assert_eq!(regions(&map, w, h, 0.3).len(), 1);
    }
}
