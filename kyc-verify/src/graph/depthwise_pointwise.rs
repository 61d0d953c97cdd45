//! [`DepthwisePointwise`]: a depthwise convolution (its bias and an optional
//! ReLU) and the 1×1 convolution that reads it, in one pass over the rows.
//!
//! In an inverted-residual block (CenterFace's and PP-OCR's backbones) the
//! depthwise convolution works on the widest tensor of the block: 96 to 960
//! channels. Run as two ops, it writes that tensor out (8 MB on a CenterFace
//! liveness frame, far beyond the 1 MB second-level cache), and the 1×1
//! convolution reads it back and lays it out again in blocks of positions:
//! three passes over memory for arithmetic that is cheap. Here the depthwise
//! sums of a strip of output rows go straight into the block layout
//! [`Pointwise`] works on, a strip small enough to stay in cache, and the
//! 1×1 convolution's tiles sweep the strip before the next one is made.
//!
//! The output rows are also the unit of threading: each of tract's threads
//! takes a share of the rows and does both convolutions for them, where the
//! two ops alone would each split their work, one of them not at all.

use std::ops::Range;

use tract_onnx::tract_core::internal::*;

use super::pointwise::{
    BLOCK, Clamp, Lane, PARALLEL_WORK, Pointwise, STRIP_FLOATS, Scratch, par_spans, plane_dims,
    planes_fact, planes_mut, planes_shape,
};

/// A depthwise convolution of square `kernel`×`kernel` filters (3 or 5) at
/// `stride` 1 or 2 on both axes, over channel-first `f32` planes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Depthwise {
    pub channels: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Zero rows and columns before and after the input: top, left, bottom,
    /// right.
    pub pads: [usize; 4],
    /// `[C, kernel·kernel]`, row by row.
    pub weights: Arc<Tensor>,
    /// One per channel.
    pub bias: Arc<Tensor>,
    pub clamp: Clamp,
}

impl Depthwise {
    /// Whether this kernel size and stride have a compiled block function.
    pub fn supported(kernel: usize, stride: usize) -> bool {
        matches!((kernel, stride), (3, 1) | (3, 2) | (5, 1) | (5, 2))
    }

    /// The output height and width for an `h`×`w` input.
    pub fn output_dims(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let (k, s) = (self.kernel, self.stride);
        let height = h + self.pads[0] + self.pads[2];
        let width = w + self.pads[1] + self.pads[3];
        (height >= k && width >= k).then(|| ((height - k) / s + 1, (width - k) / s + 1))
    }

    /// The width of a row padded with the convolution's zero columns on
    /// both sides, and more on the right if a block reads further, for
    /// rows of `w` values and an output `ow` wide: in such rows every
    /// block reads inside the row.
    pub fn padded_width(&self, w: usize, ow: usize) -> usize {
        let blocks = ow.div_ceil(BLOCK).max(1);
        (self.pads[1] + w + self.pads[3]).max((blocks - 1) * BLOCK * self.stride + self.reach())
    }

    /// How many input columns a block of 16 outputs reads.
    pub fn reach(&self) -> usize {
        BLOCK * self.stride + self.kernel - 1
    }

    fn row_fn(&self) -> RowFn {
        #[cfg(target_arch = "x86_64")]
        if super::wide::available() {
            use super::wide::depthwise_row as wide;
            return match (self.kernel, self.stride) {
                (3, 1) => wide::<3, 1>,
                (3, 2) => wide::<3, 2>,
                (5, 1) => wide::<5, 1>,
                _ => wide::<5, 2>,
            };
        }
        match (self.kernel, self.stride) {
            (3, 1) => depthwise_row::<3, 1>,
            (3, 2) => depthwise_row::<3, 2>,
            (5, 1) => depthwise_row::<5, 1>,
            _ => depthwise_row::<5, 2>,
        }
    }
}

