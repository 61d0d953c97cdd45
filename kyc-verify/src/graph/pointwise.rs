//! [`Pointwise`]: a 1×1 convolution over channel-first `f32` planes, its
//! bias and activation (a ReLU, a ReLU6: any [`Clamp`]) in one pass,
//! computed a tile of output channels by a block of positions at a time.
//!
//! tract lowers a 1×1 convolution to a matrix product whose `m` side is the
//! positions: it packs the input into panels, then its kernel writes every
//! output channel's row a few positions at a time, so a wide expansion (16 →
//! 96 channels over 112×192 positions in CenterFace) writes 96 rows side by
//! side and runs at half the speed of its larger products. Here the input is
//! laid out in blocks of 16 positions, a strip of blocks at a time, and each
//! tile of 6 output channels sweeps the strip, holding 6×16 sums in
//! registers (12 eight-wide vectors under AVX2) while it walks the input
//! channels. The loops are plain arrays the compiler turns into fused
//! multiply-adds when the target has them (x86-64-v3, see
//! `.cargo/config.toml`).
//!
//! Threads split the positions ([`par_spans`]): each lays out and computes
//! its own share, so the layout pass is spread too, and each thread's strip
//! stays in its own core's cache. Splitting the output channels instead (as
//! this op did first) made both threads read the whole laid-out input, 1.4
//! MB for CenterFace's first expansion, from the shared cache.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tract_linalg::multithread::{Executor, current_tract_executor};
use tract_onnx::tract_core::internal::*;

/// Output channels per tile.
pub(super) const TILE_CHANNELS: usize = 6;
/// Positions per block: two vectors of eight.
pub(super) const BLOCK: usize = 16;

/// The inputs of a strip of blocks are kept to this many floats (48 KiB):
/// every tile of output channels reads them again, from the first or second
/// level cache. (Measured: a quarter or four times as much changes nothing
/// on CenterFace or faceres.)
pub(super) const STRIP_FLOATS: usize = 12 * 1024;

/// Below this many multiply-adds, handing positions to other threads costs
/// more than it saves. With the pool's threads kept awake through a run
/// ([`crate::runtime`]'s `run_awake`), 1 M pays (at 4 M, the threshold
/// before that: the liveness model 0.20 -> 0.14 ms at two threads,
/// antispoof 1.28 -> 1.23 ms).
pub(super) const PARALLEL_WORK: usize = 1 << 20;

pub(super) type Lane = [f32; 8];

/// One value per output channel of a tile.
pub(super) type Tile = [f32; TILE_CHANNELS];

/// The bounds an activation keeps a value in: `min(high, max(low, ·))`. A
/// ReLU is `[0, ∞)`, a ReLU6 `[0, 6]`, no activation `(-∞, ∞)`.
#[derive(Debug, Clone, Copy)]
pub struct Clamp {
    pub low: f32,
    pub high: f32,
}

impl Clamp {
    pub const NONE: Clamp = Clamp {
        low: f32::NEG_INFINITY,
        high: f32::INFINITY,
    };

    /// This clamp followed by `max(·, c)`.
    pub fn then_max(self, c: f32) -> Clamp {
        Clamp {
            low: self.low.max(c),
            high: self.high.max(c),
        }
    }

    /// This clamp followed by `min(·, c)`.
    pub fn then_min(self, c: f32) -> Clamp {
        Clamp {
            low: self.low.min(c),
            high: self.high.min(c),
        }
    }

    pub fn is_none(&self) -> bool {
        *self == Clamp::NONE
    }

    #[inline(always)]
    pub fn apply(&self, v: f32) -> f32 {
        v.max(self.low).min(self.high)
    }
}

impl PartialEq for Clamp {
    fn eq(&self, other: &Self) -> bool {
        self.low.to_bits() == other.low.to_bits() && self.high.to_bits() == other.high.to_bits()
    }
}

impl Eq for Clamp {}

impl std::hash::Hash for Clamp {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.low.to_bits().hash(state);
        self.high.to_bits().hash(state);
    }
}

/// How the op's description names it: nothing, ", ReLU", ", clamped to
/// [0, 6]".
impl std::fmt::Display for Clamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (low, high) = (self.low, self.high);
        if self.is_none() {
            Ok(())
        } else if low == 0.0 && high == f32::INFINITY {
            f.write_str(", ReLU")
        } else {
            write!(f, ", clamped to [{low}, {high}]")
        }
    }
}

