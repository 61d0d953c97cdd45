//! [`Pointwise`]: a 1×1 convolution over channel-first `f32` planes, its
//! bias and an optional ReLU in one pass, computed a tile of output channels
//! by positions at a time.
//!
//! tract lowers a 1×1 convolution to a matrix product whose `m` side is the
//! positions: it packs the input into panels, then its kernel writes every
//! output channel's row a few positions at a time, so a wide expansion (16 →
//! 96 channels over 112×192 positions in CenterFace) writes 96 rows side by
//! side and runs at half the speed of its larger products. Here the input is
//! laid out once in blocks of 16 positions, and each tile of 6 output
//! channels sweeps all positions, holding 6×16 sums in registers (12
//! eight-wide vectors under AVX2) while it walks the input channels; a tile
//! writes 6 rows in order. The loops are plain arrays the compiler turns
//! into fused multiply-adds when the target has them (x86-64-v3, see
//! `.cargo/config.toml`), and tiles are spread over tract's threads.

use tract_onnx::tract_core::internal::*;

/// Output channels per tile.
const TILE_CHANNELS: usize = 6;
/// Positions per block: two vectors of eight.
const BLOCK: usize = 16;

type Lane = [f32; 8];

/// `out[o] = bias[o] + Σ_i weights[o][i] · x[i]` over every position of
/// `[.., I, H, W]` (leading axes of 1), then `max(0, ·)` when `relu`; the
/// output is `[O, H, W]`, or `[1, O, H, W]` when `batch`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pointwise {
    inputs: usize,
    outputs: usize,
    /// The weights regrouped per tile, flat: tile `t`, input `i` holds the
    /// weights of output channels `6t..6t+6` (zeros past the last).
    tiled_weights: Arc<Tensor>,
    /// The biases alike, 6 per tile.
    tiled_bias: Arc<Tensor>,
    relu: bool,
    batch: bool,
}

impl Pointwise {
    /// `weights` is `[O, I]`, `bias` has `O` values.
    pub fn new(weights: &Tensor, bias: &[f32], relu: bool, batch: bool) -> TractResult<Self> {
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
            relu,
            batch,
        })
    }
}

#[inline(always)]
fn multiply_add(sum: &mut Lane, x: &Lane, w: f32) {
    for j in 0..8 {
        // Without FMA in the target, `mul_add` would be a library call.
        sum[j] = if cfg!(target_feature = "fma") {
            x[j].mul_add(w, sum[j])
        } else {
            x[j] * w + sum[j]
        };
    }
}

/// The sums of one tile over one block: `x` is the block's inputs (two
/// lanes per input channel), `weights` the tile's weights per input channel.
/// Kept out of line: inlined into the caller's loops, the compiler no
/// longer holds the sums in vector registers.
#[inline(never)]
fn tile_sums(
    x: &[Lane],
    weights: &[[f32; TILE_CHANNELS]],
    bias: &[f32; TILE_CHANNELS],
    sums: &mut [[Lane; 2]; TILE_CHANNELS],
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
    *sums = s;
}

impl Op for Pointwise {
    fn name(&self) -> StaticName {
        "Pointwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} → {} channels{}",
            self.inputs,
            self.outputs,
            if self.relu { ", ReLU" } else { "" }
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Pointwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        let rank = shape.len();
        let (outputs, channels) = (self.outputs, self.inputs);
        ensure!(
            rank >= 3 && shape[rank - 3] == channels && shape[..rank - 3].iter().all(|&d| d == 1),
            "Pointwise of {channels} input channels on {shape:?}"
        );
        let (h, w) = (shape[rank - 2], shape[rank - 1]);
        let positions = h * w;
        let data = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let (weights, _) = self
            .tiled_weights
            .try_as_plain_ram()?
            .as_slice::<f32>()?
            .as_chunks::<TILE_CHANNELS>();
        let (bias, _) = self
            .tiled_bias
            .try_as_plain_ram()?
            .as_slice::<f32>()?
            .as_chunks::<TILE_CHANNELS>();
        // The input in blocks of 16 positions: block b, channel i is lanes
        // 2(b·I + i) and 2(b·I + i) + 1; the last block padded with zeros.
        let blocks = positions.div_ceil(BLOCK);
        let mut x = vec![[0f32; 8]; blocks * channels * 2];
        for (b, block) in x.chunks_exact_mut(channels * 2).enumerate() {
            let start = b * BLOCK;
            let len = BLOCK.min(positions - start);
            for (i, lanes) in block.chunks_exact_mut(2).enumerate() {
                lanes.as_flattened_mut()[..len]
                    .copy_from_slice(&data[i * positions + start..][..len]);
            }
        }
        // Whole tiles; the rows past the last channel are dropped at the end.
        let tiles = outputs.div_ceil(TILE_CHANNELS);
        let mut out = vec![0f32; tiles * TILE_CHANNELS * positions];
        let tile_len = TILE_CHANNELS * positions;
        if positions > 0 {
            tract_linalg::multithread::par_chunks_mut(
                &mut out,
                tile_len,
                outputs * positions * channels,
                |first, rows| {
                    for (t, rows) in rows.chunks_exact_mut(tile_len).enumerate() {
                        let tile = first + t;
                        let tile_weights = &weights[tile * channels..][..channels];
                        let mut sums = [[[0f32; 8]; 2]; TILE_CHANNELS];
                        for (b, block) in x.chunks_exact(channels * 2).enumerate() {
                            tile_sums(block, tile_weights, &bias[tile], &mut sums);
                            let start = b * BLOCK;
                            let len = BLOCK.min(positions - start);
                            for (row, sum) in rows.chunks_exact_mut(positions).zip(&mut sums) {
                                if self.relu {
                                    for v in sum.as_flattened_mut() {
                                        *v = v.max(0.0);
                                    }
                                }
                                // Copies of a length the compiler knows are
                                // inlined; a slice copy would call memmove
                                // once per row and block.
                                if len == BLOCK {
                                    let dst = &mut row[start..start + BLOCK];
                                    dst[..8].copy_from_slice(&sum[0]);
                                    dst[8..].copy_from_slice(&sum[1]);
                                } else {
                                    row[start..start + len]
                                        .copy_from_slice(&sum.as_flattened()[..len]);
                                }
                            }
                        }
                    }
                    Ok(())
                },
            )?;
        }
        out.truncate(outputs * positions);
        let shape: TVec<usize> = if self.batch {
            tvec!(1, outputs, h, w)
        } else {
            tvec!(outputs, h, w)
        };
        let out = tract_ndarray::ArrayD::from_shape_vec(&*shape, out)?;
        Ok(tvec!(out.into_tensor().into_tvalue()))
    }
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