/// The input planes of one evaluation and the depthwise parameters, as the
/// block function reads them.
pub(super) struct Planes<'a> {
    data: &'a [f32],
    height: usize,
    width: usize,
    /// Rows held per channel: `height` for whole planes; fewer for a ring
    /// of rows, where row `iy` is held at `iy % rows`.
    rows: usize,
    weights: &'a [f32],
    bias: &'a [f32],
    pads: [usize; 4],
    clamp: Clamp,
}

type RowFn = fn(&Planes, usize, &mut [Lane]);

#[inline(always)]
fn multiply_add16(sum: &mut [f32; BLOCK], x: &[f32], w: f32) {
    let x = &x[..BLOCK];
    for j in 0..BLOCK {
        sum[j] = if cfg!(target_feature = "fma") {
            x[j].mul_add(w, sum[j])
        } else {
            x[j] * w + sum[j]
        };
    }
}

/// One row of taps at stride 2: output `j` reads `row[2j + kx]`. Indexed
/// with bounds the compiler can prove, the loop becomes pairs of vector
/// loads and a shuffle that keeps the even lanes.
#[inline(always)]
fn strided_taps<const K: usize>(sum: &mut [f32; BLOCK], row: &[f32], taps: &[f32]) {
    let row = &row[..2 * BLOCK + K - 1];
    for (kx, &tap) in taps[..K].iter().enumerate() {
        for j in 0..BLOCK {
            let x = row[2 * j + kx];
            sum[j] = if cfg!(target_feature = "fma") {
                x.mul_add(tap, sum[j])
            } else {
                x * tap + sum[j]
            };
        }
    }
}

/// The depthwise sums of every channel over output row `y`, in blocks of 16
/// columns (past the last column: values nobody keeps): block `b`, channel
/// `c` is written to lanes `2(b·C + c)` and `2(b·C + c) + 1` of `out`. The
/// rows must be at least as wide as a block reads ([`Depthwise::reach`]);
/// narrower planes are padded first.
///
/// Channel by channel, each channel's input rows left to right: the rows
/// stream through the first-level cache once. Block by block with every
/// channel inside, as this went first, each block touched `3·C` rows far
/// apart, more than that cache holds, and waited on the second level.
fn depthwise_row<const K: usize, const S: usize>(planes: &Planes, y: usize, out: &mut [Lane]) {
    depthwise_row_body::<K, S>(planes, y, out)
}

/// What [`depthwise_row`] does, inlined into it and into the AVX-512
/// build of it in [`super::wide`], where a block's 16 sums are one register.
#[inline(always)]
pub(super) fn depthwise_row_body<const K: usize, const S: usize>(
    planes: &Planes,
    y: usize,
    out: &mut [Lane],
) {
    let (h, w) = (planes.height, planes.width);
    let channels = planes.bias.len();
    // The input columns a block reads: 16 outputs apart by S, K taps.
    let len = BLOCK * S + K - 1;
    // Where each of the K input rows starts in a channel's plane; none for
    // the rows of zeros above and below.
    let mut offsets = [None; K];
    for (ky, offset) in offsets.iter_mut().enumerate() {
        let iy = (y * S + ky) as isize - planes.pads[0] as isize;
        if iy >= 0 && (iy as usize) < h {
            *offset = Some(iy as usize % planes.rows * w);
        }
    }
    let blocks = out.len() / (channels * 2).max(1);
    // Rows of one or two blocks, each inside its padded row (a ring's rows
    // are): a lean loop without the edge cases, whose short iterations the
    // core overlaps. On CenterFace's rows of 12 and 24 the general loop
    // spent 25–30 cycles a block on them; on wider rows it does as well.
    if (1..=2).contains(&blocks) && planes.pads[1] == 0 && (blocks - 1) * BLOCK * S + len <= w {
        interior_rows::<K, S>(planes, &offsets, out);
    } else {
        any_rows::<K, S>(planes, &offsets, out);
    }
}

