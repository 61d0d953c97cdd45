//! [`DenseConv`]: a full (not depthwise) 3×3 or 5×5 convolution at stride 1
//! or 2 over channel-first `f32` planes, with its bias and activation, on
//! [`Pointwise`]'s tiles.
//!
//! tract runs such a convolution as a matrix product over a lazily unfolded
//! input (`LazyIm2col`); on PP-OCR's detection neck, two 96 → 24 channel
//! 3×3 convolutions over 120×160 positions took 21 ms each at one thread,
//! 19 G multiply-adds a second, most of the model. Here each block of 16
//! output positions is unfolded into the block layout (16 values per input
//! channel and tap, `C·K²` pairs of lanes), and the tiles of 6 output
//! channels sweep it exactly as they sweep a 1×1 convolution's inputs. At
//! stride 1 on a CPU with AVX-512 the tiles read their taps straight from
//! padded copies of the input rows instead ([`DenseConv::rows_direct`]):
//! the same sums, without writing every input value `K²` times.

use std::ops::Range;

use tract_onnx::tract_core::internal::*;

use super::pointwise::{
    BLOCK, Lane, PARALLEL_WORK, Pointwise, STRIP_FLOATS, Scratch, TILE_CHANNELS, par_spans,
    plane_dims, planes_fact, planes_mut, planes_shape,
};

/// The `len` values from `start` of each of a whole tile's 6 planes; none
/// for the last, narrower tile or past a plane's end.
#[cfg(target_arch = "x86_64")]
fn tile_slices<'a>(
    tile: &'a mut [&mut [f32]],
    start: usize,
    len: usize,
) -> Option<[&'a mut [f32]; TILE_CHANNELS]> {
    let [p0, p1, p2, p3, p4, p5] = tile else {
        return None;
    };
    Some([
        p0.get_mut(start..start + len)?,
        p1.get_mut(start..start + len)?,
        p2.get_mut(start..start + len)?,
        p3.get_mut(start..start + len)?,
        p4.get_mut(start..start + len)?,
        p5.get_mut(start..start + len)?,
    ])
}

/// A `kernel`×`kernel` convolution of `inputs` channels at `stride` (1 or
/// 2, on both axes), padded by `pads` (top, left, bottom, right); `pointwise` holds its weights as
/// `[O, inputs·kernel²]`, its bias and activation. When `pooled`, a 2×2
/// max-pooling at stride 2 follows in the same pass: each pair of output
/// rows is computed into a scratch and only their maxima are written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DenseConv {
    pub inputs: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pads: [usize; 4],
    pub pointwise: Pointwise,
    pub pooled: bool,
}

impl DenseConv {
    pub fn supported(kernel: usize, stride: usize) -> bool {
        matches!(kernel, 3 | 5) && matches!(stride, 1 | 2)
    }

    pub fn new(
        inputs: usize,
        (kernel, stride): (usize, usize),
        pads: [usize; 4],
        pointwise: Pointwise,
    ) -> TractResult<Self> {
        ensure!(
            Self::supported(kernel, stride)
                && pointwise.inputs == inputs * kernel * kernel
                && pads.iter().all(|&p| p < kernel),
            "no dense {kernel}×{kernel} convolution at stride {stride} of {inputs} channels \
             with pads {pads:?} over {} weights per output",
            pointwise.inputs
        );
        Ok(Self {
            inputs,
            kernel,
            stride,
            pads,
            pointwise,
            pooled: false,
        })
    }

    /// The convolution followed by a 2×2 max-pooling at stride 2 (a last
    /// odd row or column is dropped, as an unpadded pooling does).
    pub fn with_pooling(self) -> Self {
        Self {
            pooled: true,
            ..self
        }
    }

    /// The op's output height and width for an `h`×`w` input: the
    /// convolution's, halved when pooled.
    pub fn pooled_dims(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let (oh, ow) = self.output_dims(h, w)?;
        if !self.pooled {
            return Some((oh, ow));
        }
        (oh >= 2 && ow >= 2).then_some((oh / 2, ow / 2))
    }

    /// The convolution's output height and width for an `h`×`w` input.
    pub fn output_dims(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let (k, s) = (self.kernel, self.stride);
        let height = h + self.pads[0] + self.pads[2];
        let width = w + self.pads[1] + self.pads[3];
        (height >= k && width >= k).then(|| ((height - k) / s + 1, (width - k) / s + 1))
    }

    /// The multiply-adds of one run on an `h`×`w` input.
    pub fn work(&self, h: usize, w: usize) -> usize {
        self.output_dims(h, w).map_or(0, |(oh, ow)| {
            oh * ow * self.pointwise.inputs * self.pointwise.outputs
        })
    }