/// `out[o] = bias[o] + Σ_i weights[o][i] · x[i]` over every position of
/// `[.., I, H, W]` (leading axes of 1), then clamped; the output is `[O, H,
/// W]`, or `[1, O, H, W]` when `batch`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pointwise {
    pub(super) inputs: usize,
    pub(super) outputs: usize,
    /// The weights regrouped per tile, flat: tile `t`, input `i` holds the
    /// weights of output channels `6t..6t+6` (zeros past the last).
    pub(super) tiled_weights: Arc<Tensor>,
    /// The biases alike, 6 per tile.
    pub(super) tiled_bias: Arc<Tensor>,
    pub(super) clamp: Clamp,
    pub(super) batch: bool,
    /// The op's output tensor from its last run, written over by the next.
    pub(super) kept: KeptOutput,
}

impl Pointwise {
    /// `weights` is `[O, I]`, `bias` has `O` values.
    pub fn new(weights: &Tensor, bias: &[f32], clamp: Clamp, batch: bool) -> TractResult<Self> {
        ensure!(
            weights.rank() == 2 && weights.shape()[0] == bias.len() && weights.shape()[1] > 0,
            "Pointwise: weights {:?} for {} biases",
            weights.shape(),
            bias.len()
        );
        let (outputs, inputs) = (weights.shape()[0], weights.shape()[1]);
        let weights = weights.try_as_plain_ram()?.as_slice::<f32>()?;
        let tiles = outputs.div_ceil(TILE_CHANNELS);
        let mut tiled = vec![0f32; tiles * inputs * TILE_CHANNELS];
        let mut tiled_bias = vec![0f32; tiles * TILE_CHANNELS];
        for (o, row) in weights.chunks_exact(inputs).enumerate() {
            let (tile, lane) = (o / TILE_CHANNELS, o % TILE_CHANNELS);
            for (i, &w) in row.iter().enumerate() {
                tiled[(tile * inputs + i) * TILE_CHANNELS + lane] = w;
            }
            tiled_bias[o] = bias[o];
        }
        Ok(Self {
            inputs,
            outputs,
            tiled_weights: tensor1(&tiled).into_arc_tensor(),
            tiled_bias: tensor1(&tiled_bias).into_arc_tensor(),
            clamp,
            batch,
            kept: KeptOutput::default(),
        })
    }
}

#[inline(always)]
pub(super) fn multiply_add(sum: &mut Lane, x: &Lane, w: f32) {
    for j in 0..8 {
        // Without FMA in the target, `mul_add` would be a library call.
        sum[j] = if cfg!(target_feature = "fma") {
            x[j].mul_add(w, sum[j])
        } else {
            x[j] * w + sum[j]
        };
    }
}

/// The sums of one tile over one block, clamped and stored straight from
/// the registers into the 6 output rows `out`: `x` is the block's inputs
/// (two lanes per input channel), `weights` the tile's weights per input
/// channel. Kept out of line: inlined into the caller's loops, the compiler
/// no longer holds the sums in vector registers. [`super::wide`] has the
/// same kernel for AVX-512.
#[inline(never)]
// Indexed loops on purpose: see the comment on the epilogue below.
#[allow(clippy::needless_range_loop)]
fn tile_store(
    x: &[Lane],
    weights: &[[f32; TILE_CHANNELS]],
    bias: &[f32; TILE_CHANNELS],
    clamp: Clamp,
    out: [&mut [f32; BLOCK]; TILE_CHANNELS],
) {
    let mut s = [[[0f32; 8]; 2]; TILE_CHANNELS];
    for o in 0..TILE_CHANNELS {
        s[o] = [[bias[o]; 8]; 2];
    }
    for (pair, w) in x.chunks_exact(2).zip(weights) {
        let (x0, x1) = (&pair[0], &pair[1]);
        for o in 0..TILE_CHANNELS {
            multiply_add(&mut s[o][0], x0, w[o]);
            multiply_add(&mut s[o][1], x1, w[o]);
        }
    }
    // Plain indexed loops over the fixed-size arrays, as in the sums above:
    // with iterator adaptors and closures here, some builds left the sums
    // on the stack and the sums scalar (five times slower).
    let (low, high) = (clamp.low, clamp.high);
    let floor = low != f32::NEG_INFINITY;
    let ceiling = high != f32::INFINITY;
    for o in 0..TILE_CHANNELS {
        for half in 0..2 {
            let mut lane = s[o][half];
            if floor {
                for j in 0..8 {
                    lane[j] = lane[j].max(low);
                }
            }
            if ceiling {
                for j in 0..8 {
                    lane[j] = lane[j].min(high);
                }
            }
            s[o][half] = lane;
        }
    }
    let [r0, r1, r2, r3, r4, r5] = out;
    for (o, row) in [r0, r1, r2, r3, r4, r5].into_iter().enumerate() {
        row[..8].copy_from_slice(&s[o][0]);
        row[8..].copy_from_slice(&s[o][1]);
    }
}