/// [`depthwise_row_body`] for any rows: blocks at the edges read the
/// padding's zeros through a window.
#[inline(always)]
fn any_rows<const K: usize, const S: usize>(
    planes: &Planes,
    offsets: &[Option<usize>; K],
    out: &mut [Lane],
) {
    let w = planes.width;
    let channels = planes.bias.len();
    let len = BLOCK * S + K - 1;
    let plane_len = planes.rows * w;
    for ch in 0..channels {
        let taps = &planes.weights[ch * K * K..][..K * K];
        let plane = &planes.data[ch * plane_len..][..plane_len];
        for (b, lanes) in out.chunks_exact_mut(channels * 2).enumerate() {
            let start = (b * BLOCK * S) as isize - planes.pads[1] as isize;
            let interior = start >= 0 && start as usize + len <= w;
            let mut sum = [planes.bias[ch]; BLOCK];
            for (ky, offset) in offsets.iter().enumerate() {
                let Some(offset) = *offset else {
                    continue;
                };
                let row = &plane[offset..][..w];
                let taps = &taps[ky * K..][..K];
                // Near the left or right edge the zeros of the padding come
                // from a window around a copy of the row's first or last
                // `len` values: a copy of constant length, inlined.
                let mut window;
                let row: &[f32] = if interior {
                    &row[start as usize..][..len]
                } else if start < 0 {
                    window = [0f32; 80];
                    let before = start.unsigned_abs();
                    window[before..before + len].copy_from_slice(&row[..len]);
                    &window[..len]
                } else {
                    window = [0f32; 80];
                    window[..len].copy_from_slice(&row[w - len..]);
                    let offset = start as usize - (w - len);
                    &window[offset..offset + len]
                };
                row_taps::<K, S>(&mut sum, row, taps);
            }
            store_clamped(sum, planes.clamp, &mut lanes[ch * 2..ch * 2 + 2]);
        }
    }
}

/// One kernel row's taps over a block: `row` holds the `16·S + K - 1`
/// input values the block's 16 outputs read.
#[inline(always)]
fn row_taps<const K: usize, const S: usize>(sum: &mut [f32; BLOCK], row: &[f32], taps: &[f32]) {
    if S == 1 {
        for (kx, &tap) in taps.iter().enumerate() {
            multiply_add16(sum, &row[kx..], tap);
        }
    } else {
        strided_taps::<K>(sum, row, taps);
    }
}

/// A block's 16 sums, clamped, into its two lanes.
#[inline(always)]
fn store_clamped(mut sum: [f32; BLOCK], clamp: Clamp, lanes: &mut [Lane]) {
    if !clamp.is_none() {
        for v in &mut sum {
            *v = clamp.apply(*v);
        }
    }
    lanes.as_flattened_mut().copy_from_slice(&sum);
}

/// [`depthwise_row_body`] when every block reads inside its rows: the rows
/// that exist (`offsets`, none for the padding above and below) listed
/// once, then per channel and block only the taps' multiply-adds.
#[inline(always)]
fn interior_rows<const K: usize, const S: usize>(
    planes: &Planes,
    offsets: &[Option<usize>; K],
    out: &mut [Lane],
) {
    let channels = planes.bias.len();
    let len = BLOCK * S + K - 1;
    let plane_len = planes.rows * planes.width;
    let mut rows = [(0usize, 0usize); K];
    let mut present = 0;
    for (ky, offset) in offsets.iter().enumerate() {
        if let Some(offset) = *offset {
            rows[present] = (ky, offset);
            present += 1;
        }
    }
    let rows = &rows[..present];
    // Channel by channel, as in the general loop: each channel's rows
    // stream through the first-level cache once.
    for ch in 0..channels {
        let taps = &planes.weights[ch * K * K..][..K * K];
        let plane = &planes.data[ch * plane_len..][..plane_len];
        for (b, block) in out.chunks_exact_mut(channels * 2).enumerate() {
            let column = b * BLOCK * S;
            let lanes = &mut block[ch * 2..ch * 2 + 2];
            let mut sum = [planes.bias[ch]; BLOCK];
            for &(ky, offset) in rows {
                let row = &plane[offset + column..][..len];
                let taps = &taps[ky * K..][..K];
                row_taps::<K, S>(&mut sum, row, taps);
            }
            store_clamped(sum, planes.clamp, lanes);
        }
    }
}

