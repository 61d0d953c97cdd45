//! The tile kernel of [`super::pointwise::tile_store`] (one, two or four
//! blocks at a time, and reading a full convolution's taps straight from
//! its input rows) and the depthwise row of [`super::depthwise_pointwise`]
//! for CPUs with AVX-512, chosen at run time.
//!
//! The build targets x86-64-v3 (AVX2), so that it runs on any x86 CPU of the
//! last ten years; there a block of 16 positions is two 256-bit vectors.
//! Where the CPU also has AVX-512 (Intel Xeon since Skylake, AMD Zen 4), a
//! block is one 512-bit register and each multiply-add does twice the work.
//! The code is the same plain Rust as the portable kernels, in functions
//! compiled with the wider instruction set; the only `unsafe` of the
//! workspace is their calls, after the CPU has been asked.
//!
//! Measured by `cargo xtask bench pipeline` on the same machine and minute:
//! see the README's performance section.

use super::depthwise_pointwise::{Planes, depthwise_row_body};
use super::pointwise::{BLOCK, Clamp, Lane, TILE_CHANNELS};

/// Whether this CPU runs [`tile_store`]. The answer is cached by the
/// standard library after the first question.
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// As [`super::pointwise::tile_store`]; the caller has checked
/// [`available`].
pub(super) fn tile_store(
    x: &[Lane],
    weights: &[[f32; TILE_CHANNELS]],
    bias: &[f32; TILE_CHANNELS],
    clamp: Clamp,
    out: [&mut [f32; BLOCK]; TILE_CHANNELS],
) {
    assert!(available(), "AVX-512 tile kernel on a CPU without AVX-512F");
    // SAFETY: `tile_store_512` is safe Rust compiled with AVX-512F enabled;
    // calling it is sound on a CPU that has the feature, asserted above.
    #[allow(unsafe_code)]
    unsafe {
        tile_store_512(x, weights, bias, clamp, out)
    }
}

/// The sums of one tile: 6 output channels over one block of 16 positions,
/// a 512-bit register each. Indexed loops over fixed-size arrays, as in the
/// portable kernel, so that the sums stay in registers.
#[target_feature(enable = "avx512f")]
#[inline(never)]
#[allow(clippy::needless_range_loop)]
fn tile_store_512(
    x: &[Lane],
    weights: &[[f32; TILE_CHANNELS]],
    bias: &[f32; TILE_CHANNELS],
    clamp: Clamp,
    out: [&mut [f32; BLOCK]; TILE_CHANNELS],
) {
    let (blocks, _) = x.as_flattened().as_chunks::<BLOCK>();
    let mut s = [[0f32; BLOCK]; TILE_CHANNELS];
    for o in 0..TILE_CHANNELS {
        s[o] = [bias[o]; BLOCK];
    }
    for (x, w) in blocks.iter().zip(weights) {
        for o in 0..TILE_CHANNELS {
            multiply_add(&mut s[o], x, w[o]);
        }
    }
    clamp_sums(&mut s, clamp);
    let [r0, r1, r2, r3, r4, r5] = out;
    for (o, row) in [r0, r1, r2, r3, r4, r5].into_iter().enumerate() {
        *row = s[o];
    }
}

/// [`tile_store`] over two blocks that lie side by side in the output: `x`
/// the two blocks' inputs, `out` the 32 values of each of the 6 output
/// rows. Twelve sums in flight instead of six: a multiply-add takes four
/// cycles and two start each cycle, so six sums leave the units idle a
/// quarter of the time.
pub(super) fn tile_store_pair(
    x: [&[Lane]; 2],
    weights: &[[f32; TILE_CHANNELS]],
    bias: &[f32; TILE_CHANNELS],
    clamp: Clamp,
    out: [&mut [f32; 2 * BLOCK]; TILE_CHANNELS],
) {
    assert!(available(), "AVX-512 tile kernel on a CPU without AVX-512F");
    // SAFETY: as in `tile_store`.
    #[allow(unsafe_code)]
    unsafe {
        tile_store_pair_512(x, weights, bias, clamp, out)
    }
}

#[target_feature(enable = "avx512f")]
#[inline(never)]
#[allow(clippy::needless_range_loop)]
fn tile_store_pair_512(
    x: [&[Lane]; 2],
    weights: &[[f32; TILE_CHANNELS]],
    bias: &[f32; TILE_CHANNELS],
    clamp: Clamp,
    out: [&mut [f32; 2 * BLOCK]; TILE_CHANNELS],
) {
    let (first, _) = x[0].as_flattened().as_chunks::<BLOCK>();
    let (second, _) = x[1].as_flattened().as_chunks::<BLOCK>();
    // Two arrays of sums, not one of pairs: indexed that way the compiler
    // kept them on the stack, one float at a time.
    let mut s = [[0f32; BLOCK]; TILE_CHANNELS];
    let mut t = [[0f32; BLOCK]; TILE_CHANNELS];
    for o in 0..TILE_CHANNELS {
        s[o] = [bias[o]; BLOCK];
        t[o] = [bias[o]; BLOCK];
    }
    for ((a, b), w) in first.iter().zip(second).zip(weights) {
        for o in 0..TILE_CHANNELS {
            multiply_add(&mut s[o], a, w[o]);
            multiply_add(&mut t[o], b, w[o]);
        }
    }
    clamp_sums(&mut s, clamp);
    clamp_sums(&mut t, clamp);
    let [r0, r1, r2, r3, r4, r5] = out;
    for (o, row) in [r0, r1, r2, r3, r4, r5].into_iter().enumerate() {
        let (left, right) = row.split_at_mut(BLOCK);
        left.copy_from_slice(&s[o]);
        right.copy_from_slice(&t[o]);
    }
}