    /// Output rows `rows`: each row a few blocks at a time, unfolded into
    /// `strip`, then swept by every tile; `out[o]` holds output channel
    /// `o` from row `rows.start` on.
    fn rows(
        &self,
        input: &[f32],
        (h, w): (usize, usize),
        ow: usize,
        rows: Range<usize>,
        out: &mut [&mut [f32]],
    ) -> TractResult<()> {
        #[cfg(target_arch = "x86_64")]
        if self.stride == 1 && super::wide::available() {
            return match self.kernel {
                3 => self.rows_direct::<3>(input, (h, w), ow, rows, out),
                _ => self.rows_direct::<5>(input, (h, w), ow, rows, out),
            };
        }
        self.rows_unfolded(input, (h, w), ow, rows, out)
    }

    /// [`DenseConv::rows`] by unfolding: each block's inputs copied into
    /// the layout [`Pointwise::sweep`] reads.
    fn rows_unfolded(
        &self,
        input: &[f32],
        (h, w): (usize, usize),
        ow: usize,
        rows: Range<usize>,
        out: &mut [&mut [f32]],
    ) -> TractResult<()> {
        let unfold = match (self.kernel, self.stride) {
            (3, 1) => unfold_block::<3, 1>,
            (5, 1) => unfold_block::<5, 1>,
            (3, _) => unfold_block::<3, 2>,
            _ => unfold_block::<5, 2>,
        };
        let block_lanes = self.pointwise.inputs * 2;
        let blocks = ow.div_ceil(BLOCK);
        let strip_blocks = (STRIP_FLOATS / (block_lanes * 8)).clamp(2, blocks.max(2));
        let mut strip = Scratch::lanes(strip_blocks * block_lanes);
        for y in rows.clone() {
            let row_start = (y - rows.start) * ow;
            let mut first = 0;
            while first < blocks {
                let last = (first + strip_blocks).min(blocks);
                let strip = &mut strip[..(last - first) * block_lanes];
                for (b, block) in (first..last).zip(strip.chunks_exact_mut(block_lanes)) {
                    unfold(input, (h, w), self.pads, y, b * BLOCK, block);
                }
                let place = |b: usize| {
                    let column = (first + b) * BLOCK;
                    (row_start + column, BLOCK.min(ow - column))
                };
                self.pointwise.sweep(strip, place, out)?;
                first = last;
            }
        }
        Ok(())
    }

    /// [`DenseConv::rows`] at stride 1 on a CPU with AVX-512: no unfolding.
    /// For each output row, the `K` input rows it reads of every channel
    /// are copied into padded rows (zeros around, and past the end as far
    /// as the last block reads), and the tiles read their taps straight
    /// from there ([`super::wide::taps`]), four blocks at a time where a
    /// row has them. Unfolding wrote each input value `K²` times, 37 KB a
    /// block on the anti-spoofing model's 64-channel layer, a fifth of its
    /// time; the padded rows are `K` times the input rows.
    #[cfg(target_arch = "x86_64")]
    fn rows_direct<const K: usize>(
        &self,
        input: &[f32],
        (h, w): (usize, usize),
        ow: usize,
        rows: Range<usize>,
        out: &mut [&mut [f32]],
    ) -> TractResult<()> {
        use super::wide::taps;
        let (weights, bias) = self.pointwise.tiles()?;
        let channels = self.inputs;
        let [top, left, ..] = self.pads;
        let blocks = ow.div_ceil(BLOCK);
        let width = (left + w + self.pads[3]).max(blocks * BLOCK + K - 1);
        let mut padded = Scratch::floats(channels * K * width);
        let padded = &mut padded.floats_mut()[..channels * K * width];
        // The padding columns are zeros; nothing else writes them.
        for row in padded.chunks_exact_mut(width) {
            row[..left].fill(0.0);
            row[left + w..].fill(0.0);
        }
        let mut spare = [[0f32; BLOCK]; TILE_CHANNELS];
        for y in rows.clone() {
            for (c, channel) in padded.chunks_exact_mut(K * width).enumerate() {
                for (ky, row) in channel.chunks_exact_mut(width).enumerate() {
                    let iy = (y + ky).checked_sub(top).filter(|&iy| iy < h);
                    let row = &mut row[left..left + w];
                    match iy {
                        Some(iy) => row.copy_from_slice(&input[(c * h + iy) * w..][..w]),
                        None => row.fill(0.0),
                    }
                }
            }
            let row_start = (y - rows.start) * ow;
            for (tile, tile_out) in out.chunks_mut(TILE_CHANNELS).enumerate() {
                let weights = &weights[tile * channels * K * K..][..channels * K * K];
                let bias = &bias[tile];
                let clamp = self.pointwise.clamp;
                let mut b = 0;
                while b < blocks {
                    let col = b * BLOCK;
                    let start = row_start + col;
                    let whole = (ow - col) / BLOCK;
                    let count = if whole >= 4 { 4 } else { whole.min(2) };
                    if count > 0
                        && let Some(sums) = tile_slices(tile_out, start, count * BLOCK)
                    {
                        match count {
                            4 => taps::<K, 4>(padded, width, col, weights, bias, clamp, sums),
                            2 => taps::<K, 2>(padded, width, col, weights, bias, clamp, sums),
                            _ => taps::<K, 1>(padded, width, col, weights, bias, clamp, sums),
                        }
                        b += count;
                        continue;
                    }
                    // A block cut by the end of the row, or the last tile
                    // of fewer than 6 channels: into spare rows, then copied.
                    let len = BLOCK.min(ow - col);
                    let [s0, s1, s2, s3, s4, s5] = &mut spare;
                    let sums = [s0, s1, s2, s3, s4, s5].map(|s| &mut s[..]);
                    taps::<K, 1>(padded, width, col, weights, bias, clamp, sums);
                    for (plane, values) in tile_out.iter_mut().zip(&spare) {
                        plane[start..start + len].copy_from_slice(&values[..len]);
                    }
                    b += 1;
                }
            }
        }
        Ok(())
    }