/// A [`Depthwise`] convolution whose only reader is a [`Pointwise`] one.
/// The input is `[.., C, H, W]` with leading axes of 1; the output is `[O,
/// H', W']`, or `[1, O, H', W']` when the pointwise convolution keeps its
/// batch axis.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DepthwisePointwise {
    pub depthwise: Depthwise,
    pub pointwise: Pointwise,
}

impl DepthwisePointwise {
    pub fn new(depthwise: Depthwise, pointwise: Pointwise) -> TractResult<Self> {
        ensure!(
            Depthwise::supported(depthwise.kernel, depthwise.stride),
            "no depthwise kernel {}×{} at stride {}",
            depthwise.kernel,
            depthwise.kernel,
            depthwise.stride
        );
        ensure!(
            pointwise.inputs == depthwise.channels
                && depthwise.weights.len() == depthwise.channels * depthwise.kernel.pow(2)
                && depthwise.bias.len() == depthwise.channels
                && depthwise.pads.iter().all(|&p| p < depthwise.kernel),
            "a depthwise convolution of {} channels, {} weights and pads {:?} before a 1×1 \
             convolution of {} inputs",
            depthwise.channels,
            depthwise.weights.len(),
            depthwise.pads,
            pointwise.inputs
        );
        Ok(Self {
            depthwise,
            pointwise,
        })
    }

    /// The multiply-adds of one run on an `h`×`w` input.
    pub fn work(&self, h: usize, w: usize) -> usize {
        let dw = &self.depthwise;
        dw.output_dims(h, w).map_or(0, |(oh, ow)| {
            oh * ow * dw.channels * (dw.kernel.pow(2) + self.pointwise.outputs)
        })
    }

    /// How many output rows a strip holds, and the strip's size in lanes.
    /// Rows narrower than a few blocks and not a whole number of them are
    /// taken several at a time, enough to fill whole blocks once laid end
    /// to end ([`flatten`]).
    fn strip_shape(&self, ow: usize, rows: usize) -> (usize, usize) {
        let row_lanes = ow.div_ceil(BLOCK) * self.depthwise.channels * 2;
        let mut strip_rows = STRIP_FLOATS / (row_lanes * 8);
        if narrow(ow) {
            strip_rows = strip_rows.max(flat_rows(ow));
        }
        let strip_rows = strip_rows.clamp(1, rows.max(1));
        (strip_rows, strip_rows * row_lanes)
    }

    /// Both convolutions for output rows `rows` (a strip): the depthwise
    /// sums in `strip`, then the 1×1 convolution into `out`, where
    /// `out[o]` holds output channel `o` from row `first` on. On narrow
    /// rows the sums are laid end to end in `flat` first.
    #[allow(clippy::too_many_arguments)]
    fn strip(
        &self,
        planes: &Planes,
        ow: usize,
        rows: Range<usize>,
        first: usize,
        strip: &mut [Lane],
        flat: &mut [Lane],
        out: &mut [&mut [f32]],
    ) -> TractResult<()> {
        let row_fn = self.depthwise.row_fn();
        let blocks = ow.div_ceil(BLOCK);
        let channels = self.depthwise.channels;
        let row_lanes = blocks * channels * 2;
        let strip = &mut strip[..rows.len() * row_lanes];
        for (y, row) in rows.clone().zip(strip.chunks_exact_mut(row_lanes)) {
            row_fn(planes, y, row);
        }
        let offset = (rows.start - first) * ow;
        if narrow(ow) {
            let positions = rows.len() * ow;
            let flat = &mut flat[..positions.div_ceil(BLOCK) * channels * 2];
            flatten(strip, flat, ow, channels);
            let place = |b: usize| (offset + b * BLOCK, BLOCK.min(positions - b * BLOCK));
            return self.pointwise.sweep(flat, place, out);
        }
        let place = |b: usize| {
            let (row, column) = (b / blocks, b % blocks * BLOCK);
            (offset + row * ow + column, BLOCK.min(ow - column))
        };
        self.pointwise.sweep(strip, place, out)
    }