/// The `N` values of `plane` from `start` (a block, or two), when there
/// are so many.
fn whole<const N: usize>(plane: &mut [f32], start: usize) -> Option<&mut [f32; N]> {
    plane.get_mut(start..start + N)?.try_into().ok()
}

/// The `N` values from `start` of each plane of a whole tile (6 planes),
/// for the kernel to store into; none for the last, narrower tile.
fn tile_blocks<'a, const N: usize>(
    tile: &'a mut [&mut [f32]],
    start: usize,
) -> Option<[&'a mut [f32; N]; TILE_CHANNELS]> {
    let [p0, p1, p2, p3, p4, p5] = tile else {
        return None;
    };
    Some([
        whole(p0, start)?,
        whole(p1, start)?,
        whole(p2, start)?,
        whole(p3, start)?,
        whole(p4, start)?,
        whole(p5, start)?,
    ])
}

impl Op for Pointwise {
    fn name(&self) -> StaticName {
        "Pointwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} → {} channels{}",
            self.inputs, self.outputs, self.clamp
        )])
    }

    op_as_typed_op!();
}

impl Pointwise {
    /// The multiply-adds of one run on an `h`×`w` input.
    pub fn work(&self, h: usize, w: usize) -> usize {
        h * w * self.inputs * self.outputs
    }

    /// The weights and biases per tile of 6 output channels.
    pub(super) fn tiles(&self) -> TractResult<(&[Tile], &[Tile])> {
        let weights = self.tiled_weights.try_as_plain_ram()?.as_slice::<f32>()?;
        let bias = self.tiled_bias.try_as_plain_ram()?.as_slice::<f32>()?;
        Ok((weights.as_chunks().0, bias.as_chunks().0))
    }

    /// The 1×1 convolution of a strip of blocks: `strip` holds blocks of 16
    /// positions, two lanes per input channel each; block `b` goes to
    /// `place(b) = (start, len)` of every output plane in `out`. Each tile of
    /// 6 output channels sweeps the whole strip, which the caller keeps
    /// small enough to be read again from cache.
    pub(super) fn sweep(
        &self,
        strip: &[Lane],
        place: impl Fn(usize) -> (usize, usize),
        out: &mut [&mut [f32]],
    ) -> TractResult<()> {
        #[cfg(target_arch = "x86_64")]
        if super::wide::available() {
            return self.sweep_pairs(strip, place, out);
        }
        self.sweep_lanes(strip, place, out)
    }

    /// [`Pointwise::sweep`] in vectors of eight, a block at a time.
    fn sweep_lanes(
        &self,
        strip: &[Lane],
        place: impl Fn(usize) -> (usize, usize),
        out: &mut [&mut [f32]],
    ) -> TractResult<()> {
        let (weights, bias) = self.tiles()?;
        let channels = self.inputs;
        let mut spare = [[0f32; BLOCK]; TILE_CHANNELS];
        let lanes = channels * 2;
        let count = strip.len() / lanes;
        let block = |b: usize| &strip[b * lanes..][..lanes];
        for (tile, tile_out) in out.chunks_mut(TILE_CHANNELS).enumerate() {
            let tile_weights = &weights[tile * channels..][..channels];
            let mut b = 0;
            while b < count {
                let (start, len) = place(b);
                if len == BLOCK
                    && let Some(rows) = tile_blocks(tile_out, start)
                {
                    tile_store(block(b), tile_weights, &bias[tile], self.clamp, rows);
                    b += 1;
                    continue;
                }
                // The last tile (fewer than 6 channels) or a block cut by
                // the end of a row: into spare rows, then copied.
                let [s0, s1, s2, s3, s4, s5] = &mut spare;
                tile_store(
                    block(b),
                    tile_weights,
                    &bias[tile],
                    self.clamp,
                    [s0, s1, s2, s3, s4, s5],
                );
                for (plane, values) in tile_out.iter_mut().zip(&spare) {
                    // A copy of a length the compiler knows is inlined; a
                    // slice copy calls memmove.
                    if len == BLOCK {
                        plane[start..start + BLOCK].copy_from_slice(values);
                    } else {
                        plane[start..start + len].copy_from_slice(&values[..len]);
                    }
                }
                b += 1;
            }
        }
        Ok(())
    }