    /// Pooled output rows `rows`: the convolution's rows `2y` and `2y + 1`
    /// of every channel into a scratch, then the maximum of each 2×2 square
    /// into `out[o]`, which holds pooled channel `o` from row `rows.start`
    /// on. The convolution's rows never reach memory beyond the cache.
    fn pooled_rows(
        &self,
        input: &[f32],
        (h, w): (usize, usize),
        ow: usize,
        rows: Range<usize>,
        out: &mut [&mut [f32]],
    ) -> TractResult<()> {
        let pw = ow / 2;
        let mut scratch = Scratch::floats(out.len() * 2 * ow);
        let scratch = &mut scratch.floats_mut()[..out.len() * 2 * ow];
        for y in rows.clone() {
            {
                let mut pair: Vec<&mut [f32]> = scratch.chunks_exact_mut(2 * ow).collect();
                self.rows(input, (h, w), ow, 2 * y..2 * y + 2, &mut pair)?;
            }
            let at = (y - rows.start) * pw;
            for (plane, pair) in out.iter_mut().zip(scratch.chunks_exact(2 * ow)) {
                let (upper, lower) = pair.split_at(ow);
                let pooled = &mut plane[at..at + pw];
                for ((o, a), b) in pooled
                    .iter_mut()
                    .zip(upper.chunks_exact(2))
                    .zip(lower.chunks_exact(2))
                {
                    *o = a[0].max(a[1]).max(b[0].max(b[1]));
                }
            }
        }
        Ok(())
    }
}

/// Unfolds the inputs of output row `y`, columns `j0 .. j0 + 16`: for each
/// input channel, kernel row and kernel column, the 16 input values that
/// tap multiplies, as two lanes (zeros in the padding).
fn unfold_block<const K: usize, const S: usize>(
    input: &[f32],
    (h, w): (usize, usize),
    pads: [usize; 4],
    y: usize,
    j0: usize,
    out: &mut [Lane],
) {
    // The input columns the block's taps reach: 16 outputs `S` apart.
    let len = S * (BLOCK - 1) + K;
    let start = (j0 * S) as isize - pads[1] as isize;
    let interior = start >= 0 && start as usize + len <= w;
    let mut offsets = [None; K];
    for (ky, offset) in offsets.iter_mut().enumerate() {
        let iy = (y * S + ky) as isize - pads[0] as isize;
        if iy >= 0 && (iy as usize) < h {
            *offset = Some(iy as usize * w);
        }
    }
    for (ch, lanes) in out.chunks_exact_mut(K * K * 2).enumerate() {
        let plane = &input[ch * h * w..][..h * w];
        for (offset, lanes) in offsets.iter().zip(lanes.chunks_exact_mut(K * 2)) {
            let Some(offset) = *offset else {
                lanes.fill([0.0; 8]);
                continue;
            };
            let row = &plane[offset..][..w];
            let mut window = [0f32; 40];
            let row: &[f32] = if interior {
                &row[start as usize..][..len]
            } else {
                // Near an edge: the row's values that exist, zeros around.
                let from = start.max(0) as usize;
                let to = (start + len as isize).min(w as isize).max(0) as usize;
                if from < to {
                    let at = (from as isize - start) as usize;
                    window[at..at + (to - from)].copy_from_slice(&row[from..to]);
                }
                &window[..len]
            };
            for (kx, pair) in lanes.chunks_exact_mut(2).enumerate() {
                if S == 1 {
                    let values = &row[kx..kx + BLOCK];
                    pair[0].copy_from_slice(&values[..8]);
                    pair[1].copy_from_slice(&values[8..]);
                } else {
                    for (j, value) in pair.as_flattened_mut().iter_mut().enumerate() {
                        *value = row[kx + S * j];
                    }
                }
            }
        }
    }
}