    /// Both convolutions for output rows `rows`; `out[o]` holds those rows
    /// of output channel `o`. The depthwise convolution reads its input
    /// from a ring of rows, each held with the zero columns of the padding
    /// around it (never written, so they stay zero) and wide enough that
    /// every block reads inside its row: a block at an edge would otherwise
    /// read through a window of zeros just written, and a load from it
    /// waits for the stores (on CenterFace the edge blocks took as long as
    /// all the others). `produce(iy, rows)` writes input row `iy` of every
    /// channel into `rows[c]` (`w` values); each row is produced once, just
    /// before the strip that first reads it, so the ring stays in cache.
    fn ring_rows(
        &self,
        (h, w): (usize, usize),
        ow: usize,
        rows: Range<usize>,
        out: &mut [&mut [f32]],
        mut produce: impl FnMut(usize, &mut [&mut [f32]]) -> TractResult<()>,
    ) -> TractResult<()> {
        let dw = &self.depthwise;
        let (k, s) = (dw.kernel, dw.stride);
        let [top, left, bottom, _] = dw.pads;
        let (strip_rows, strip_lanes) = self.strip_shape(ow, rows.len());
        let mut strip = Scratch::lanes(strip_lanes);
        let mut flat = Scratch::lanes(if narrow(ow) { strip_lanes } else { 0 });
        // A strip of output rows reads `(strip_rows - 1)·s + k` input rows.
        let slots = (strip_rows - 1) * s + k;
        let width = dw.padded_width(w, ow);
        let mut ring = Scratch::floats(dw.channels * slots * width);
        let ring = &mut ring.floats_mut()[..dw.channels * slots * width];
        // The padding columns of every row are zeros; nothing writes them.
        for row in ring.chunks_exact_mut(width) {
            row[..left].fill(0.0);
            row[left + w..].fill(0.0);
        }
        let weights = dw.weights.try_as_plain_ram()?.as_slice::<f32>()?;
        let bias = dw.bias.try_as_plain_ram()?.as_slice::<f32>()?;
        // The input rows output row `y` reads: `first_row(y)..end_row(y)`.
        let first_row = |y: usize| (y * s).saturating_sub(top).min(h);
        let end_row = |y: usize| (y * s + k).saturating_sub(top).min(h);
        let mut next = first_row(rows.start);
        let mut first = rows.start;
        while first < rows.end {
            let last = (first + strip_rows).min(rows.end);
            next = next.max(first_row(first));
            while next < end_row(last - 1) {
                let slot = next % slots;
                let mut row_slices: Vec<&mut [f32]> = ring
                    .chunks_exact_mut(slots * width)
                    .map(|plane| &mut plane[slot * width + left..][..w])
                    .collect();
                produce(next, &mut row_slices)?;
                next += 1;
            }
            let planes = Planes {
                data: ring,
                height: h,
                width,
                rows: slots,
                weights,
                bias,
                pads: [top, 0, bottom, 0],
                clamp: dw.clamp,
            };
            self.strip(
                &planes,
                ow,
                first..last,
                rows.start,
                &mut strip,
                &mut flat,
                out,
            )?;
            first = last;
        }
        Ok(())
    }
}