    /// [`Pointwise::sweep`] on a CPU with AVX-512: blocks two at a time
    /// where they lie side by side in the output, so that the kernel keeps
    /// 12 sums in flight ([`super::wide::tile_store_pair`]).
    #[cfg(target_arch = "x86_64")]
    fn sweep_pairs(
        &self,
        strip: &[Lane],
        place: impl Fn(usize) -> (usize, usize),
        out: &mut [&mut [f32]],
    ) -> TractResult<()> {
        use super::wide::{tile_store, tile_store_pair, tile_store_quad};
        let (weights, bias) = self.tiles()?;
        let channels = self.inputs;
        let lanes = channels * 2;
        let count = strip.len() / lanes;
        let block = |b: usize| &strip[b * lanes..][..lanes];
        let mut spare = [[0f32; 2 * BLOCK]; TILE_CHANNELS];
        for (tile, tile_out) in out.chunks_mut(TILE_CHANNELS).enumerate() {
            let (weights, bias) = (&weights[tile * channels..][..channels], &bias[tile]);
            let mut b = 0;
            while b < count {
                let (start, len) = place(b);
                let four_whole = b + 3 < count
                    && (1..4).all(|i| place(b + i) == (start + i * BLOCK, BLOCK))
                    && len == BLOCK;
                if four_whole && let Some(rows) = tile_blocks(tile_out, start) {
                    let x = [block(b), block(b + 1), block(b + 2), block(b + 3)];
                    tile_store_quad(x, weights, bias, self.clamp, rows);
                    b += 4;
                    continue;
                }
                let paired = len == BLOCK && b + 1 < count && place(b + 1).0 == start + BLOCK;
                let len = if paired { BLOCK + place(b + 1).1 } else { len };
                if len == 2 * BLOCK
                    && let Some(rows) = tile_blocks(tile_out, start)
                {
                    tile_store_pair([block(b), block(b + 1)], weights, bias, self.clamp, rows);
                    b += 2;
                    continue;
                }
                if len == BLOCK
                    && let Some(rows) = tile_blocks(tile_out, start)
                {
                    tile_store(block(b), weights, bias, self.clamp, rows);
                    b += 1;
                    continue;
                }
                // A tile of fewer than 6 channels, or a block cut by the end
                // of a row: into spare rows, then copied.
                let [s0, s1, s2, s3, s4, s5] = &mut spare;
                if paired {
                    let rows = [s0, s1, s2, s3, s4, s5];
                    tile_store_pair([block(b), block(b + 1)], weights, bias, self.clamp, rows);
                    b += 2;
                } else {
                    let rows =
                        [s0, s1, s2, s3, s4, s5].map(|s| &mut s.as_chunks_mut::<BLOCK>().0[0]);
                    tile_store(block(b), weights, bias, self.clamp, rows);
                    b += 1;
                }
                for (plane, values) in tile_out.iter_mut().zip(&spare) {
                    plane[start..start + len].copy_from_slice(&values[..len]);
                }
            }
        }
        Ok(())
    }
}

impl EvalOp for Pointwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let (outputs, channels) = (self.outputs, self.inputs);
        let (h, w) = plane_dims("Pointwise", input.shape(), channels)?;
        let positions = h * w;
        let data = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let mut tensor = self.kept.take(&planes_shape(outputs, (h, w), self.batch))?;
        let out = planes_mut(&mut tensor)?;
        // Each thread takes a share of the positions, in blocks of 16, and
        // works through it a strip at a time: the strip's inputs laid out in
        // blocks (two lanes per channel), then every tile over the strip.
        let strip_blocks = (STRIP_FLOATS / (channels * BLOCK)).max(2);
        let parallel = self.work(h, w) >= PARALLEL_WORK;
        par_spans(out, positions, BLOCK, parallel, |span, slices| {
            let blocks = strip_blocks.min(span.len().div_ceil(BLOCK));
            let mut strip = Scratch::lanes(blocks * channels * 2);
            let mut first = span.start;
            while first < span.end {
                let last = (first + strip_blocks * BLOCK).min(span.end);
                let blocks = (last - first).div_ceil(BLOCK);
                let strip = &mut strip[..blocks * channels * 2];
                for (b, block) in strip.chunks_exact_mut(channels * 2).enumerate() {
                    let start = first + b * BLOCK;
                    let len = BLOCK.min(last - start);
                    for (i, lanes) in block.chunks_exact_mut(2).enumerate() {
                        let source = &data[i * positions + start..];
                        // A copy of constant length is inlined, one of a
                        // variable length calls memmove.
                        if len == BLOCK {
                            lanes.as_flattened_mut().copy_from_slice(&source[..BLOCK]);
                        } else {
                            lanes.as_flattened_mut()[..len].copy_from_slice(&source[..len]);
                        }
                    }
                }
                let offset = first - span.start;
                let place = |b: usize| (offset + b * BLOCK, BLOCK.min(last - first - b * BLOCK));
                self.sweep(strip, place, slices)?;
                first = last;
            }
            Ok(())
        })?;
        Ok(self.kept.keep(tensor))
    }
}