/// [`tile_store`] over four blocks side by side in the output: 24 sums in
/// flight, four vector loads and six broadcasts for every 24 multiply-adds
/// (a pair takes eight loads for 12), so the kernel waits less on loads and
/// reads each input channel's weights once for 64 positions.
pub(super) fn tile_store_quad(
    x: [&[Lane]; 4],
    weights: &[[f32; TILE_CHANNELS]],
    bias: &[f32; TILE_CHANNELS],
    clamp: Clamp,
    out: [&mut [f32; 4 * BLOCK]; TILE_CHANNELS],
) {
    assert!(available(), "AVX-512 tile kernel on a CPU without AVX-512F");
    // SAFETY: as in `tile_store`.
    #[allow(unsafe_code)]
    unsafe {
        tile_store_quad_512(x, weights, bias, clamp, out)
    }
}

#[target_feature(enable = "avx512f")]
#[inline(never)]
#[allow(clippy::needless_range_loop)]
fn tile_store_quad_512(
    x: [&[Lane]; 4],
    weights: &[[f32; TILE_CHANNELS]],
    bias: &[f32; TILE_CHANNELS],
    clamp: Clamp,
    out: [&mut [f32; 4 * BLOCK]; TILE_CHANNELS],
) {
    let (b0, _) = x[0].as_flattened().as_chunks::<BLOCK>();
    let (b1, _) = x[1].as_flattened().as_chunks::<BLOCK>();
    let (b2, _) = x[2].as_flattened().as_chunks::<BLOCK>();
    let (b3, _) = x[3].as_flattened().as_chunks::<BLOCK>();
    // Four arrays of sums, one per block, as in the pair kernel.
    let mut s0 = [[0f32; BLOCK]; TILE_CHANNELS];
    let mut s1 = [[0f32; BLOCK]; TILE_CHANNELS];
    let mut s2 = [[0f32; BLOCK]; TILE_CHANNELS];
    let mut s3 = [[0f32; BLOCK]; TILE_CHANNELS];
    for o in 0..TILE_CHANNELS {
        s0[o] = [bias[o]; BLOCK];
        s1[o] = [bias[o]; BLOCK];
        s2[o] = [bias[o]; BLOCK];
        s3[o] = [bias[o]; BLOCK];
    }
    for ((((x0, x1), x2), x3), w) in b0.iter().zip(b1).zip(b2).zip(b3).zip(weights) {
        for o in 0..TILE_CHANNELS {
            multiply_add(&mut s0[o], x0, w[o]);
            multiply_add(&mut s1[o], x1, w[o]);
            multiply_add(&mut s2[o], x2, w[o]);
            multiply_add(&mut s3[o], x3, w[o]);
        }
    }
    clamp_sums(&mut s0, clamp);
    clamp_sums(&mut s1, clamp);
    clamp_sums(&mut s2, clamp);
    clamp_sums(&mut s3, clamp);
    let [r0, r1, r2, r3, r4, r5] = out;
    for (o, row) in [r0, r1, r2, r3, r4, r5].into_iter().enumerate() {
        let (quarters, _) = row.as_chunks_mut::<BLOCK>();
        quarters[0] = s0[o];
        quarters[1] = s1[o];
        quarters[2] = s2[o];
        quarters[3] = s3[o];
    }
}

/// The sums of one tile over `NB` blocks (1, 2 or 4) side by side of a
/// full convolution at stride 1, read straight from padded input rows
/// instead of an unfolded copy: `rows` holds, for each input channel and
/// kernel row in the weights' order, a row of `width` values, and block `b`
/// of tap `kx` reads 16 of them from `col + 16·b + kx`. `out[o]` takes the
/// `16·NB` sums of channel `o`.
#[allow(clippy::too_many_arguments)]
pub(super) fn taps<const K: usize, const NB: usize>(
    rows: &[f32],
    width: usize,
    col: usize,
    weights: &[[f32; TILE_CHANNELS]],
    bias: &[f32; TILE_CHANNELS],
    clamp: Clamp,
    out: [&mut [f32]; TILE_CHANNELS],
) {
    assert!(available(), "AVX-512 tile kernel on a CPU without AVX-512F");
    assert!(
        matches!(NB, 1 | 2 | 4)
            && col + NB * BLOCK + K - 1 <= width
            && rows.len() >= weights.len() / K * width
            && out.iter().all(|row| row.len() >= NB * BLOCK),
        "taps of {NB} blocks from column {col} of rows {width} wide"
    );
    // SAFETY: as in `tile_store`.
    #[allow(unsafe_code)]
    unsafe {
        taps_512::<K, NB>(rows, width, col, weights, bias, clamp, out)
    }
}