/// Whether rows of `ow` outputs leave blocks part empty and are few
/// enough blocks that it matters: CenterFace's last layers work on rows of
/// 12 and 24, a block and a half or three quarters of one.
fn narrow(ow: usize) -> bool {
    !ow.is_multiple_of(BLOCK) && ow < 4 * BLOCK
}

/// How many rows of `ow` laid end to end fill an even number of whole
/// blocks (at most 8): the kernel takes blocks two at a time where it can.
fn flat_rows(ow: usize) -> usize {
    (1..=8)
        .find(|r| (r * ow).is_multiple_of(2 * BLOCK))
        .unwrap_or(8)
}

/// The per-row blocks of `strip` (rows of `ow` positions, each in
/// `ow.div_ceil(16)` blocks of `channels` pairs of lanes) laid end to end
/// in `flat`: position `p` of the strip's rows in block `p / 16`, slot
/// `p % 16`.
fn flatten(strip: &[Lane], flat: &mut [Lane], ow: usize, channels: usize) {
    let lanes = channels * 2;
    let blocks = ow.div_ceil(BLOCK);
    for (r, row) in strip.chunks_exact(blocks * lanes).enumerate() {
        for (bx, block) in row.chunks_exact(lanes).enumerate() {
            let source = block.as_flattened();
            let count = BLOCK.min(ow - bx * BLOCK);
            let mut done = 0;
            while done < count {
                let p = r * ow + bx * BLOCK + done;
                let (fb, fj) = (p / BLOCK, p % BLOCK);
                let take = (count - done).min(BLOCK - fj);
                let target = flat[fb * lanes..][..lanes].as_flattened_mut();
                for c in 0..channels {
                    let to = &mut target[c * BLOCK + fj..][..take];
                    let from = &source[c * BLOCK + done..][..take];
                    for (t, f) in to.iter_mut().zip(from) {
                        *t = *f;
                    }
                }
                done += take;
            }
        }
    }
}

impl Op for DepthwisePointwise {
    fn name(&self) -> StaticName {
        "DepthwisePointwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let dw = &self.depthwise;
        Ok(vec![format!(
            "{}×{} depthwise at stride {}{}, then {} → {} channels{}",
            dw.kernel,
            dw.kernel,
            dw.stride,
            dw.clamp,
            self.pointwise.inputs,
            self.pointwise.outputs,
            self.pointwise.clamp
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for DepthwisePointwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let channels = self.depthwise.channels;
        let (h, w) = plane_dims("DepthwisePointwise", input.shape(), channels)?;
        let Some((oh, ow)) = self.depthwise.output_dims(h, w) else {
            bail!("DepthwisePointwise: a {h}×{w} input is smaller than its kernel");
        };
        let data = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let outputs = self.pointwise.outputs;
        let mut tensor =
            self.pointwise
                .kept
                .take(&planes_shape(outputs, (oh, ow), self.pointwise.batch))?;
        let out = planes_mut(&mut tensor)?;
        let work = self.work(h, w);
        // Input rows are copied into the ring as they are needed.
        let copy = |iy: usize, rows: &mut [&mut [f32]]| {
            for (c, row) in rows.iter_mut().enumerate() {
                row.copy_from_slice(&data[(c * h + iy) * w..][..w]);
            }
            Ok(())
        };
        par_spans(out, oh * ow, ow, work >= PARALLEL_WORK, |span, slices| {
            self.ring_rows((h, w), ow, span.start / ow..span.end / ow, slices, copy)
        })?;
        Ok(self.pointwise.kept.keep(tensor))
    }
}

impl TypedOp for DepthwisePointwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (outputs, batch) = (self.pointwise.outputs, self.pointwise.batch);
        planes_fact("DepthwisePointwise", inputs[0], outputs, batch, |h, w| {
            self.depthwise.output_dims(h, w)
        })
    }

    as_op!();
}

/// A whole inverted-residual block: a [`Pointwise`] expansion, then the
/// [`DepthwisePointwise`] that alone reads it, and when `residual` the
/// block's input added to its output (input and output of one shape), each
/// thread over the rows it has just written.
///
/// The expansion's output is the widest tensor of the block (96 channels
/// at a quarter of the input's resolution in CenterFace's first block: 8 MB
/// for a liveness frame). Here it never exists whole: each thread keeps a
/// ring of the few expanded rows its next strip of output rows reads (the
/// kernel's height, more for a taller strip) and expands each input row
/// once, just before the depthwise convolution first reads it. The ring
/// stays in the core's cache, where the two ops apart wrote and read the
/// expanded tensor through memory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InvertedResidual {
    pub expand: Pointwise,
    pub body: DepthwisePointwise,
    pub residual: bool,
}

