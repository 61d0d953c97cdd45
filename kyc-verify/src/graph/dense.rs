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
//! channels sweep it exactly as they sweep a 1×1 convolution's inputs.

use std::ops::Range;

use tract_onnx::tract_core::internal::*;

use super::pointwise::{
    BLOCK, Lane, PARALLEL_WORK, Pointwise, STRIP_FLOATS, Scratch, par_spans, plane_dims,
    planes_fact, planes_mut, planes_shape,
};

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