/// Splits `out`, planes of `len` values, into parts of whole `unit`s of
/// positions (the last one may be shorter), one per thread of tract's
/// executor (one when `parallel` is false), and runs `work(span, slices)`
/// on each: `span` is the part's positions, `slices[p]` plane `p`'s share.
pub(super) fn par_spans(
    out: &mut [f32],
    len: usize,
    unit: usize,
    parallel: bool,
    work: impl Fn(Range<usize>, &mut [&mut [f32]]) -> TractResult<()> + Sync,
) -> TractResult<()> {
    if len == 0 || unit == 0 {
        return Ok(());
    }
    let executor = current_tract_executor();
    let threads = match &executor {
        Executor::MultiThread(pool) if parallel => pool.current_num_threads(),
        _ => 1,
    };
    let units = len.div_ceil(unit);
    let per_part = units.div_ceil(threads.clamp(1, units)) * unit;
    let parts = len.div_ceil(per_part);
    let span = |part: usize| part * per_part..(part * per_part + per_part).min(len);
    let mut slices: Vec<Vec<&mut [f32]>> = (0..parts)
        .map(|_| Vec::with_capacity(out.len() / len))
        .collect();
    for plane in out.chunks_exact_mut(len) {
        let mut rest = plane;
        for (part, slices) in slices.iter_mut().enumerate() {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(span(part).len());
            slices.push(head);
            rest = tail;
        }
    }
    match executor {
        Executor::MultiThread(pool) if parts > 1 => {
            // A panic in a part is carried to this thread by rayon's scope.
            let results: Vec<std::sync::Mutex<TractResult<()>>> =
                (0..parts).map(|_| std::sync::Mutex::new(Ok(()))).collect();
            pool.scope(|scope| {
                for (part, mut slices) in slices.into_iter().enumerate() {
                    let (work, result) = (&work, &results[part]);
                    scope.spawn(move |_| {
                        let outcome = work(span(part), &mut slices);
                        if let Ok(mut slot) = result.lock() {
                            *slot = outcome;
                        }
                    });
                }
            });
            for result in results {
                result
                    .into_inner()
                    .map_err(|_| format_err!("a thread panicked"))??;
            }
            Ok(())
        }
        _ => {
            for (part, mut slices) in slices.into_iter().enumerate() {
                work(span(part), &mut slices)?;
            }
            Ok(())
        }
    }
}

/// The height and width of `shape`, channel-first planes `[.., channels, H,
/// W]` with leading axes of 1, or an error that names `op`.
pub(super) fn plane_dims(
    op: &str,
    shape: &[usize],
    channels: usize,
) -> TractResult<(usize, usize)> {
    let rank = shape.len();
    ensure!(
        rank >= 3 && shape[rank - 3] == channels && shape[..rank - 3].iter().all(|&d| d == 1),
        "{op} of {channels} input channels on {shape:?}"
    );
    Ok((shape[rank - 2], shape[rank - 1]))
}

/// The output tensor of an op's last run, kept for its next run to write
/// over. A fresh output is zeroed by one thread, all of it, before the
/// threads each write their share: on this two-core machine that first
/// pass pulled every cache line the other core had written in the last
/// run across to the zeroing core and back (4 MB for the anti-spoofing
/// model's first layer; its zeroing took 1 ms of a 3 ms run at two threads
/// against 0.04 ms at one). A kept output is neither allocated nor zeroed,
/// and each thread writes over the rows it wrote last time.
///
/// The tensor is shared with the graph's next ops; it is taken back only
/// when nobody else holds it any more (the run that used it is over, and
/// the caller did not keep it as a model output). Every op that keeps its
/// output writes every value of it, so nothing of the last run shows
/// through (the tests run each rewrite twice).
///
/// What the process keeps is bounded by [`KEPT_BUDGET`]: every cached plan
/// of every model would otherwise hold its outputs (47 MB for one plan of
/// the text recogniser), for plans that may not run again.
#[derive(Default)]
pub struct KeptOutput(Mutex<Option<Arc<Tensor>>>);

/// Bytes of outputs kept over all ops of all plans, at most; the first
/// plans to run take it. The plans one verdict of the benchmark runs keep
/// 206 MB (text detection 43, recognition 47 per line width, CenterFace at
/// the selfie's, the document's and the frames' sizes, embedding,
/// anti-spoofing), memory the runs held at their peak anyway; the rest
/// leaves room for plans of other sizes a server builds (documents of
/// other proportions). At 128 MB, the plans that ran last kept nothing:
/// CenterFace on a frame ran 8.9 ms instead of 7.7 ms at two threads.
/// onnxruntime keeps the peak of every session in its arena, unbounded.
pub const KEPT_BUDGET: usize = 256 << 20;