impl InvertedResidual {
    pub fn new(expand: Pointwise, body: DepthwisePointwise) -> TractResult<Self> {
        ensure!(
            expand.outputs == body.depthwise.channels,
            "an expansion to {} channels before a depthwise convolution of {}",
            expand.outputs,
            body.depthwise.channels
        );
        Ok(Self {
            expand,
            body,
            residual: false,
        })
    }

    /// The block with its input added to its output.
    pub fn with_residual(self) -> Self {
        Self {
            residual: true,
            ..self
        }
    }

    /// The multiply-adds of one run on an `h`×`w` input.
    pub fn work(&self, h: usize, w: usize) -> usize {
        h * w * self.expand.inputs * self.expand.outputs + self.body.work(h, w)
    }

    /// Expands input row `iy` of `input` (`inputs` planes of `h`×`w`)
    /// into `rows`, one per expanded channel; `staging` holds the row's
    /// blocks.
    fn expand_row(
        &self,
        input: &[f32],
        (h, w): (usize, usize),
        iy: usize,
        staging: &mut [Lane],
        rows: &mut [&mut [f32]],
    ) -> TractResult<()> {
        let inputs = self.expand.inputs;
        for (b, block) in staging.chunks_exact_mut(inputs * 2).enumerate() {
            let start = b * BLOCK;
            let len = BLOCK.min(w - start);
            for (i, lanes) in block.chunks_exact_mut(2).enumerate() {
                let source = &input[(i * h + iy) * w + start..];
                // A copy of constant length is inlined, one of a variable
                // length calls memmove.
                if len == BLOCK {
                    lanes.as_flattened_mut().copy_from_slice(&source[..BLOCK]);
                } else {
                    lanes.as_flattened_mut()[..len].copy_from_slice(&source[..len]);
                }
            }
        }
        let place = |b: usize| (b * BLOCK, BLOCK.min(w - b * BLOCK));
        self.expand.sweep(staging, place, rows)
    }
}

impl Op for InvertedResidual {
    fn name(&self) -> StaticName {
        "InvertedResidual".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let mut info = vec![format!(
            "{} → {} channels{}",
            self.expand.inputs, self.expand.outputs, self.expand.clamp
        )];
        info.extend(self.body.info()?);
        if self.residual {
            info.push("plus the input".into());
        }
        Ok(info)
    }

    op_as_typed_op!();
}