impl Op for DenseConv {
    fn name(&self) -> StaticName {
        "DenseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{k}×{k}{}, {} → {} channels{}{}",
            if self.stride > 1 {
                format!(" at stride {}", self.stride)
            } else {
                String::new()
            },
            self.inputs,
            self.pointwise.outputs,
            self.pointwise.clamp,
            if self.pooled {
                ", then 2×2 max-pooling"
            } else {
                ""
            },
            k = self.kernel
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for DenseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let (h, w) = plane_dims("DenseConv", input.shape(), self.inputs)?;
        let Some((oh, ow)) = self.output_dims(h, w) else {
            bail!("DenseConv: a {h}×{w} input is smaller than its kernel");
        };
        let data = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let outputs = self.pointwise.outputs;
        let Some((ph, pw)) = self.pooled_dims(h, w) else {
            bail!("DenseConv: a {h}×{w} input is too small to pool its output");
        };
        let mut tensor =
            self.pointwise
                .kept
                .take(&planes_shape(outputs, (ph, pw), self.pointwise.batch))?;
        let out = planes_mut(&mut tensor)?;
        let parallel = self.work(h, w) >= PARALLEL_WORK;
        if self.pooled {
            par_spans(out, ph * pw, pw, parallel, |span, slices| {
                self.pooled_rows(data, (h, w), ow, span.start / pw..span.end / pw, slices)
            })?;
        } else {
            par_spans(out, oh * ow, ow, parallel, |span, slices| {
                self.rows(data, (h, w), ow, span.start / ow..span.end / ow, slices)
            })?;
        }
        Ok(self.pointwise.kept.keep(tensor))
    }
}

impl TypedOp for DenseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (outputs, batch) = (self.pointwise.outputs, self.pointwise.batch);
        planes_fact("DenseConv", inputs[0], outputs, batch, |h, w| {
            self.pooled_dims(h, w)
        })
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Clamp;

    /// Read straight from padded rows, the sums are those of the unfolded
    /// blocks to the bit: the same multiply-adds in the same order.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn direct_taps_give_the_unfolded_sums() {
        if !super::super::wide::available() {
            eprintln!("no AVX-512 on this CPU: the direct taps are not tested");
            return;
        }
        // Rows of 70 (four blocks, then a cut one), 13 (narrower than a
        // block reads), 40 with a 5×5 kernel; 32 outputs leave a tile of 2.
        for (inputs, outputs, (h, w), kernel, pads) in [
            (5, 32, (9, 70), 3, [1, 1, 1, 1]),
            (3, 7, (6, 13), 3, [0, 1, 2, 0]),
            (4, 12, (8, 40), 5, [2, 2, 2, 2]),
        ] {
            let taps = inputs * kernel * kernel;
            let weights: Vec<f32> = (0..outputs * taps)
                .map(|i| ((i * 37 % 23) as f32) / 11.0 - 1.0)
                .collect();
            let bias: Vec<f32> = (0..outputs).map(|o| o as f32 / 8.0 - 0.5).collect();
            let weights = Tensor::from_shape(&[outputs, taps], &weights).unwrap();
            let clamp = Clamp {
                low: 0.0,
                high: 6.0,
            };
            let pointwise = Pointwise::new(&weights, &bias, clamp, false).unwrap();
            let conv = DenseConv::new(inputs, (kernel, 1), pads, pointwise).unwrap();
            let input: Vec<f32> = (0..inputs * h * w)
                .map(|i| ((i * 7919 % 1009) as f32) / 300.0 - 1.5)
                .collect();
            let (oh, ow) = conv.output_dims(h, w).unwrap();
            let run = |direct: bool| {
                let mut planes = vec![vec![7.0f32; oh * ow]; outputs];
                let mut out: Vec<&mut [f32]> = planes.iter_mut().map(|p| &mut p[..]).collect();
                if direct {
                    match kernel {
                        3 => conv.rows_direct::<3>(&input, (h, w), ow, 0..oh, &mut out),
                        _ => conv.rows_direct::<5>(&input, (h, w), ow, 0..oh, &mut out),
                    }
                    .unwrap();
                } else {
                    conv.rows_unfolded(&input, (h, w), ow, 0..oh, &mut out)
                        .unwrap();
                }
                planes
            };
            let (unfolded, direct) = (run(false), run(true));
            assert!(unfolded.iter().flatten().all(|&v| v != 7.0));
            assert_eq!(
                direct, unfolded,
                "{inputs} → {outputs}, {h}×{w}, {kernel}×{kernel}"
            );
        }
    }
}