/// Bytes kept now, over all [`KeptOutput`]s.
static KEPT_BYTES: AtomicUsize = AtomicUsize::new(0);

impl KeptOutput {
    /// The kept tensor if it has `shape` and is free, else a zeroed one.
    pub(super) fn take(&self, shape: &[usize]) -> TractResult<Tensor> {
        let kept = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(kept) = &kept {
            KEPT_BYTES.fetch_sub(bytes(kept), Ordering::Relaxed);
        }
        match kept.map(Arc::try_unwrap) {
            Some(Ok(tensor)) if tensor.shape() == shape => Ok(tensor),
            _ => Tensor::zero::<f32>(shape),
        }
    }

    /// `tensor` as the op's output, kept for the next run while the budget
    /// allows.
    pub(super) fn keep(&self, tensor: Tensor) -> TVec<TValue> {
        let size = bytes(&tensor);
        let admitted = KEPT_BYTES
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
                (kept + size <= KEPT_BUDGET).then_some(kept + size)
            })
            .is_ok();
        if !admitted {
            return tvec!(tensor.into_tvalue());
        }
        let tensor = Arc::new(tensor);
        let replaced = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .replace(tensor.clone());
        // Another run of the same plan kept its output in between.
        if let Some(replaced) = replaced {
            KEPT_BYTES.fetch_sub(bytes(&replaced), Ordering::Relaxed);
        }
        tvec!(tensor.into_tvalue())
    }
}

impl Drop for KeptOutput {
    fn drop(&mut self) {
        let kept = self
            .0
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(kept) = kept {
            KEPT_BYTES.fetch_sub(bytes(&kept), Ordering::Relaxed);
        }
    }
}

fn bytes(tensor: &Tensor) -> usize {
    tensor.len() * std::mem::size_of::<f32>()
}

/// A copy of an op starts with nothing kept.
impl Clone for KeptOutput {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for KeptOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeptOutput")
    }
}

/// What an op keeps is no part of what it computes.
impl PartialEq for KeptOutput {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for KeptOutput {}

impl std::hash::Hash for KeptOutput {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// A working buffer lent by this thread's pool and given back when dropped:
/// the layouts, rings and strips the ops fill and read within one run.
/// Allocated and zeroed afresh on each run, they cost CenterFace on a frame
/// 0.4 ms of 12 at one thread: the larger ones (a ring of 960 channels is
/// 0.6 MB) came back from the allocator as fresh pages, a fault per 4 KiB.
///
/// Its values are whatever its last user left, zeros when new: every user
/// writes what it reads (the rings' padding columns are zeroed on taking,
/// see `ring_rows`), and lanes past the last position of a part-empty block
/// are computed but never stored. A thread keeps at most [`POOL_BUFFERS`]
/// buffers, each as large as the largest use it served; threads that end
/// (the scoped ones of `runtime::map_side_by_side`) free theirs.
pub(super) struct Scratch {
    buffer: Vec<Lane>,
    lanes: usize,
}

/// Buffers a thread keeps: an inverted residual block holds four at once.
const POOL_BUFFERS: usize = 6;

thread_local! {
    static POOL: std::cell::RefCell<Vec<Vec<Lane>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Scratch {
    /// `lanes` lanes: the smallest pooled buffer that holds them, else the
    /// largest one grown.
    pub(super) fn lanes(lanes: usize) -> Self {
        let mut buffer = POOL
            .try_with(|pool| {
                let mut pool = pool.borrow_mut();
                let fits = (0..pool.len())
                    .filter(|&i| pool[i].len() >= lanes)
                    .min_by_key(|&i| pool[i].len());
                let pick = fits.or_else(|| (0..pool.len()).max_by_key(|&i| pool[i].len()));
                pick.map(|i| pool.swap_remove(i))
            })
            .ok()
            .flatten()
            .unwrap_or_default();
        if buffer.len() < lanes {
            buffer.resize(lanes, [0.0; 8]);
        }
        Self { buffer, lanes }
    }

    /// Room for `floats` values, seen as floats by [`Scratch::floats_mut`].
    pub(super) fn floats(floats: usize) -> Self {
        Self::lanes(floats.div_ceil(8))
    }

    /// The buffer as floats: `8 · lanes` of them, at least as many as asked.
    pub(super) fn floats_mut(&mut self) -> &mut [f32] {
        self.buffer[..self.lanes].as_flattened_mut()
    }
}

impl std::ops::Deref for Scratch {
    type Target = [Lane];

    fn deref(&self) -> &[Lane] {
        &self.buffer[..self.lanes]
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [Lane] {
        &mut self.buffer[..self.lanes]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        // A thread being torn down has no pool left: the buffer is freed.
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOL_BUFFERS {
                pool.push(buffer);
            }
        });
    }
}

/// The shape of `outputs` planes of `oh`×`ow`: `[O, H, W]`, or `[1, O, H,
/// W]` when `batch`.
pub(super) fn planes_shape(outputs: usize, (oh, ow): (usize, usize), batch: bool) -> TVec<usize> {
    if batch {
        tvec!(1, outputs, oh, ow)
    } else {
        tvec!(outputs, oh, ow)
    }
}

/// The values of an `f32` output tensor, to write into.
pub(super) fn planes_mut(tensor: &mut Tensor) -> TractResult<&mut [f32]> {
    tensor
        .to_plain_array_view_mut::<f32>()?
        .into_slice()
        .context("output planes are not contiguous")
}

/// The output fact of an op that maps channel-first `f32` planes of a
/// concrete `h`×`w` to `outputs` planes of `dims(h, w)` (none when the
/// input is smaller than the op's kernel): `[O, H', W']`, or `[1, O, H',
/// W']` when `batch`.
pub(super) fn planes_fact(
    op: &str,
    input: &TypedFact,
    outputs: usize,
    batch: bool,
    dims: impl Fn(usize, usize) -> Option<(usize, usize)>,
) -> TractResult<TVec<TypedFact>> {
    ensure!(input.datum_type == f32::datum_type(), "{op} is f32 only");
    let rank = input.rank();
    ensure!(rank >= 3, "{op} needs a channel and two spatial axes");
    let (Ok(h), Ok(w)) = (
        input.shape[rank - 2].to_usize(),
        input.shape[rank - 1].to_usize(),
    ) else {
        bail!("{op} needs a concrete height and width");
    };
    let Some((oh, ow)) = dims(h, w) else {
        bail!("{op}: a {h}×{w} input is smaller than its kernel");
    };
    let mut shape = tvec!(outputs.to_dim(), oh.to_dim(), ow.to_dim());
    if batch {
        shape.insert(0, 1.to_dim());
    }
    Ok(tvec!(f32::fact(shape)))
}

impl TypedOp for Pointwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let input = inputs[0];
        ensure!(
            input.datum_type == f32::datum_type(),
            "Pointwise is f32 only"
        );
        let rank = input.rank();
        ensure!(rank >= 3, "Pointwise needs a channel and two spatial axes");
        let mut shape = tvec!(
            self.outputs.to_dim(),
            input.shape[rank - 2].clone(),
            input.shape[rank - 1].clone()
        );
        if self.batch {
            shape.insert(0, 1.to_dim());
        }
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(shape: &[usize], value: f32) -> Tensor {
        let mut tensor = Tensor::zero::<f32>(shape).unwrap();
        planes_mut(&mut tensor).unwrap().fill(value);
        tensor
    }