impl EvalOp for InvertedResidual {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let channels = self.expand.inputs;
        let (h, w) = plane_dims("InvertedResidual", input.shape(), channels)?;
        let dw = &self.body.depthwise;
        let Some((oh, ow)) = dw.output_dims(h, w) else {
            bail!("InvertedResidual: a {h}×{w} input is smaller than its kernel");
        };
        ensure!(
            w >= dw.reach(),
            "InvertedResidual: rows of {w} are narrower than a block reads"
        );
        let data = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let outputs = self.body.pointwise.outputs;
        ensure!(
            !self.residual || (outputs, oh, ow) == (channels, h, w),
            "InvertedResidual: a {channels}×{h}×{w} input cannot be added to a \
             {outputs}×{oh}×{ow} output"
        );
        let mut tensor = self.body.pointwise.kept.take(&planes_shape(
            outputs,
            (oh, ow),
            self.body.pointwise.batch,
        ))?;
        let out = planes_mut(&mut tensor)?;
        let work = self.work(h, w);
        par_spans(out, oh * ow, ow, work >= PARALLEL_WORK, |span, slices| {
            let mut staging = Scratch::lanes(w.div_ceil(BLOCK) * channels * 2);
            let expand = |iy: usize, rows: &mut [&mut [f32]]| {
                self.expand_row(data, (h, w), iy, &mut staging, rows)
            };
            let rows = span.start / ow..span.end / ow;
            self.body.ring_rows((h, w), ow, rows, slices, expand)?;
            if self.residual {
                for (o, slice) in slices.iter_mut().enumerate() {
                    let plane = &data[o * h * w..][..h * w];
                    for (sum, x) in slice.iter_mut().zip(&plane[span.clone()]) {
                        *sum += x;
                    }
                }
            }
            Ok(())
        })?;
        Ok(self.body.pointwise.kept.keep(tensor))
    }
}

impl TypedOp for InvertedResidual {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.body.output_facts(inputs)
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both builds of the depthwise row, on the same planes: the AVX-512
    /// one where this CPU has it (the op tests then run only that one).
    fn both_rows<const K: usize, const S: usize>(ow: usize) {
        #[cfg(target_arch = "x86_64")]
        let wide = super::super::wide::available();
        #[cfg(target_arch = "x86_64")]
        if !wide {
            eprintln!("no AVX-512 on this CPU: its depthwise row is not tested");
        }
        let (channels, height): (usize, usize) = (5, 9);
        let pads = [K / 2, 0, K / 2, 0];
        let width = (ow.div_ceil(BLOCK) - 1) * BLOCK * S + BLOCK * S + K - 1;
        let data: Vec<f32> = (0..channels * height * width)
            .map(|i| ((i * 7919 % 1009) as f32) / 500.0 - 1.0)
            .collect();
        let weights: Vec<f32> = (0..channels * K * K)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let bias: Vec<f32> = (0..channels).map(|c| c as f32 * 0.1 - 0.2).collect();
        let planes = Planes {
            data: &data,
            height,
            width,
            rows: height,
            weights: &weights,
            bias: &bias,
            pads,
            clamp: Clamp {
                low: 0.0,
                high: 6.0,
            },
        };
        let lanes = ow.div_ceil(BLOCK) * channels * 2;
        for y in 0..(height + 2 * (K / 2) - K) / S + 1 {
            let mut portable = vec![[0f32; 8]; lanes];
            depthwise_row::<K, S>(&planes, y, &mut portable);
            // Rows of one or two blocks take the lean loop: the same sums
            // as the general one.
            let mut general = vec![[0f32; 8]; lanes];
            let offsets = std::array::from_fn(|ky| {
                let iy = (y * S + ky).checked_sub(pads[0]).filter(|&iy| iy < height);
                iy.map(|iy| iy * width)
            });
            any_rows::<K, S>(&planes, &offsets, &mut general);
            assert_eq!(
                portable, general,
                "{K}×{K} at stride {S}, {ow} wide, row {y}"
            );
            #[cfg(target_arch = "x86_64")]
            if wide {
                let mut wide = vec![[0f32; 8]; lanes];
                super::super::wide::depthwise_row::<K, S>(&planes, y, &mut wide);
                assert_eq!(portable, wide, "{K}×{K} at stride {S}, {ow} wide, row {y}");
            }
            assert!(portable.as_flattened().iter().any(|&v| v > 0.0));
        }
    }

    #[test]
    fn both_builds_of_the_depthwise_row_agree() {
        for ow in [12, 24, 37] {
            both_rows::<3, 1>(ow);
            both_rows::<3, 2>(ow);
            both_rows::<5, 1>(ow);
            both_rows::<5, 2>(ow);
        }
    }
}