#[target_feature(enable = "avx512f")]
#[inline(never)]
#[allow(clippy::needless_range_loop)]
fn taps_512<const K: usize, const NB: usize>(
    rows: &[f32],
    width: usize,
    col: usize,
    weights: &[[f32; TILE_CHANNELS]],
    bias: &[f32; TILE_CHANNELS],
    clamp: Clamp,
    out: [&mut [f32]; TILE_CHANNELS],
) {
    // One array of sums per block, as in the other kernels; the ones past
    // `NB` are never touched and vanish.
    let mut s0 = [[0f32; BLOCK]; TILE_CHANNELS];
    let mut s1 = [[0f32; BLOCK]; TILE_CHANNELS];
    let mut s2 = [[0f32; BLOCK]; TILE_CHANNELS];
    let mut s3 = [[0f32; BLOCK]; TILE_CHANNELS];
    for o in 0..TILE_CHANNELS {
        s0[o] = [bias[o]; BLOCK];
        s1[o] = [bias[o]; BLOCK];
        s2[o] = [bias[o]; BLOCK];
        s3[o] = [bias[o]; BLOCK];
    }
    let reach = NB * BLOCK + K - 1;
    for (row, taps) in rows.chunks_exact(width).zip(weights.chunks_exact(K)) {
        let row = &row[col..][..reach];
        for (kx, w) in taps.iter().enumerate() {
            let x = &row[kx..];
            for o in 0..TILE_CHANNELS {
                multiply_add_from(&mut s0[o], x, w[o]);
                if NB > 1 {
                    multiply_add_from(&mut s1[o], &x[BLOCK..], w[o]);
                }
                if NB > 2 {
                    multiply_add_from(&mut s2[o], &x[2 * BLOCK..], w[o]);
                    multiply_add_from(&mut s3[o], &x[3 * BLOCK..], w[o]);
                }
            }
        }
    }
    clamp_sums(&mut s0, clamp);
    clamp_sums(&mut s1, clamp);
    clamp_sums(&mut s2, clamp);
    clamp_sums(&mut s3, clamp);
    for (o, row) in out.into_iter().enumerate() {
        let (blocks, _) = row.as_chunks_mut::<BLOCK>();
        blocks[0] = s0[o];
        if NB > 1 {
            blocks[1] = s1[o];
        }
        if NB > 2 {
            blocks[2] = s2[o];
            blocks[3] = s3[o];
        }
    }
}

/// `sum += x[..16] · w`, one vector from a slice.
#[inline(always)]
fn multiply_add_from(sum: &mut [f32; BLOCK], x: &[f32], w: f32) {
    let x = &x[..BLOCK];
    for j in 0..BLOCK {
        sum[j] = x[j].mul_add(w, sum[j]);
    }
}

/// Every sum of a tile kept within `clamp` (nothing done for no bound).
/// Indexed loops, as in the portable kernel's epilogue.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn clamp_sums(sums: &mut [[f32; BLOCK]; TILE_CHANNELS], clamp: Clamp) {
    let (low, high) = (clamp.low, clamp.high);
    let floor = low != f32::NEG_INFINITY;
    let ceiling = high != f32::INFINITY;
    for o in 0..TILE_CHANNELS {
        if floor {
            for j in 0..BLOCK {
                sums[o][j] = sums[o][j].max(low);
            }
        }
        if ceiling {
            for j in 0..BLOCK {
                sums[o][j] = sums[o][j].min(high);
            }
        }
    }
}

/// `sum += x · w`, one vector.
#[inline(always)]
fn multiply_add(sum: &mut [f32; BLOCK], x: &[f32; BLOCK], w: f32) {
    for j in 0..BLOCK {
        sum[j] = x[j].mul_add(w, sum[j]);
    }
}

/// As the depthwise row of [`super::depthwise_pointwise`]; the caller has
/// checked [`available`].
pub(super) fn depthwise_row<const K: usize, const S: usize>(
    planes: &Planes,
    y: usize,
    out: &mut [Lane],
) {
    assert!(
        available(),
        "AVX-512 depthwise row on a CPU without AVX-512F"
    );
    // SAFETY: as in `tile_store`.
    #[allow(unsafe_code)]
    unsafe {
        depthwise_row_512::<K, S>(planes, y, out)
    }
}

#[target_feature(enable = "avx512f")]
#[inline(never)]
fn depthwise_row_512<const K: usize, const S: usize>(planes: &Planes, y: usize, out: &mut [Lane]) {
    depthwise_row_body::<K, S>(planes, y, out)
}