    fn values(tensor: &Tensor) -> Vec<f32> {
        tensor
            .try_as_plain_ram()
            .unwrap()
            .as_slice::<f32>()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_kept_output_comes_back_once_nobody_holds_it() {
        let kept = KeptOutput::default();
        drop(kept.keep(filled(&[2, 3, 4], 1.5)));
        assert_eq!(values(&kept.take(&[2, 3, 4]).unwrap()), vec![1.5; 24]);
        // Taken: the next run starts afresh.
        assert_eq!(values(&kept.take(&[2, 3, 4]).unwrap()), vec![0.0; 24]);
    }

    #[test]
    fn a_held_or_other_shaped_output_is_not_written_over() {
        let kept = KeptOutput::default();
        let held = kept.keep(filled(&[2, 3, 4], 1.5));
        assert_eq!(values(&kept.take(&[2, 3, 4]).unwrap()), vec![0.0; 24]);
        assert_eq!(values(&held[0]), vec![1.5; 24]);
        drop(kept.keep(filled(&[2, 3, 4], 2.5)));
        assert_eq!(values(&kept.take(&[1, 2, 3, 4]).unwrap()), vec![0.0; 24]);
    }

    #[test]
    fn outputs_beyond_the_budget_are_not_kept() {
        let floats = KEPT_BUDGET / std::mem::size_of::<f32>() + 1;
        let kept = KeptOutput::default();
        drop(kept.keep(filled(&[floats, 1, 1], 1.0)));
        assert!(kept.0.lock().unwrap().is_none());
        // What was admitted is given back: a small one is kept again.
        drop(kept.keep(filled(&[1, 2, 2], 1.0)));
        assert_eq!(values(&kept.take(&[1, 2, 2]).unwrap()), vec![1.0; 4]);
    }

    #[test]
    fn a_scratch_buffer_is_lent_again_once_given_back() {
        // Run on a thread of its own: its pool starts empty.
        std::thread::spawn(|| {
            let mut first = Scratch::floats(100);
            assert_eq!(first.floats_mut().len(), 104);
            first.floats_mut().fill(2.5);
            // Held: a second buffer is another one, new and zeroed.
            let mut second = Scratch::lanes(3);
            assert_eq!(second.len(), 3);
            assert!(second.floats_mut().iter().all(|&v| v == 0.0));
            drop(second);
            drop(first);
            // Given back: the smallest that holds the request is lent, with
            // what its last user left; a larger request grows the largest.
            assert!(Scratch::lanes(2).floats_mut().iter().all(|&v| v == 0.0));
            assert!(Scratch::lanes(10).floats_mut().iter().all(|&v| v == 2.5));
            let mut grown = Scratch::lanes(20);
            assert_eq!(grown.len(), 20);
            assert!(grown.floats_mut()[..104].iter().all(|&v| v == 2.5));
            assert!(grown.floats_mut()[104..].iter().all(|&v| v == 0.0));
        })
        .join()
        .unwrap();
    }

    /// A strip of `count` blocks of `channels` inputs, varied values.
    fn strip(count: usize, channels: usize) -> Vec<Lane> {
        (0..count * channels * 2)
            .map(|i| std::array::from_fn(|j| ((i * 8 + j) * 7919 % 997) as f32 / 250.0 - 2.0))
            .collect()
    }

    /// Every position each output plane of `pointwise` gets from `sweep`
    /// over `strip` at `places`, computed one multiply-add at a time;
    /// positions no block covers keep 7.
    fn expected(
        pointwise: &Pointwise,
        weights: &[f32],
        bias: &[f32],
        strip: &[Lane],
        places: &[(usize, usize)],
        len: usize,
    ) -> Vec<Vec<f32>> {
        let channels = pointwise.inputs;
        (0..pointwise.outputs)
            .map(|o| {
                let mut plane = vec![7.0; len];
                for (b, &(start, n)) in places.iter().enumerate() {
                    let block = strip[b * channels * 2..][..channels * 2].as_flattened();
                    for j in 0..n {
                        let mut sum = bias[o];
                        for c in 0..channels {
                            sum = block[c * BLOCK + j].mul_add(weights[o * channels + c], sum);
                        }
                        plane[start + j] = sum.max(pointwise.clamp.low).min(pointwise.clamp.high);
                    }
                }
                plane
            })
            .collect()
    }

    #[test]
    fn every_sweep_computes_each_covered_position_and_no_other() {
        // Four side by side, two more, a block cut short, one alone, then
        // two side by side.
        let places = [
            (0, 16),
            (16, 16),
            (32, 16),
            (48, 16),
            (64, 16),
            (80, 16),
            (96, 9),
            (128, 16),
            (160, 16),
            (176, 16),
        ];
        let len = 192;
        for (channels, outputs) in [(1, 1), (3, 6), (27, 13), (64, 32), (5, 7)] {
            let weights: Vec<f32> = (0..outputs * channels)
                .map(|i| (i * 31 % 17) as f32 / 8.0 - 1.0)
                .collect();
            let bias: Vec<f32> = (0..outputs).map(|o| o as f32 / 4.0 - 0.5).collect();
            let weights_tensor = Tensor::from_shape(&[outputs, channels], &weights).unwrap();
            for clamp in [
                Clamp::NONE,
                Clamp {
                    low: 0.0,
                    high: 6.0,
                },
            ] {
                let pointwise = Pointwise::new(&weights_tensor, &bias, clamp, false).unwrap();
                let strip = strip(places.len(), channels);
                let want = expected(&pointwise, &weights, &bias, &strip, &places, len);
                let place = |b: usize| places[b];
                let mut sweeps: Vec<(&str, Vec<Vec<f32>>)> = Vec::new();
                let mut planes = vec![vec![7.0; len]; outputs];
                let mut out: Vec<&mut [f32]> = planes.iter_mut().map(|p| &mut p[..]).collect();
                pointwise.sweep_lanes(&strip, place, &mut out).unwrap();
                sweeps.push(("eight lanes", planes));
                #[cfg(target_arch = "x86_64")]
                if super::super::wide::available() {
                    let mut planes = vec![vec![7.0; len]; outputs];
                    let mut out: Vec<&mut [f32]> = planes.iter_mut().map(|p| &mut p[..]).collect();
                    pointwise.sweep_pairs(&strip, place, &mut out).unwrap();
                    sweeps.push(("AVX-512 pairs", planes));
                } else {
                    eprintln!("no AVX-512 on this CPU: its kernels are not tested");
                }
                for (name, planes) in sweeps {
                    assert_eq!(
                        planes, want,
                        "{name}, {channels} → {outputs} channels, {clamp}"
                    );
                }
            }
        }
    }
}
