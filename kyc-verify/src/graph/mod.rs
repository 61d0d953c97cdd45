//! Rewrites of a decluttered tract graph that keep its arithmetic and make it
//! run faster on this engine. Each one is measured by `cargo xtask bench ops`
//! and checked against the unrewritten graph by the tests below.
//!
//! Strided depthwise convolutions. tract 0.23 runs a depthwise convolution
//! with a vectorised kernel only when the input it walks along a row is
//! contiguous, that is at stride 1 along the row; otherwise it falls back to a
//! scalar loop that is about fourteen times slower per output. A convolution
//! of stride 2 along the row is the one of stride 1 with the same padding,
//! sampled at every second column: output `j` of the strided one sums the
//! inputs at `2j + k - pad`, which is output `2j` of the other. So the rewrite
//! keeps the row stride (every second row is simply not computed), computes
//! twice as many outputs per row at the fast rate, and [`KeepEven`] keeps the
//! even columns. tract's own `Downsample` would copy element by element
//! through ndarray (1.2 ms for one axis of CenterFace's first strided layer).
//! Striding the rows in the convolution rather than in the keeping halves the
//! intermediate tensor, which on a selfie is 24 MB at stride 1 (CenterFace on
//! a selfie 81 → 70 ms against stride 1 on both axes).
//!
//! 2×2 max-pooling at stride 2. tract's `OptMaxPool` walks a generic patch
//! per output (2.8 ms on the anti-spoofing model's 64×126×126 layer, 38% of
//! the model); [`PairMax`] takes the larger of two rows, then of each pair in
//! it, with loops the compiler vectorises (0.5 ms).
//!
//! A scale or shift along the last axis. A batch normalisation that tf2onnx
//! leaves after a channel-last convolution is a `Mul` and an `Add` by `[1, 1,
//! 1, C]` constants, which tract evaluates through ndarray's generic
//! broadcasting (4 ms of faceres-deep's 27); [`LastAxisAffine`] does both in
//! one pass over the data.
//!
//! 1×1 convolutions over channel-first planes (the expansions and
//! projections of CenterFace's and PP-OCR's inverted-residual blocks), with
//! their bias and ReLU, become [`Pointwise`] (in `pointwise.rs`): tiles of
//! output channels sweep the positions with their sums in vector registers.
//! At one thread with the x86-64-v3 build, CenterFace's 1×1 convolutions on a
//! liveness frame went from 17 ms of matrix products and packing to 12 ms,
//! the 16 → 96 channel expansion alone from 2.1 to 1.1 ms.
//!
//! With them, at one thread (`cargo xtask bench pipeline`): CenterFace on a
//! 224×384 liveness frame 33 → 26 ms, on a 384×640 selfie about 92 → 69 ms,
//! the anti-spoofing model 8.1 → 4.5 ms, faceres-deep 28.5 → 21 ms, PP-OCR
//! detection 120 → 107 ms; outputs equal onnxruntime's as before.
//!
//! Then the convolutions around the 1×1 ones, on the same tiles, each rule
//! taking the batch normalisation (`Mul`, `Add` per channel, folded into the
//! weights) and the activation (`Max`/`Min` by constants: ReLU, ReLU6, as a
//! [`Clamp`]) that follow a convolution:
//! - a depthwise convolution read only by a 1×1 one becomes one
//!   [`DepthwisePointwise`]: the depthwise sums of a strip of output rows go
//!   straight into the block layout the tiles read, never to memory;
//! - a 1×1 expansion read only by such a pair makes the whole block an
//!   [`InvertedResidual`]: each thread expands input rows into a small ring
//!   of padded rows, just before the depthwise convolution reads them;
//! - a full 3×3 or 5×5 convolution at stride 1 becomes a [`DenseConv`]: each
//!   block of 16 outputs is unfolded (16 values per input channel and tap)
//!   and swept by the tiles like a 1×1 convolution's inputs.
//!
//! All of them split their output rows (or positions) between tract's
//! threads, each thread doing every step for its share. At one thread,
//! CenterFace on a frame went 23 → 16 ms (onnxruntime: 12 ms), PP-OCR
//! detection 92 → 62 ms (onnxruntime: 65 ms), the anti-spoofing model
//! 4.3 → 3.0 ms.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::model::Rewriter;
use tract_onnx::tract_core::ops::binary::{BinMiniOp, TypedBinOp};
use tract_onnx::tract_core::ops::cnn::conv::Conv;
use tract_onnx::tract_core::ops::cnn::{KernelFormat, MaxPool, PaddingSpec};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::{Add, Max, Min, Mul};
use tract_onnx::tract_core::ops::nn::DataFormat;

mod dense;
mod depthwise_pointwise;
mod pointwise;
#[cfg(target_arch = "x86_64")]
mod wide;
pub use dense::DenseConv;
pub use depthwise_pointwise::{Depthwise, DepthwisePointwise, InvertedResidual};
pub use pointwise::{Clamp, Pointwise};

/// Whether some node of `model` (typed, rewritten by [`speed_up`]) is one
/// of this module's ops with enough work to split over threads: what makes
/// keeping the pool's threads awake through a run pay (see
/// `runtime::OnnxModel::run`).
pub fn splits_over_threads(model: &TypedModel) -> bool {
    model.nodes.iter().any(|node| {
        let Some(&input) = node.inputs.first() else {
            return false;
        };
        let Some(shape) = model
            .outlet_fact(input)
            .ok()
            .and_then(|fact| fact.shape.as_concrete())
        else {
            return false;
        };
        let [.., h, w] = *shape else {
            return false;
        };
        let op = node.op();
        let work = if let Some(op) = op.downcast_ref::<Pointwise>() {
            op.work(h, w)
        } else if let Some(op) = op.downcast_ref::<DenseConv>() {
            op.work(h, w)
        } else if let Some(op) = op.downcast_ref::<DepthwisePointwise>() {
            op.work(h, w)
        } else if let Some(op) = op.downcast_ref::<InvertedResidual>() {
            op.work(h, w)
        } else {
            0
        };
        work >= pointwise::PARALLEL_WORK
    })
}

/// Applies every rewrite of this module to `model`, which must be typed and
/// decluttered; optimise it afterwards.
pub fn speed_up(model: &mut TypedModel) -> TractResult<()> {
    // First, while the depthwise convolutions are still `Conv`s and the 1×1
    // ones `EinSum`s.
    Rewriter::<()>::default()
        .with_rule_for("depthwise-pointwise", depthwise_pointwise)
        .with_rule_for("dense-conv", dense_conv)
        .rewrite(&(), model)?;
    Rewriter::<()>::default()
        .with_rule_for("strided-depthwise", strided_depthwise)
        .with_rule_for("pair-max", pair_max)
        .with_rule_for("last-axis-affine", last_axis_affine)
        .with_rule_for("affine-after-affine", affine_after_affine)
        .with_rule_for("pointwise", pointwise)
        .rewrite(&(), model)?;
    // Last, when the expansions before the depthwise convolutions have
    // become `Pointwise`.
    Rewriter::<()>::default()
        .with_rule_for("inverted-residual", inverted_residual)
        .with_rule_for("pooled-dense-conv", pooled_dense_conv)
        .rewrite(&(), model)?;
    Rewriter::<()>::default()
        .with_rule_for("residual-sum", residual_sum)
        .rewrite(&(), model)
}

/// The depthwise convolution of stride 2 along the row as one of stride 1
/// along it, followed by keeping the even columns. Only channel-first `f32`
/// convolutions with explicit (or no) padding and no dilation qualify: with
/// "same" padding the pads depend on the stride, and with ceil-mode pooling
/// padding the output length does.
fn strided_depthwise(
    _: &(),
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    op: &Conv,
) -> TractResult<Option<TypedModelPatch>> {
    let input = model.outlet_fact(node.inputs[0])?;
    // tract's depthwise op is built for a concrete input shape.
    if input.shape.as_concrete().is_none() {
        return Ok(None);
    }
    let depthwise = op.group > 1
        && op.group == op.input_channels()
        && op.group == op.output_channels()
        && node.inputs.len() == 3
        && op.q_params.is_none()
        && input.datum_type == f32::datum_type();
    let channel_first = matches!(op.pool_spec.data_format, DataFormat::NCHW | DataFormat::CHW);
    let undilated = op
        .pool_spec
        .dilations
        .as_ref()
        .is_none_or(|dilations| dilations.iter().all(|&d| d == 1));
    let padding_kept = matches!(
        op.pool_spec.padding,
        PaddingSpec::Valid | PaddingSpec::Explicit(..) | PaddingSpec::ExplicitOnnxPool(_, _, false)
    );
    let Some(strides) = op.pool_spec.strides.clone() else {
        return Ok(None);
    };
    // The scalar loop is taken when the row (last) axis is strided; a row
    // stride above 2 would compute too many outputs to win.
    let row_strided = strides.last() == Some(&2) && strides.iter().all(|&s| s == 1 || s == 2);
    if !(depthwise && channel_first && undilated && padding_kept && row_strided) {
        return Ok(None);
    }

    let mut along_row_one = op.clone();
    let mut unit_row_stride = strides.clone();
    if let Some(last) = unit_row_stride.last_mut() {
        *last = 1;
    }
    along_row_one.pool_spec.strides = Some(unit_row_stride);
    let mut patch = TypedModelPatch::default();
    let taps = patch.taps(model, &node.inputs)?;
    let wire = along_row_one.wire_as_depth_wise(&mut patch, name, &taps)?;
    let wire = patch.wire_node(format!("{name}.keep_even"), KeepEven, &[wire])?[0];
    patch.shunt_outside(model, node.id.into(), wire)?;
    Ok(Some(patch))
}

/// A 2×2, stride-2 max-pooling without padding on channel-first `f32` data
/// becomes [`PairMax`].
fn pair_max(
    _: &(),
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    op: &MaxPool,
) -> TractResult<Option<TypedModelPatch>> {
    let input = model.outlet_fact(node.inputs[0])?;
    let spec = &op.pool_spec;
    let unpadded = match &spec.padding {
        PaddingSpec::Valid => true,
        PaddingSpec::Explicit(before, after)
        | PaddingSpec::ExplicitOnnxPool(before, after, false) => {
            before.iter().chain(after).all(|&p| p == 0)
        }
        _ => false,
    };
    let qualifies = op.with_index_outputs.is_none()
        && input.datum_type == f32::datum_type()
        && input.shape.as_concrete().is_some()
        && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        && *spec.kernel_shape == [2, 2]
        && spec.strides.as_deref() == Some(&[2, 2][..])
        && spec
            .dilations
            .as_ref()
            .is_none_or(|dilations| dilations.iter().all(|&d| d == 1))
        && unpadded;
    if !qualifies {
        return Ok(None);
    }
    TypedModelPatch::replace_single_op(model, node, &node.inputs, PairMax)
        .map(|patch| Some(patch.with_context(name)))
}

/// A `Mul` or `Add` of an `f32` tensor `[.., C]` by a constant `[1, .., 1, C]`
/// becomes [`LastAxisAffine`].
fn last_axis_affine(
    _: &(),
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    op: &TypedBinOp,
) -> TractResult<Option<TypedModelPatch>> {
    let scales = match op.0.name() {
        "Mul" => true,
        "Add" => false,
        _ => return Ok(None),
    };
    if node.inputs.len() != 2 {
        return Ok(None);
    }
    let facts = [
        model.outlet_fact(node.inputs[0])?,
        model.outlet_fact(node.inputs[1])?,
    ];
    let Some(constant) = facts.iter().position(|fact| fact.konst.is_some()) else {
        return Ok(None);
    };
    let (data, values) = (facts[1 - constant], facts[constant]);
    let (Some(shape), Some(values)) = (data.shape.as_concrete(), values.konst.as_ref()) else {
        return Ok(None);
    };
    let output = model.outlet_fact(node.id.into())?;
    let width = shape.last().copied().unwrap_or(0);
    let along_last = values.rank() <= shape.len()
        && values.shape().last() == Some(&width)
        && values.shape().iter().rev().skip(1).all(|&d| d == 1)
        && values.len() == width
        && width > 1;
    let plain = data.datum_type == f32::datum_type()
        && values.datum_type() == f32::datum_type()
        && output.datum_type == f32::datum_type()
        && output.shape.as_concrete() == Some(shape);
    if !(along_last && plain) {
        return Ok(None);
    }
    let data_input = node.inputs[1 - constant];
    // tract folds channel arithmetic into a matrix product or a full
    // convolution before it, which beats any pass of our own.
    let producer = model.node(data_input.node);
    if producer.op_is::<EinSum>() || producer.op_as::<Conv>().is_some_and(|conv| conv.group == 1) {
        return Ok(None);
    }
    let values = values.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
    let op = if scales {
        LastAxisAffine::new(values, vec![0.0; width])
    } else {
        LastAxisAffine::new(vec![1.0; width], values)
    };
    TypedModelPatch::replace_single_op(model, node, &[data_input], op)
        .map(|patch| Some(patch.with_context(name)))
}

/// Two [`LastAxisAffine`] in a row, the first read by nothing else, become
/// one: `(x·a + b)·c + d = x·(a·c) + (b·c + d)`.
fn affine_after_affine(
    _: &(),
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    second: &LastAxisAffine,
) -> TractResult<Option<TypedModelPatch>> {
    let Some((previous, first)) = sole_producer::<LastAxisAffine>(model, node)? else {
        return Ok(None);
    };
    let ((a, b), (c, d)) = (first.values()?, second.values()?);
    if a.len() != c.len() {
        return Ok(None);
    }
    let merged = LastAxisAffine::new(
        a.iter().zip(c).map(|(a, c)| a * c).collect(),
        b.iter()
            .zip(c)
            .zip(d)
            .map(|((b, c), d)| b * c + d)
            .collect(),
    );
    replace_chain(model, previous.inputs[0], name, merged, node.id.into()).map(Some)
}

/// A 1×1 convolution as tract's declutter leaves it (`EinSum` of channel-
/// first planes by a constant `[O, I]` matrix), with the per-channel bias
/// `Add` and the ReLU (`Max` with 0) that follow it when each is the only
/// reader of the one before, becomes [`Pointwise`].
fn pointwise(
    _: &(),
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    op: &EinSum,
) -> TractResult<Option<TypedModelPatch>> {
    let Some((pointwise, last)) = match_pointwise(model, node, op)? else {
        return Ok(None);
    };
    replace_chain(model, node.inputs[0], name, pointwise, last.id.into()).map(Some)
}

/// The [`Pointwise`] op that computes the 1×1 convolution `node` (an
/// `EinSum`) with the bias and ReLU after it, and the last node it replaces.
fn match_pointwise<'m>(
    model: &'m TypedModel,
    node: &'m TypedNode,
    op: &EinSum,
) -> TractResult<Option<(Pointwise, &'m TypedNode)>> {
    let batch = match op.axes.to_string().as_str() {
        "IHW,OI->OHW" | "NIHW,OI->OHW" => false,
        "NIHW,OI->NOHW" | "IHW,OI->NOHW" => true,
        _ => return Ok(None),
    };
    if op.q_params.is_some() || op.operating_dt != f32::datum_type() || node.inputs.len() != 2 {
        return Ok(None);
    }
    let input = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = input.shape.as_concrete() else {
        return Ok(None);
    };
    let Some(weights) = model.outlet_fact(node.inputs[1])?.konst.clone() else {
        return Ok(None);
    };
    if input.datum_type != f32::datum_type()
        || weights.datum_type() != f32::datum_type()
        || weights.rank() != 2
        || shape.len() < 3
        || shape[..shape.len() - 3].iter().any(|&d| d != 1)
        || weights.shape()[1] != shape[shape.len() - 3]
        || weights.shape()[1] == 0
    {
        return Ok(None);
    }
    let outputs = weights.shape()[0];
    let mut last = node;
    let mut bias = vec![0f32; outputs];
    if let Some((add, values)) = only_reader_with_constant::<Add>(model, last)?
        && let Some(values) = per_channel(&values, outputs)?
        && model.outlet_fact(add.id.into())?.shape == model.outlet_fact(node.id.into())?.shape
    {
        bias = values;
        last = add;
    }
    let (clamp, last) = clamp_after(model, last)?;
    let rank = shape.len();
    let mut produced = vec![outputs, shape[rank - 2], shape[rank - 1]];
    if batch {
        produced.insert(0, 1);
    }
    if model.outlet_fact(last.id.into())?.shape.as_concrete() != Some(&produced[..]) {
        return Ok(None);
    }
    Ok(Some((Pointwise::new(&weights, &bias, clamp, batch)?, last)))
}

/// A convolution [`folded_conv`] takes apart.
struct FoldedConv<'m> {
    kernel: usize,
    stride: usize,
    /// Top, left, bottom, right.
    pads: [usize; 4],
    /// `[O, I/group, kernel, kernel]`, flat, with a batch normalisation
    /// after the convolution folded in.
    weights: Vec<f32>,
    /// One per output channel, likewise.
    bias: Vec<f32>,
    clamp: Clamp,
    /// The last node of the convolution's chain (itself, its batch
    /// normalisation or its activation).
    last: &'m TypedNode,
    /// The input's shape.
    shape: TVec<usize>,
}

/// `node`, a constant-weight `f32` convolution over channel-first data of
/// a concrete shape (leading axes of 1) with a square kernel, equal strides
/// on both axes, no dilation and explicit padding, together with what
/// follows it when each is the only reader of the one before: a batch
/// normalisation (`Mul`, `Add` by one value per channel), folded into the
/// weights and bias, then `Max` and `Min` by constants, as a [`Clamp`].
fn folded_conv<'m>(
    model: &'m TypedModel,
    node: &'m TypedNode,
    op: &Conv,
) -> TractResult<Option<FoldedConv<'m>>> {
    let input = model.outlet_fact(node.inputs[0])?;
    let Some(shape) = input.shape.as_concrete() else {
        return Ok(None);
    };
    let spec = &op.pool_spec;
    let (inputs, outputs) = (op.input_channels(), op.output_channels());
    let plain = node.inputs.len() == 3
        && op.q_params.is_none()
        && op.kernel_fmt == KernelFormat::OIHW
        && input.datum_type == f32::datum_type()
        && op.group > 0
        && inputs % op.group == 0;
    let channel_first = matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        && shape.len() >= 3
        && shape[..shape.len() - 3].iter().all(|&d| d == 1)
        && shape[shape.len() - 3] == inputs;
    let kernel = spec.kernel_shape.first().copied().unwrap_or(0);
    let strides = spec.strides.clone().unwrap_or_else(|| tvec!(1, 1));
    let stride = strides.first().copied().unwrap_or(0);
    let square = spec.kernel_shape.len() == 2
        && spec.kernel_shape[1] == kernel
        && strides.len() == 2
        && strides[1] == stride;
    let undilated = spec
        .dilations
        .as_ref()
        .is_none_or(|dilations| dilations.iter().all(|&d| d == 1));
    let pads = match &spec.padding {
        PaddingSpec::Valid => Some([0; 4]),
        PaddingSpec::Explicit(before, after)
        | PaddingSpec::ExplicitOnnxPool(before, after, false)
            if before.len() == 2 && after.len() == 2 =>
        {
            Some([before[0], before[1], after[0], after[1]])
        }
        _ => None,
    };
    let (Some(pads), true) = (pads, plain && channel_first && square && undilated) else {
        return Ok(None);
    };
    let (Some(weights), Some(bias)) = (
        model.outlet_fact(node.inputs[1])?.konst.clone(),
        model.outlet_fact(node.inputs[2])?.konst.clone(),
    ) else {
        return Ok(None);
    };
    if weights.datum_type() != f32::datum_type()
        || weights.shape() != [outputs, inputs / op.group, kernel, kernel]
        || bias.datum_type() != f32::datum_type()
        || !(bias.len() == 1 || bias.len() == outputs)
        || pads.iter().any(|&p| p >= kernel)
    {
        return Ok(None);
    }
    // The convolution's own bias: one value, or one per output channel.
    let bias = bias.try_as_plain_ram()?.as_slice::<f32>()?;
    let mut bias: Vec<f32> = (0..outputs).map(|c| bias[c % bias.len()]).collect();
    let mut weights = weights.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
    let per_output = weights.len() / outputs;

    let mut last = node;
    if let Some((mul, values)) = only_reader_with_constant::<Mul>(model, last)?
        && let Some(scale) = per_channel(&values, outputs)?
    {
        for (c, taps) in weights.chunks_exact_mut(per_output).enumerate() {
            taps.iter_mut().for_each(|w| *w *= scale[c]);
            bias[c] *= scale[c];
        }
        last = mul;
    }
    if let Some((add, values)) = only_reader_with_constant::<Add>(model, last)?
        && let Some(shift) = per_channel(&values, outputs)?
    {
        bias.iter_mut().zip(&shift).for_each(|(b, s)| *b += s);
        last = add;
    }
    let (clamp, last) = clamp_after(model, last)?;
    if model.outlet_fact(last.id.into())?.shape != model.outlet_fact(node.id.into())?.shape {
        return Ok(None);
    }
    Ok(Some(FoldedConv {
        kernel,
        stride,
        pads,
        weights,
        bias,
        clamp,
        last,
        shape: shape.into(),
    }))
}

/// A full 3×3 or 5×5 convolution at stride 1 or 2 (with its batch normalisation
/// and activation, see [`folded_conv`]) becomes a [`DenseConv`].
fn dense_conv(
    _: &(),
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    op: &Conv,
) -> TractResult<Option<TypedModelPatch>> {
    if op.group != 1 {
        return Ok(None);
    }
    let Some(conv) = folded_conv(model, node, op)? else {
        return Ok(None);
    };
    if !DenseConv::supported(conv.kernel, conv.stride) {
        return Ok(None);
    }
    let (inputs, outputs) = (op.input_channels(), op.output_channels());
    let produced = model.outlet_fact(node.id.into())?;
    let Some(produced) = produced.shape.as_concrete() else {
        return Ok(None);
    };
    let rank = produced.len();
    if !(rank == 3 || (rank == 4 && produced[0] == 1)) {
        return Ok(None);
    }
    let weights = Tensor::from_shape(&[outputs, inputs * conv.kernel.pow(2)], &conv.weights)?;
    let pointwise = Pointwise::new(&weights, &conv.bias, conv.clamp, rank == 4)?;
    let op = DenseConv::new(inputs, (conv.kernel, conv.stride), conv.pads, pointwise)?;
    let rank_in = conv.shape.len();
    if op.output_dims(conv.shape[rank_in - 2], conv.shape[rank_in - 1])
        != Some((produced[rank - 2], produced[rank - 1]))
    {
        return Ok(None);
    }
    replace_chain(model, node.inputs[0], name, op, conv.last.id.into()).map(Some)
}

/// An `Add` of an [`InvertedResidual`]'s output, which it alone reads, and
/// that block's own input (one shape) becomes part of the block: each
/// thread adds the input to the rows it has just written, where an `Add`
/// apart read them again, half of them from the other core's cache.
fn residual_sum(
    _: &(),
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    op: &TypedBinOp,
) -> TractResult<Option<TypedModelPatch>> {
    if !op.0.is::<Add>() || node.inputs.len() != 2 {
        return Ok(None);
    }
    let outputs = model.output_outlets()?;
    for (block_side, other) in [(0, 1), (1, 0)] {
        let block = model.node(node.inputs[block_side].node);
        let Some(ir) = block.op_as::<InvertedResidual>() else {
            continue;
        };
        let same_shape =
            model.outlet_fact(block.inputs[0])? == model.outlet_fact(node.inputs[block_side])?;
        if ir.residual
            || block.inputs[0] != node.inputs[other]
            || block.outputs[0].successors.len() != 1
            || outputs.contains(&node.inputs[block_side])
            || !same_shape
        {
            continue;
        }
        let op = ir.clone().with_residual();
        return replace_chain(model, block.inputs[0], name, op, node.id.into()).map(Some);
    }
    Ok(None)
}

/// A [`PairMax`] whose input is a [`DenseConv`] it alone reads becomes part
/// of that convolution, with the activation after the pooling: a clamp is
/// monotonic, so clamping the maxima is taking the maxima of the clamped.
fn pooled_dense_conv(
    _: &(),
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    _: &PairMax,
) -> TractResult<Option<TypedModelPatch>> {
    let Some((producer, conv)) = sole_producer::<DenseConv>(model, node)? else {
        return Ok(None);
    };
    if conv.pooled {
        return Ok(None);
    }
    let (after, last) = clamp_after(model, node)?;
    let mut op = conv.clone().with_pooling();
    op.pointwise.clamp = op.pointwise.clamp.then_max(after.low).then_min(after.high);
    replace_chain(model, producer.inputs[0], name, op, last.id.into()).map(Some)
}

/// A depthwise convolution (channel-first `f32`, a constant 3×3 or 5×5
/// kernel at stride 1 or 2, explicit padding), with the ReLU after it, whose
/// only reader is a 1×1 convolution that [`match_pointwise`] takes, becomes
/// one [`DepthwisePointwise`].
fn depthwise_pointwise(
    _: &(),
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    op: &Conv,
) -> TractResult<Option<TypedModelPatch>> {
    let channels = op.input_channels();
    if !(op.group > 1 && op.group == channels && op.group == op.output_channels()) {
        return Ok(None);
    }
    let Some(conv) = folded_conv(model, node, op)? else {
        return Ok(None);
    };
    let FoldedConv {
        kernel,
        stride,
        pads,
        weights,
        bias,
        clamp,
        last,
        ref shape,
    } = conv;
    if !Depthwise::supported(kernel, stride) {
        return Ok(None);
    }
    let [reader] = &last.outputs[0].successors[..] else {
        return Ok(None);
    };
    if model.output_outlets()?.contains(&last.id.into()) || reader.slot != 0 {
        return Ok(None);
    }
    let reader = model.node(reader.node);
    let Some(einsum) = reader.op_as::<EinSum>() else {
        return Ok(None);
    };
    let Some((pointwise, end)) = match_pointwise(model, reader, einsum)? else {
        return Ok(None);
    };
    let depthwise = Depthwise {
        channels,
        kernel,
        stride,
        pads,
        weights: tensor1(&weights).into_arc_tensor(),
        bias: tensor1(&bias).into_arc_tensor(),
        clamp,
    };
    let rank = shape.len();
    let dims = depthwise.output_dims(shape[rank - 2], shape[rank - 1]);
    let conv_shape = model.outlet_fact(node.id.into())?.shape.as_concrete();
    let Some((_, width)) = dims else {
        return Ok(None);
    };
    if conv_shape.map(|s| (s[s.len() - 2], s[s.len() - 1])) != dims {
        return Ok(None);
    }
    // Output rows are computed in blocks of 16: on rows much narrower than
    // a whole number of blocks (7 values: 16 computed, 9 thrown away) the
    // 1×1 convolution would waste more than the fusion saves; `Pointwise`
    // alone takes the positions of all rows in a row. At 12 or 24 values
    // the fusion still wins (CenterFace's last layers).
    if width.div_ceil(pointwise::BLOCK) * pointwise::BLOCK * 2 > width * 3 {
        return Ok(None);
    }
    let op = DepthwisePointwise::new(depthwise, pointwise)?;
    replace_chain(model, node.inputs[0], name, op, end.id.into()).map(Some)
}

/// A [`Pointwise`] expansion whose only reader is a [`DepthwisePointwise`]
/// becomes, with it, one [`InvertedResidual`]; not on rows narrower than a
/// depthwise block reads (`DepthwisePointwise` pads those first).
fn inverted_residual(
    _: &(),
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    body: &DepthwisePointwise,
) -> TractResult<Option<TypedModelPatch>> {
    let Some((producer, expand)) = sole_producer::<Pointwise>(model, node)? else {
        return Ok(None);
    };
    if expand.outputs != body.depthwise.channels {
        return Ok(None);
    }
    let Some(shape) = model.outlet_fact(producer.inputs[0])?.shape.as_concrete() else {
        return Ok(None);
    };
    if shape.last().is_none_or(|&w| w < body.depthwise.reach()) {
        return Ok(None);
    }
    let op = InvertedResidual::new(expand.clone(), body.clone())?;
    replace_chain(model, producer.inputs[0], name, op, node.id.into()).map(Some)
}

/// A patch that computes with `op`, from `input`, what the chain of nodes
/// ending at `last` computed.
fn replace_chain(
    model: &TypedModel,
    input: OutletId,
    name: &str,
    op: impl Into<Box<dyn TypedOp>>,
    last: OutletId,
) -> TractResult<TypedModelPatch> {
    let mut patch = TypedModelPatch::default();
    let tap = patch.tap_model(model, input)?;
    let wire = patch.wire_node(name, op, &[tap])?[0];
    patch.shunt_outside(model, last, wire)?;
    Ok(patch)
}

/// The node that feeds `node`'s first input and its op, when that op is a
/// `T` whose output nothing but `node` reads (an output of the model has a
/// reader outside it).
fn sole_producer<'m, T: TypedOp>(
    model: &'m TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(&'m TypedNode, &'m T)>> {
    let producer = model.node(node.inputs[0].node);
    let Some(op) = producer.op_as::<T>() else {
        return Ok(None);
    };
    if producer.outputs[0].successors.len() != 1
        || model.output_outlets()?.contains(&node.inputs[0])
    {
        return Ok(None);
    }
    Ok(Some((producer, op)))
}

/// The node that alone reads `node`'s output, when it is a binary `O` whose
/// other input is a constant, and that constant. An output of the model has
/// a reader outside it, so it has none here.
fn only_reader_with_constant<'m, O: BinMiniOp>(
    model: &'m TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(&'m TypedNode, Arc<Tensor>)>> {
    let [reader] = &node.outputs[0].successors[..] else {
        return Ok(None);
    };
    if model.output_outlets()?.contains(&node.id.into()) {
        return Ok(None);
    }
    let reader = model.node(reader.node);
    let Some(op) = reader.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    if !op.0.is::<O>() || reader.inputs.len() != 2 {
        return Ok(None);
    }
    let other = reader.inputs.iter().find(|i| i.node != node.id);
    let constant = match other {
        Some(outlet) => model.outlet_fact(*outlet)?.konst.clone(),
        None => None,
    };
    Ok(constant.map(|c| (reader, c)))
}

/// The `Max` and `Min` by scalar constants that follow `node`, each the only
/// reader of the one before, as one [`Clamp`], and the last of them (`node`
/// when there are none). tract's `Relu` is a `Max` with 0; a ReLU6 adds a
/// `Min` with 6.
fn clamp_after<'m>(
    model: &'m TypedModel,
    mut node: &'m TypedNode,
) -> TractResult<(Clamp, &'m TypedNode)> {
    let mut clamp = Clamp::NONE;
    loop {
        if let Some((max, value)) = only_reader_with_constant::<Max>(model, node)?
            && value.len() == 1
            && value.datum_type() == f32::datum_type()
        {
            clamp = clamp.then_max(value.cast_to_scalar::<f32>()?);
            node = max;
        } else if let Some((min, value)) = only_reader_with_constant::<Min>(model, node)?
            && value.len() == 1
            && value.datum_type() == f32::datum_type()
        {
            clamp = clamp.then_min(value.cast_to_scalar::<f32>()?);
            node = min;
        } else {
            return Ok((clamp, node));
        }
    }
}

/// `values` as one `f32` per channel of channel-first data of `channels`
/// channels: a single value for all, or `channels` values along the channel
/// axis (the third from the end) with every other axis 1.
fn per_channel(values: &Tensor, channels: usize) -> TractResult<Option<Vec<f32>>> {
    if values.datum_type() != f32::datum_type() {
        return Ok(None);
    }
    let shape = values.shape();
    let rank = shape.len();
    let along_channels = values.len() == channels
        && rank >= 3
        && shape
            .iter()
            .enumerate()
            .all(|(axis, &d)| d == 1 || (d == channels && axis + 3 == rank));
    let data = values.try_as_plain_ram()?.as_slice::<f32>()?;
    Ok(if values.len() == 1 {
        Some(vec![data[0]; channels])
    } else if along_channels {
        Some(data.to_vec())
    } else {
        None
    })
}

/// The output fact of an op that maps the last two axes of an `f32` tensor
/// through `dims` (height, width).
fn plane_fact(
    op: &str,
    input: &TypedFact,
    dims: impl Fn(TDim, TDim) -> (TDim, TDim),
) -> TractResult<TVec<TypedFact>> {
    ensure!(input.datum_type == f32::datum_type(), "{op} is f32 only");
    ensure!(input.rank() >= 2, "{op} needs two spatial axes");
    let mut fact = input.without_value();
    let rank = fact.rank();
    let (h, w) = dims(fact.shape[rank - 2].clone(), fact.shape[rank - 1].clone());
    fact.shape.set(rank - 2, h);
    fact.shape.set(rank - 1, w);
    Ok(tvec!(fact))
}

/// Evaluates an op that maps each `h`×`w` plane (the last two axes) of an
/// `f32` tensor to an `oh`×`ow` one, `(oh, ow) = dims(h, w)`: `fill(plane,
/// w, out, ow)` writes one output plane from one input plane. The planes are
/// spread over tract's threads (see `runtime::configure`) when there are
/// enough of them to pay.
fn map_planes(
    op: &str,
    input: TValue,
    dims: impl Fn(usize, usize) -> (usize, usize),
    fill: impl Fn(&[f32], usize, &mut [f32], usize) + Sync + Send,
) -> TractResult<TVec<TValue>> {
    let shape = input.shape();
    ensure!(
        shape.len() >= 2,
        "{op} needs two spatial axes, got {shape:?}"
    );
    let rank = shape.len();
    let (h, w) = (shape[rank - 2], shape[rank - 1]);
    let (oh, ow) = dims(h, w);
    let data = input.try_as_plain_ram()?.as_slice::<f32>()?;
    let mut out_shape: TVec<usize> = shape.into();
    out_shape[rank - 2] = oh;
    out_shape[rank - 1] = ow;
    let mut tensor = Tensor::zero::<f32>(&out_shape)?;
    let out = pointwise::planes_mut(&mut tensor)?;
    if oh > 0 && ow > 0 {
        let plane_len = oh * ow;
        tract_linalg::multithread::par_chunks_mut(out, plane_len, data.len(), |first, planes| {
            for (ix, plane) in planes.chunks_exact_mut(plane_len).enumerate() {
                fill(&data[(first + ix) * h * w..][..h * w], w, plane, ow);
            }
            Ok(())
        })?;
    }
    Ok(tvec!(tensor.into_tvalue()))
}

/// Keeps the even columns of the last axis: `[.., w]` becomes `[..,
/// ceil(w/2)]`. `f32` only; what [`strided_depthwise`] puts after the
/// convolution.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeepEven;

impl Op for KeepEven {
    fn name(&self) -> StaticName {
        "KeepEven".into()
    }

    op_as_typed_op!();
}

impl EvalOp for KeepEven {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let dims = |h: usize, w: usize| (h, w.div_ceil(2));
        map_planes("KeepEven", args_1!(inputs), dims, |plane, w, out, ow| {
            for (row, out) in plane.chunks_exact(w).zip(out.chunks_exact_mut(ow)) {
                for (o, pair) in out.iter_mut().zip(row.chunks(2)) {
                    *o = pair[0];
                }
            }
        })
    }
}

impl TypedOp for KeepEven {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        plane_fact("KeepEven", inputs[0], |h, w| (h, w.div_ceil(2)))
    }

    as_op!();
}

/// The largest of each 2×2 block of the last two axes: `[.., h, w]` becomes
/// `[.., floor(h/2), floor(w/2)]`, a trailing odd row or column dropped, as in
/// an unpadded pooling. `f32` only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PairMax;

impl Op for PairMax {
    fn name(&self) -> StaticName {
        "PairMax".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PairMax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let dims = |h: usize, w: usize| (h / 2, w / 2);
        map_planes("PairMax", args_1!(inputs), dims, |plane, w, out, ow| {
            let mut column_max = vec![0f32; w];
            for (rows, out) in plane.chunks_exact(2 * w).zip(out.chunks_exact_mut(ow)) {
                let (upper, lower) = rows.split_at(w);
                for ((m, &a), &b) in column_max.iter_mut().zip(upper).zip(lower) {
                    *m = a.max(b);
                }
                for (o, pair) in out.iter_mut().zip(column_max.chunks_exact(2)) {
                    *o = pair[0].max(pair[1]);
                }
            }
        })
    }
}

impl TypedOp for PairMax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        plane_fact("PairMax", inputs[0], |h, w| (h / 2, w / 2))
    }

    as_op!();
}

/// `x·scale + shift` with both indexed by the last axis of `x` (`f32`); a
/// pure scale has a shift of zeros, a pure shift a scale of ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LastAxisAffine {
    scale: Arc<Tensor>,
    shift: Arc<Tensor>,
}

impl LastAxisAffine {
    /// `scale` and `shift` of one length.
    fn new(scale: Vec<f32>, shift: Vec<f32>) -> Self {
        debug_assert_eq!(scale.len(), shift.len());
        Self {
            scale: tensor1(&scale).into_arc_tensor(),
            shift: tensor1(&shift).into_arc_tensor(),
        }
    }

    fn values(&self) -> TractResult<(&[f32], &[f32])> {
        Ok((
            self.scale.try_as_plain_ram()?.as_slice::<f32>()?,
            self.shift.try_as_plain_ram()?.as_slice::<f32>()?,
        ))
    }
}

impl Op for LastAxisAffine {
    fn name(&self) -> StaticName {
        "LastAxisAffine".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("width {}", self.scale.len())])
    }

    op_as_typed_op!();
}

impl EvalOp for LastAxisAffine {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let (scale, shift) = self.values()?;
        let width = scale.len();
        ensure!(
            input.shape().last() == Some(&width),
            "LastAxisAffine of width {width} on {:?}",
            input.shape()
        );
        let mut tensor = input.into_tensor();
        let mut view = tensor.try_as_plain_ram_mut()?;
        let data = view.as_slice_mut::<f32>()?;
        let len = data.len();
        tract_linalg::multithread::par_chunks_mut(data, width, len, |_, rows| {
            for row in rows.chunks_exact_mut(width) {
                for ((x, a), b) in row.iter_mut().zip(scale).zip(shift) {
                    *x = *x * a + b;
                }
            }
            Ok(())
        })?;
        Ok(tvec!(tensor.into_tvalue()))
    }
}

impl TypedOp for LastAxisAffine {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs[0].datum_type == f32::datum_type(),
            "LastAxisAffine is f32 only"
        );
        Ok(tvec!(inputs[0].without_value()))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::cnn::{KernelFormat, PoolSpec};

    /// A one-convolution model: `channels` depthwise 3×3 (or `kernel`) filters
    /// over an input of `height`×`width`, with deterministic weights.
    fn depthwise_model(
        channels: usize,
        (height, width): (usize, usize),
        kernel: usize,
        strides: [usize; 2],
        padding: PaddingSpec,
    ) -> TypedModel {
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([1, channels, height, width]))
            .unwrap();
        let weights: Vec<f32> = (0..channels * kernel * kernel)
            .map(|i| ((i as f32) * 0.37).sin())
            .collect();
        let bias: Vec<f32> = (0..channels).map(|i| i as f32 * 0.1 - 0.2).collect();
        let k = model
            .add_const(
                "k",
                Tensor::from_shape(&[channels, 1, kernel, kernel], &weights).unwrap(),
            )
            .unwrap();
        let b = model
            .add_const("b", Tensor::from_shape(&[channels], &bias).unwrap())
            .unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec!(kernel, kernel),
                padding,
                dilations: None,
                strides: Some(tvec!(strides[0], strides[1])),
                input_channels: channels,
                output_channels: channels,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: channels,
            q_params: None,
        };
        let y = model.wire_node("conv", conv, &[x, k, b]).unwrap();
        model.select_output_outlets(&y).unwrap();
        model
    }

    /// The first output of `model` on `input`, with its shape. The plan
    /// first runs on other values, so that ops that keep their output
    /// tensor for the next run write over a used one.
    fn run(model: TypedModel, input: &Tensor) -> (Vec<usize>, Vec<f32>) {
        let plan = model.into_optimized().unwrap().into_runnable().unwrap();
        plan.run(tvec!(decoy(input).into())).unwrap();
        let out = plan.run(tvec!(input.clone().into())).unwrap();
        let view = out[0].to_plain_array_view::<f32>().unwrap();
        (view.shape().to_vec(), view.iter().copied().collect())
    }

    /// Other values of `input`'s shape.
    fn decoy(input: &Tensor) -> Tensor {
        let mut decoy = input.clone();
        let values = pointwise::planes_mut(&mut decoy).unwrap();
        for (i, v) in values.iter_mut().enumerate() {
            *v = 3.0 - *v * 2.0 + (i % 5) as f32;
        }
        decoy
    }

    fn input(channels: usize, height: usize, width: usize) -> Tensor {
        let values: Vec<f32> = (0..channels * height * width)
            .map(|i| ((i * 7919 % 1000) as f32) / 500.0 - 1.0)
            .collect();
        Tensor::from_shape(&[1, channels, height, width], &values).unwrap()
    }

    /// How many nodes the outputs depend on run an `O` (a rewrite may leave
    /// dead nodes behind until the model is optimised).
    fn count<O: Op>(model: &TypedModel) -> usize {
        model
            .eval_order()
            .unwrap()
            .into_iter()
            .filter(|&id| model.node(id).op_is::<O>())
            .count()
    }

    #[test]
    fn strided_depthwise_rewrite_keeps_the_outputs() {
        let cases = [
            (
                3,
                [2, 2],
                PaddingSpec::Explicit(tvec!(1, 1), tvec!(1, 1)),
                (12, 17),
            ),
            (
                3,
                [2, 2],
                PaddingSpec::Explicit(tvec!(1, 1), tvec!(1, 1)),
                (16, 16),
            ),
            (
                5,
                [2, 2],
                PaddingSpec::Explicit(tvec!(2, 2), tvec!(2, 2)),
                (15, 20),
            ),
            (3, [2, 2], PaddingSpec::Valid, (11, 14)),
            (
                3,
                [1, 2],
                PaddingSpec::Explicit(tvec!(0, 1), tvec!(1, 0)),
                (9, 13),
            ),
            (
                3,
                [2, 2],
                PaddingSpec::ExplicitOnnxPool(tvec!(1, 0), tvec!(0, 1), false),
                (10, 9),
            ),
        ];
        for (kernel, strides, padding, (h, w)) in cases {
            let channels = 6;
            let plain = depthwise_model(channels, (h, w), kernel, strides, padding.clone());
            let mut rewritten = plain.clone();
            speed_up(&mut rewritten).unwrap();
            assert_eq!(count::<KeepEven>(&rewritten), 1, "{padding:?}");
            let x = input(channels, h, w);
            let (shape, want) = run(plain, &x);
            let (got_shape, got) = run(rewritten, &x);
            assert_eq!(
                shape, got_shape,
                "kernel {kernel} strides {strides:?} {padding:?}"
            );
            for (a, b) in want.iter().zip(&got) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}: {padding:?}");
            }
        }
    }

    #[test]
    fn padding_that_depends_on_the_stride_is_left_alone() {
        for padding in [
            PaddingSpec::SameUpper,
            PaddingSpec::ExplicitOnnxPool(tvec!(1, 1), tvec!(1, 1), true),
        ] {
            let mut model = depthwise_model(4, (10, 10), 3, [2, 2], padding);
            speed_up(&mut model).unwrap();
            assert_eq!(count::<KeepEven>(&model), 0);
        }
    }

    #[test]
    fn stride_one_and_stride_three_are_left_alone() {
        for strides in [[1, 1], [3, 3], [2, 1]] {
            let pad = PaddingSpec::Explicit(tvec!(1, 1), tvec!(1, 1));
            let mut model = depthwise_model(4, (12, 12), 3, strides, pad);
            speed_up(&mut model).unwrap();
            assert_eq!(count::<KeepEven>(&model), 0, "{strides:?}");
        }
    }

    fn maxpool_model(
        channels: usize,
        (height, width): (usize, usize),
        kernel: [usize; 2],
        strides: [usize; 2],
        padding: PaddingSpec,
    ) -> TypedModel {
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([1, channels, height, width]))
            .unwrap();
        let pool = MaxPool {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec!(kernel[0], kernel[1]),
                padding,
                dilations: None,
                strides: Some(tvec!(strides[0], strides[1])),
                input_channels: channels,
                output_channels: channels,
            },
            with_index_outputs: None,
        };
        let y = model.wire_node("pool", pool, &[x]).unwrap();
        model.select_output_outlets(&y).unwrap();
        model
    }

    #[test]
    fn pair_max_pools_as_tract_does() {
        let unpadded = [
            PaddingSpec::Valid,
            PaddingSpec::Explicit(tvec!(0, 0), tvec!(0, 0)),
            PaddingSpec::ExplicitOnnxPool(tvec!(0, 0), tvec!(0, 0), false),
        ];
        for padding in unpadded {
            for (h, w) in [(8, 8), (7, 9), (126, 126), (2, 3)] {
                let plain = maxpool_model(5, (h, w), [2, 2], [2, 2], padding.clone());
                let mut rewritten = plain.clone();
                speed_up(&mut rewritten).unwrap();
                assert_eq!(count::<PairMax>(&rewritten), 1, "{padding:?}");
                let x = input(5, h, w);
                assert_eq!(run(plain, &x), run(rewritten, &x), "{h}×{w} {padding:?}");
            }
        }
    }

    #[test]
    fn other_poolings_are_left_alone() {
        let cases = [
            ([3, 3], [2, 2], PaddingSpec::Valid),
            ([2, 2], [1, 1], PaddingSpec::Valid),
            (
                [2, 2],
                [2, 2],
                PaddingSpec::Explicit(tvec!(0, 0), tvec!(1, 1)),
            ),
            (
                [2, 2],
                [2, 2],
                PaddingSpec::ExplicitOnnxPool(tvec!(0, 0), tvec!(0, 0), true),
            ),
            ([2, 2], [2, 2], PaddingSpec::SameUpper),
        ];
        for (kernel, strides, padding) in cases {
            let mut model = maxpool_model(3, (9, 9), kernel, strides, padding.clone());
            speed_up(&mut model).unwrap();
            assert_eq!(
                count::<PairMax>(&model),
                0,
                "{kernel:?} {strides:?} {padding:?}"
            );
        }
    }

    /// `x[1, 5, 7, c] · s + b` (or `(x + b) · s`) with `s` and `b` constants
    /// of shape `[1, 1, 1, c]`, built from tract's own `Mul` and `Add`.
    fn scale_shift_model(c: usize, shift_first: bool) -> TypedModel {
        use tract_onnx::tract_core::ops::binary::BinMiniOp;
        use tract_onnx::tract_core::ops::math;
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, 5, 7, c])).unwrap();
        let values = |offset: f32| {
            let v: Vec<f32> = (0..c).map(|i| i as f32 * 0.25 + offset).collect();
            Tensor::from_shape(&[1, 1, 1, c], &v).unwrap()
        };
        let s = model.add_const("s", values(0.5)).unwrap();
        let b = model.add_const("b", values(-1.0)).unwrap();
        let (first, second): (Box<dyn BinMiniOp>, Box<dyn BinMiniOp>) = if shift_first {
            (Box::new(math::Add), Box::new(math::Mul))
        } else {
            (Box::new(math::Mul), Box::new(math::Add))
        };
        let (k1, k2) = if shift_first { (b, s) } else { (s, b) };
        let y = model
            .wire_node("first", TypedBinOp(first, None), &[x, k1])
            .unwrap();
        let z = model
            .wire_node("second", TypedBinOp(second, None), &[k2, y[0]])
            .unwrap();
        model.select_output_outlets(&z).unwrap();
        model
    }

    fn close(want: &[f32], got: &[f32]) -> bool {
        want.len() == got.len()
            && want
                .iter()
                .zip(got)
                .all(|(a, b)| (a - b).abs() <= 1e-5 * a.abs().max(1.0))
    }

    #[test]
    fn scale_and_shift_along_the_last_axis_become_one_pass() {
        for shift_first in [false, true] {
            let plain = scale_shift_model(6, shift_first);
            let mut rewritten = plain.clone();
            speed_up(&mut rewritten).unwrap();
            assert_eq!(
                count::<LastAxisAffine>(&rewritten),
                1,
                "shift first: {shift_first}"
            );
            let values: Vec<f32> = (0..5 * 7 * 6).map(|i| (i as f32 * 0.13).cos()).collect();
            let x = Tensor::from_shape(&[1, 5, 7, 6], &values).unwrap();
            let (want_shape, want) = run(plain, &x);
            let (got_shape, got) = run(rewritten, &x);
            assert_eq!(want_shape, got_shape);
            assert!(close(&want, &got), "shift first: {shift_first}");
        }
    }

    #[test]
    fn other_broadcasts_stay_with_tract() {
        // Per channel of an NCHW tensor (axis 1), and a scalar.
        for shape in [vec![1, 6, 1, 1], vec![1, 1, 1, 1]] {
            let mut model = TypedModel::default();
            let x = model.add_source("x", f32::fact([1, 6, 4, 4])).unwrap();
            let k = model
                .add_const(
                    "k",
                    Tensor::from_shape(&shape, &vec![2f32; shape.iter().product()]).unwrap(),
                )
                .unwrap();
            let y = model
                .wire_node(
                    "mul",
                    TypedBinOp(Box::new(tract_onnx::tract_core::ops::math::Mul), None),
                    &[x, k],
                )
                .unwrap();
            model.select_output_outlets(&y).unwrap();
            speed_up(&mut model).unwrap();
            assert_eq!(count::<LastAxisAffine>(&model), 0, "{shape:?}");
        }
    }

    #[test]
    fn channel_arithmetic_after_a_full_convolution_is_left_to_tract() {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, 5, 7, 3])).unwrap();
        let kernel: Vec<f32> = (0..4 * 3).map(|i| i as f32 * 0.1).collect();
        let k = model
            .add_const("k", Tensor::from_shape(&[4, 3, 1, 1], &kernel).unwrap())
            .unwrap();
        let b = model
            .add_const("b", Tensor::from_shape(&[4], &[0.5f32; 4]).unwrap())
            .unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NHWC,
                kernel_shape: tvec!(1, 1),
                padding: PaddingSpec::Valid,
                dilations: None,
                strides: None,
                input_channels: 3,
                output_channels: 4,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        let y = model.wire_node("conv", conv, &[x, k, b]).unwrap();
        let shift = model
            .add_const(
                "shift",
                Tensor::from_shape(&[1, 1, 1, 4], &[1f32, 2., 3., 4.]).unwrap(),
            )
            .unwrap();
        let add = TypedBinOp(Box::new(tract_onnx::tract_core::ops::math::Add), None);
        let z = model.wire_node("add", add, &[y[0], shift]).unwrap();
        model.select_output_outlets(&z).unwrap();
        speed_up(&mut model).unwrap();
        assert_eq!(count::<LastAxisAffine>(&model), 0);
    }

    /// A 1×1 convolution of `cin` → `cout` channels over `h`×`w` (with a
    /// batch axis of 1 when `batch`), then `max(x, floor)` when `floor` is
    /// given, and a second reader of the convolution when `shared`.
    fn pointwise_model(
        (cin, cout): (usize, usize),
        (h, w): (usize, usize),
        batch: bool,
        floor: Option<f32>,
        shared: bool,
    ) -> TypedModel {
        use tract_onnx::tract_core::ops::math;
        let mut model = TypedModel::default();
        let (shape, format): (TVec<usize>, _) = if batch {
            (tvec!(1, cin, h, w), DataFormat::NCHW)
        } else {
            (tvec!(cin, h, w), DataFormat::CHW)
        };
        let x = model.add_source("x", f32::fact(&shape)).unwrap();
        let kernel: Vec<f32> = (0..cout * cin).map(|i| ((i as f32) * 0.71).sin()).collect();
        let bias: Vec<f32> = (0..cout).map(|i| i as f32 * 0.05 - 0.3).collect();
        let k = model
            .add_const(
                "k",
                Tensor::from_shape(&[cout, cin, 1, 1], &kernel).unwrap(),
            )
            .unwrap();
        let b = model
            .add_const("b", Tensor::from_shape(&[cout], &bias).unwrap())
            .unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: format,
                kernel_shape: tvec!(1, 1),
                padding: PaddingSpec::Valid,
                dilations: None,
                strides: None,
                input_channels: cin,
                output_channels: cout,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        let mut y = model.wire_node("conv", conv, &[x, k, b]).unwrap();
        if let Some(floor) = floor {
            let ones = vec![1; shape.len()];
            let c = model
                .add_const("floor", Tensor::from_shape(&ones, &[floor]).unwrap())
                .unwrap();
            let max = TypedBinOp(Box::new(math::Max), None);
            let relu = model.wire_node("relu", max, &[y[0], c]).unwrap();
            if shared {
                y.push(relu[0]);
            } else {
                y = relu;
            }
        }
        model.select_output_outlets(&y).unwrap();
        model
    }

    fn channel_first_input(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|i| ((i * 7919 % 1000) as f32) / 500.0 - 1.0)
            .collect();
        Tensor::from_shape(shape, &values).unwrap()
    }

    /// Every output of `model` on `input`, after a run on other values (see
    /// [`run`]).
    fn run_all(model: TypedModel, input: &Tensor) -> Vec<Vec<f32>> {
        let plan = model.into_optimized().unwrap().into_runnable().unwrap();
        plan.run(tvec!(decoy(input).into())).unwrap();
        let out = plan.run(tvec!(input.clone().into())).unwrap();
        out.iter()
            .map(|o| {
                o.to_plain_array_view::<f32>()
                    .unwrap()
                    .iter()
                    .copied()
                    .collect()
            })
            .collect()
    }

    #[test]
    fn pointwise_computes_what_tract_does() {
        let cases = [
            ((5, 7), (3, 9), false, None, false),
            ((16, 12), (4, 8), true, Some(0.0), false),
            ((3, 2), (2, 3), false, Some(0.0), false),
            ((24, 13), (5, 5), true, None, false),
            ((32, 96), (7, 16), false, Some(0.0), false),
            // max(x, 1) is no ReLU: the conv is rewritten, the max stays.
            ((8, 6), (6, 6), false, Some(1.0), false),
            // Two readers of the conv: the ReLU is left where it is.
            ((8, 6), (6, 6), false, Some(0.0), true),
        ];
        for (channels, plane, batch, floor, shared) in cases {
            let case =
                format!("{channels:?} {plane:?} batch {batch} floor {floor:?} shared {shared}");
            let plain = pointwise_model(channels, plane, batch, floor, shared);
            let mut rewritten = plain.clone().into_decluttered().unwrap();
            speed_up(&mut rewritten).unwrap();
            // With two readers tract's declutter may keep one convolution
            // per reader; each becomes a `Pointwise`.
            assert!(count::<Pointwise>(&rewritten) >= 1, "{case}\n{rewritten}");
            assert_eq!(count::<EinSum>(&rewritten), 0, "{case}\n{rewritten}");
            let mut shape = vec![channels.0, plane.0, plane.1];
            if batch {
                shape.insert(0, 1);
            }
            let x = channel_first_input(&shape);
            let want = run_all(plain, &x);
            let got = run_all(rewritten, &x);
            assert_eq!(want.len(), got.len(), "{case}");
            for (want, got) in want.iter().zip(&got) {
                assert!(close(want, got), "{case}: {want:?} vs {got:?}");
            }
        }
    }

    /// Runs with the pool kept awake, from several threads at once on one
    /// pool, give what one thread gives. The model has a layer of ours and
    /// one of tract's matrix products, both large enough to split: a run
    /// on the pool that another run picked up inside tract's product would
    /// find that product's per-thread scratch space taken (as it did in
    /// the benchmark before runs on the pool were made one at a time).
    #[test]
    fn awake_runs_from_several_threads_agree() {
        use tract_linalg::multithread::{Executor, multithread_tract_scope};
        let mut model = pointwise_model((32, 48), (48, 64), false, Some(0.0), false);
        let y = model.output_outlets().unwrap()[0];
        let flat = model
            .wire_node(
                "flat",
                AxisOp::Reshape(1, tvec!(48.to_dim(), 64.to_dim()), tvec!(3072.to_dim())),
                &[y],
            )
            .unwrap();
        let weights: Vec<f32> = (0..3072 * 512).map(|i| (i as f32 * 0.37).cos()).collect();
        let w = model
            .add_const("w", Tensor::from_shape(&[3072, 512], &weights).unwrap())
            .unwrap();
        let product = EinSum::new("mk,kn->mn".parse().unwrap(), f32::datum_type());
        let out = model.wire_node("product", product, &[flat[0], w]).unwrap();
        model.select_output_outlets(&out).unwrap();
        let mut model = model.into_decluttered().unwrap();
        speed_up(&mut model).unwrap();
        let plan = model.into_optimized().unwrap().into_runnable().unwrap();
        assert!(splits_over_threads(plan.model()));
        let x = channel_first_input(&[32, 48, 64]);
        let values = |outputs: TVec<TValue>| -> Vec<f32> {
            crate::runtime::output_slice(&outputs[0]).unwrap().to_vec()
        };
        let want = values(plan.run(tvec!(x.clone().into())).unwrap());
        let pool = Executor::multithread(2);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    multithread_tract_scope(pool.clone(), || {
                        for _ in 0..50 {
                            let got = crate::runtime::run_awake(true, || {
                                plan.run(tvec!(x.clone().into())).map(values)
                            });
                            assert!(close(&want, &got.unwrap()));
                        }
                    })
                });
            }
        });
    }

    #[test]
    fn rewritten_ops_give_the_same_values_on_several_threads() {
        use tract_linalg::multithread::{Executor, multithread_tract_scope};
        let pad = PaddingSpec::Explicit(tvec!(1, 1), tvec!(1, 1));
        let models = [
            (
                depthwise_model(16, (64, 96), 3, [2, 2], pad),
                input(16, 64, 96),
            ),
            (
                maxpool_model(16, (64, 96), [2, 2], [2, 2], PaddingSpec::Valid),
                input(16, 64, 96),
            ),
        ];
        for (plain, x) in models {
            let mut rewritten = plain.clone();
            speed_up(&mut rewritten).unwrap();
            let want = run(plain, &x);
            let got = multithread_tract_scope(Executor::multithread(2), || run(rewritten, &x));
            assert_eq!(want.0, got.0);
            assert!(close(&want.1, &got.1));
        }
        let plain = pointwise_model((24, 40), (32, 48), true, Some(0.0), false);
        let mut rewritten = plain.clone().into_decluttered().unwrap();
        speed_up(&mut rewritten).unwrap();
        let x = channel_first_input(&[1, 24, 32, 48]);
        let want = run_all(plain, &x);
        let got = multithread_tract_scope(Executor::multithread(2), || run_all(rewritten, &x));
        assert!(close(&want[0], &got[0]));
        // 5·7·1024 values: above tract's threshold for spreading work.
        let plain = scale_shift_model(1024, false);
        let mut rewritten = plain.clone();
        speed_up(&mut rewritten).unwrap();
        let values: Vec<f32> = (0..5 * 7 * 1024).map(|i| (i as f32 * 0.01).sin()).collect();
        let x = Tensor::from_shape(&[1, 5, 7, 1024], &values).unwrap();
        let want = run(plain, &x);
        let got = multithread_tract_scope(Executor::multithread(2), || run(rewritten, &x));
        assert!(close(&want.1, &got.1));
    }

    /// `rewritten` gives what `plain` gives on an input of `shape`, on one
    /// thread and on two.
    fn same_on_one_and_two_threads(
        plain: TypedModel,
        rewritten: TypedModel,
        shape: &[usize],
        case: &str,
    ) {
        use tract_linalg::multithread::{Executor, multithread_tract_scope};
        let x = channel_first_input(shape);
        let want = run_all(plain, &x);
        let got = run_all(rewritten.clone(), &x);
        assert!(
            close(&want[0], &got[0]),
            "{case}: {:?} vs {:?}",
            want[0],
            got[0]
        );
        let threaded = multithread_tract_scope(Executor::multithread(2), || run_all(rewritten, &x));
        assert!(close(&want[0], &threaded[0]), "{case} on two threads");
    }

    /// A depthwise convolution, an optional ReLU, then a 1×1 convolution
    /// with its ReLU: the inside of an inverted-residual block.
    fn depthwise_pointwise_model(
        channels: (usize, usize),
        plane: (usize, usize),
        kernel: usize,
        stride: usize,
        pads: [usize; 4],
        activations: (&str, &str),
        batch: bool,
    ) -> TypedModel {
        block_model(
            None,
            channels,
            plane,
            kernel,
            stride,
            pads,
            activations,
            batch,
        )
    }

    /// [`depthwise_pointwise_model`], after a 1×1 expansion (with a ReLU)
    /// from `expand_from` channels when there is one.
    #[allow(clippy::too_many_arguments)]
    fn block_model(
        expand_from: Option<usize>,
        (channels, outputs): (usize, usize),
        (h, w): (usize, usize),
        kernel: usize,
        stride: usize,
        pads: [usize; 4],
        (between, after): (&str, &str),
        batch: bool,
    ) -> TypedModel {
        use tract_onnx::tract_core::ops::math;
        let mut model = TypedModel::default();
        let (shape, format): (TVec<usize>, _) = if batch {
            (tvec!(1, channels, h, w), DataFormat::NCHW)
        } else {
            (tvec!(channels, h, w), DataFormat::CHW)
        };
        let mut source_shape = shape.clone();
        if let Some(inputs) = expand_from {
            source_shape[shape.len() - 3] = inputs;
        }
        let mut x = model.add_source("x", f32::fact(&source_shape)).unwrap();
        if let Some(inputs) = expand_from {
            let weights: Vec<f32> = (0..channels * inputs)
                .map(|i| ((i as f32) * 0.53).sin())
                .collect();
            let bias: Vec<f32> = (0..channels).map(|i| 0.1 - i as f32 * 0.02).collect();
            let k = model
                .add_const(
                    "expand.k",
                    Tensor::from_shape(&[channels, inputs, 1, 1], &weights).unwrap(),
                )
                .unwrap();
            let b = model
                .add_const("expand.b", Tensor::from_shape(&[channels], &bias).unwrap())
                .unwrap();
            let conv = Conv {
                pool_spec: PoolSpec {
                    data_format: format,
                    kernel_shape: tvec!(1, 1),
                    padding: PaddingSpec::Valid,
                    dilations: None,
                    strides: None,
                    input_channels: inputs,
                    output_channels: channels,
                },
                kernel_fmt: KernelFormat::OIHW,
                group: 1,
                q_params: None,
            };
            x = model.wire_node("expand", conv, &[x, k, b]).unwrap()[0];
            let ones = vec![1; shape.len()];
            let zero = model
                .add_const("expand.zero", Tensor::from_shape(&ones, &[0f32]).unwrap())
                .unwrap();
            let max = TypedBinOp(Box::new(math::Max), None);
            x = model.wire_node("expand.relu", max, &[x, zero]).unwrap()[0];
        }
        let dw: Vec<f32> = (0..channels * kernel * kernel)
            .map(|i| ((i as f32) * 0.37).sin())
            .collect();
        let dw_bias: Vec<f32> = (0..channels).map(|i| i as f32 * 0.1 - 0.2).collect();
        let pw: Vec<f32> = (0..outputs * channels)
            .map(|i| ((i as f32) * 0.71).cos())
            .collect();
        let pw_bias: Vec<f32> = (0..outputs).map(|i| i as f32 * 0.05 - 0.3).collect();
        let dw = model
            .add_const(
                "dw",
                Tensor::from_shape(&[channels, 1, kernel, kernel], &dw).unwrap(),
            )
            .unwrap();
        let dw_bias = model
            .add_const(
                "dw_bias",
                Tensor::from_shape(&[channels], &dw_bias).unwrap(),
            )
            .unwrap();
        let pw = model
            .add_const(
                "pw",
                Tensor::from_shape(&[outputs, channels, 1, 1], &pw).unwrap(),
            )
            .unwrap();
        let pw_bias = model
            .add_const("pw_bias", Tensor::from_shape(&[outputs], &pw_bias).unwrap())
            .unwrap();
        let spec = |kernel: usize, stride: usize, padding, outputs: usize| PoolSpec {
            data_format: format,
            kernel_shape: tvec!(kernel, kernel),
            padding,
            dilations: None,
            strides: Some(tvec!(stride, stride)),
            input_channels: channels,
            output_channels: outputs,
        };
        let depthwise = Conv {
            pool_spec: spec(
                kernel,
                stride,
                PaddingSpec::Explicit(tvec!(pads[0], pads[1]), tvec!(pads[2], pads[3])),
                channels,
            ),
            kernel_fmt: KernelFormat::OIHW,
            group: channels,
            q_params: None,
        };
        let y = model
            .wire_node("depthwise", depthwise, &[x, dw, dw_bias])
            .unwrap();
        // `activation(model, name, y, kind)`: nothing, a ReLU, or a ReLU6
        // as tf2onnx writes it (max 0, min 6, max 0).
        let ones = vec![1; shape.len()];
        let scalar = |model: &mut TypedModel, name: &str, v: f32| {
            model
                .add_const(name, Tensor::from_shape(&ones, &[v]).unwrap())
                .unwrap()
        };
        let activation = |model: &mut TypedModel, name: &str, y: OutletId, kind: &str| {
            let steps: &[(bool, f32)] = match kind {
                "relu" => &[(true, 0.0)],
                "relu6" => &[(true, 0.0), (false, 6.0), (true, 0.0)],
                _ => &[],
            };
            let mut y = y;
            for (i, &(is_max, v)) in steps.iter().enumerate() {
                let c = scalar(model, &format!("{name}.c{i}"), v);
                let op: Box<dyn BinMiniOp> = if is_max {
                    Box::new(math::Max)
                } else {
                    Box::new(math::Min)
                };
                y = model
                    .wire_node(format!("{name}.{i}"), TypedBinOp(op, None), &[y, c])
                    .unwrap()[0];
            }
            y
        };
        let mut y = y[0];
        if between.starts_with("bn-") {
            let mut per_channel = shape.to_vec();
            per_channel.iter_mut().for_each(|d| *d = 1);
            per_channel[shape.len() - 3] = channels;
            let scale: Vec<f32> = (0..channels).map(|c| 0.5 + c as f32 * 0.07).collect();
            let shift: Vec<f32> = (0..channels).map(|c| c as f32 * 0.03 - 0.1).collect();
            let scale = model
                .add_const("scale", Tensor::from_shape(&per_channel, &scale).unwrap())
                .unwrap();
            let shift = model
                .add_const("shift", Tensor::from_shape(&per_channel, &shift).unwrap())
                .unwrap();
            let mul = TypedBinOp(Box::new(math::Mul), None);
            y = model.wire_node("bn.mul", mul, &[y, scale]).unwrap()[0];
            let add = TypedBinOp(Box::new(math::Add), None);
            y = model.wire_node("bn.add", add, &[y, shift]).unwrap()[0];
        }
        y = activation(&mut model, "act1", y, between.trim_start_matches("bn-"));
        let mut y = tvec!(y);
        let pointwise = Conv {
            pool_spec: spec(1, 1, PaddingSpec::Valid, outputs),
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        y = model
            .wire_node("pointwise", pointwise, &[y[0], pw, pw_bias])
            .unwrap();
        let y = activation(&mut model, "act2", y[0], after);
        model.select_output_outlets(&[y]).unwrap();
        model
    }

    #[test]
    fn depthwise_then_pointwise_computes_what_tract_does() {
        let cases = [
            // channels, plane, kernel, stride, pads, relus, batch
            (
                (16, 24),
                (20, 37),
                3,
                1,
                [1, 1, 1, 1],
                ("relu", "none"),
                true,
            ),
            ((7, 5), (9, 16), 3, 1, [1, 1, 1, 1], ("none", "relu"), false),
            // Narrow rows, laid end to end in a strip (CenterFace).
            (
                (40, 20),
                (7, 12),
                3,
                1,
                [1, 1, 1, 1],
                ("relu", "none"),
                true,
            ),
            (
                (24, 13),
                (14, 24),
                3,
                1,
                [1, 1, 1, 1],
                ("relu", "none"),
                true,
            ),
            (
                (16, 13),
                (6, 28),
                3,
                1,
                [1, 1, 1, 1],
                ("none", "relu"),
                true,
            ),
            (
                (12, 13),
                (17, 61),
                3,
                2,
                [1, 1, 1, 1],
                ("relu", "none"),
                true,
            ),
            ((6, 8), (16, 48), 3, 2, [0, 0, 1, 1], ("relu", "relu"), true),
            (
                (10, 4),
                (11, 27),
                5,
                1,
                [2, 2, 2, 2],
                ("none", "none"),
                true,
            ),
            (
                (9, 7),
                (23, 61),
                5,
                2,
                [2, 2, 2, 2],
                ("relu", "none"),
                false,
            ),
            // Rows narrower than a block reads: the padded ring is wider.
            ((5, 3), (6, 12), 3, 1, [1, 1, 1, 1], ("relu", "none"), true),
            ((5, 3), (7, 14), 3, 1, [0, 0, 0, 0], ("relu", "relu"), true),
            // MobileNet v1 as tf2onnx writes it: a batch normalisation and a
            // ReLU6 after the depthwise convolution, a ReLU6 after the 1×1.
            (
                (16, 32),
                (28, 28),
                3,
                1,
                [1, 1, 1, 1],
                ("bn-relu6", "relu6"),
                true,
            ),
            (
                (11, 6),
                (15, 57),
                3,
                2,
                [0, 0, 1, 1],
                ("bn-relu6", "relu6"),
                false,
            ),
            // Wide enough to be split over threads.
            (
                (48, 32),
                (40, 96),
                3,
                1,
                [1, 1, 1, 1],
                ("relu", "none"),
                true,
            ),
        ];
        for (channels, plane, kernel, stride, pads, relus, batch) in cases {
            let case = format!(
                "{channels:?} {plane:?} kernel {kernel} stride {stride} pads {pads:?} \
                 relus {relus:?} batch {batch}"
            );
            let plain =
                depthwise_pointwise_model(channels, plane, kernel, stride, pads, relus, batch);
            let mut rewritten = plain.clone().into_decluttered().unwrap();
            speed_up(&mut rewritten).unwrap();
            assert_eq!(
                count::<DepthwisePointwise>(&rewritten),
                1,
                "{case}\n{rewritten}"
            );
            assert_eq!(count::<Conv>(&rewritten), 0, "{case}\n{rewritten}");
            assert_eq!(count::<EinSum>(&rewritten), 0, "{case}\n{rewritten}");
            // Batch normalisation and activations are folded in.
            assert_eq!(count::<TypedBinOp>(&rewritten), 0, "{case}\n{rewritten}");
            let mut shape = vec![channels.0, plane.0, plane.1];
            if batch {
                shape.insert(0, 1);
            }
            same_on_one_and_two_threads(plain, rewritten, &shape, &case);
        }
    }

    #[test]
    fn depthwise_read_twice_or_unsupported_is_left_alone() {
        // A 7×7 kernel has no block function.
        let plain =
            depthwise_pointwise_model((8, 8), (16, 16), 7, 1, [3, 3, 3, 3], ("relu", "none"), true);
        let mut rewritten = plain.into_decluttered().unwrap();
        speed_up(&mut rewritten).unwrap();
        assert_eq!(count::<DepthwisePointwise>(&rewritten), 0);
        assert_eq!(count::<Pointwise>(&rewritten), 1);
        // Rows of 7: 16 computed for 7 kept, left to tract and `Pointwise`.
        let plain =
            depthwise_pointwise_model((8, 8), (7, 7), 3, 1, [1, 1, 1, 1], ("relu", "none"), true);
        let mut rewritten = plain.clone().into_decluttered().unwrap();
        speed_up(&mut rewritten).unwrap();
        assert_eq!(count::<DepthwisePointwise>(&rewritten), 0);
        let x = channel_first_input(&[1, 8, 7, 7]);
        assert!(close(&run_all(plain, &x)[0], &run_all(rewritten, &x)[0]));
        // The depthwise output is also a model output.
        let mut plain =
            depthwise_pointwise_model((8, 8), (16, 16), 3, 1, [1, 1, 1, 1], ("none", "none"), true);
        let depthwise = plain.node_by_name("depthwise").unwrap().id;
        let mut outputs = plain.output_outlets().unwrap().to_vec();
        outputs.push(depthwise.into());
        plain.select_output_outlets(&outputs).unwrap();
        let mut rewritten = plain.clone().into_decluttered().unwrap();
        speed_up(&mut rewritten).unwrap();
        assert_eq!(count::<DepthwisePointwise>(&rewritten), 0);
        let x = channel_first_input(&[1, 8, 16, 16]);
        let (want, got) = (run_all(plain, &x), run_all(rewritten, &x));
        assert!(close(&want[0], &got[0]) && close(&want[1], &got[1]));
    }

    #[test]
    fn inverted_residual_computes_what_tract_does() {
        let cases = [
            // expanded from, channels, plane, kernel, stride, pads, activations, batch
            // Narrow rows, as CenterFace's 14×24 and 28×48; the first tall
            // enough to be split over threads.
            (
                16,
                (96, 24),
                (42, 24),
                3,
                1,
                [1, 1, 1, 1],
                ("relu", "none"),
                true,
            ),
            (
                16,
                (48, 16),
                (14, 24),
                3,
                1,
                [1, 1, 1, 1],
                ("relu", "none"),
                true,
            ),
            (
                8,
                (24, 8),
                (28, 48),
                3,
                1,
                [1, 1, 1, 1],
                ("relu", "none"),
                true,
            ),
            (
                16,
                (96, 24),
                (24, 48),
                3,
                2,
                [1, 1, 1, 1],
                ("relu", "none"),
                true,
            ),
            (
                24,
                (144, 24),
                (20, 32),
                3,
                1,
                [1, 1, 1, 1],
                ("relu", "none"),
                true,
            ),
            (
                5,
                (12, 7),
                (13, 37),
                3,
                1,
                [1, 1, 1, 1],
                ("bn-relu6", "relu6"),
                false,
            ),
            (
                6,
                (10, 9),
                (19, 61),
                5,
                2,
                [2, 2, 2, 2],
                ("relu", "none"),
                true,
            ),
            (
                4,
                (8, 6),
                (9, 46),
                3,
                2,
                [0, 0, 1, 1],
                ("none", "relu"),
                true,
            ),
        ];
        for (from, channels, plane, kernel, stride, pads, activations, batch) in cases {
            let case = format!(
                "{from} → {channels:?} {plane:?} kernel {kernel} stride {stride} pads {pads:?} \
                 {activations:?} batch {batch}"
            );
            let plain = block_model(
                Some(from),
                channels,
                plane,
                kernel,
                stride,
                pads,
                activations,
                batch,
            );
            let mut rewritten = plain.clone().into_decluttered().unwrap();
            speed_up(&mut rewritten).unwrap();
            assert_eq!(
                count::<InvertedResidual>(&rewritten),
                1,
                "{case}\n{rewritten}"
            );
            assert_eq!(count::<Pointwise>(&rewritten), 0, "{case}\n{rewritten}");
            assert_eq!(count::<TypedBinOp>(&rewritten), 0, "{case}\n{rewritten}");
            let mut shape = vec![from, plane.0, plane.1];
            if batch {
                shape.insert(0, 1);
            }
            same_on_one_and_two_threads(plain, rewritten, &shape, &case);
        }
        // Rows narrower than a block reads stay two ops.
        let plain = block_model(
            Some(4),
            (8, 8),
            (12, 12),
            3,
            1,
            [1, 1, 1, 1],
            ("relu", "none"),
            true,
        );
        let mut rewritten = plain.clone().into_decluttered().unwrap();
        speed_up(&mut rewritten).unwrap();
        assert_eq!(count::<InvertedResidual>(&rewritten), 0);
        assert_eq!(count::<DepthwisePointwise>(&rewritten), 1);
        let x = channel_first_input(&[1, 4, 12, 12]);
        assert!(close(&run_all(plain, &x)[0], &run_all(rewritten, &x)[0]));
    }

    /// A full `kernel`×`kernel` convolution at stride 1, then a batch
    /// normalisation when `batch_norm`, then a ReLU (`relu`).
    #[allow(clippy::too_many_arguments)]
    fn dense_model(
        (inputs, outputs): (usize, usize),
        (h, w): (usize, usize),
        (kernel, stride): (usize, usize),
        pads: [usize; 4],
        batch_norm: bool,
        relu: bool,
        batch: bool,
    ) -> TypedModel {
        use tract_onnx::tract_core::ops::math;
        let mut model = TypedModel::default();
        let (shape, format): (TVec<usize>, _) = if batch {
            (tvec!(1, inputs, h, w), DataFormat::NCHW)
        } else {
            (tvec!(inputs, h, w), DataFormat::CHW)
        };
        let x = model.add_source("x", f32::fact(&shape)).unwrap();
        let weights: Vec<f32> = (0..outputs * inputs * kernel * kernel)
            .map(|i| ((i as f32) * 0.29).sin() * 0.5)
            .collect();
        let bias: Vec<f32> = (0..outputs).map(|i| i as f32 * 0.05 - 0.2).collect();
        let k = model
            .add_const(
                "k",
                Tensor::from_shape(&[outputs, inputs, kernel, kernel], &weights).unwrap(),
            )
            .unwrap();
        let b = model
            .add_const("b", Tensor::from_shape(&[outputs], &bias).unwrap())
            .unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: format,
                kernel_shape: tvec!(kernel, kernel),
                padding: PaddingSpec::Explicit(tvec!(pads[0], pads[1]), tvec!(pads[2], pads[3])),
                dilations: None,
                strides: Some(tvec!(stride, stride)),
                input_channels: inputs,
                output_channels: outputs,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        let mut y = model.wire_node("conv", conv, &[x, k, b]).unwrap()[0];
        if batch_norm {
            let mut per_channel = vec![1; shape.len()];
            per_channel[shape.len() - 3] = outputs;
            let scale: Vec<f32> = (0..outputs).map(|c| 0.5 + c as f32 * 0.07).collect();
            let shift: Vec<f32> = (0..outputs).map(|c| c as f32 * 0.03 - 0.1).collect();
            let scale = model
                .add_const("scale", Tensor::from_shape(&per_channel, &scale).unwrap())
                .unwrap();
            let shift = model
                .add_const("shift", Tensor::from_shape(&per_channel, &shift).unwrap())
                .unwrap();
            let mul = TypedBinOp(Box::new(math::Mul), None);
            y = model.wire_node("bn.mul", mul, &[y, scale]).unwrap()[0];
            let add = TypedBinOp(Box::new(math::Add), None);
            y = model.wire_node("bn.add", add, &[y, shift]).unwrap()[0];
        }
        if relu {
            let ones = vec![1; shape.len()];
            let zero = model
                .add_const("zero", Tensor::from_shape(&ones, &[0f32]).unwrap())
                .unwrap();
            let max = TypedBinOp(Box::new(math::Max), None);
            y = model.wire_node("relu", max, &[y, zero]).unwrap()[0];
        }
        model.select_output_outlets(&[y]).unwrap();
        model
    }

    #[test]
    fn dense_convolution_computes_what_tract_does() {
        let cases = [
            // channels, plane, kernel and stride, pads, batch norm, relu, batch
            ((96, 24), (20, 40), (3, 1), [1, 1, 1, 1], false, false, true),
            ((3, 7), (9, 13), (3, 1), [0, 0, 0, 0], true, true, true),
            ((5, 13), (17, 35), (3, 1), [1, 0, 1, 2], false, true, false),
            ((4, 6), (12, 23), (5, 1), [2, 2, 2, 2], true, false, true),
            ((24, 24), (30, 50), (3, 1), [1, 1, 1, 1], false, true, true),
            // CenterFace's first layer, and odd sizes at stride 2.
            ((3, 32), (64, 96), (3, 2), [1, 1, 1, 1], true, true, true),
            ((3, 7), (9, 13), (3, 2), [0, 0, 0, 0], false, true, true),
            ((5, 13), (17, 36), (3, 2), [1, 0, 1, 2], false, false, false),
            ((4, 6), (13, 40), (5, 2), [2, 2, 2, 2], true, false, true),
        ];
        for (channels, plane, kernel, pads, batch_norm, relu, batch) in cases {
            let case = format!(
                "{channels:?} {plane:?} kernel {kernel:?} pads {pads:?} bn {batch_norm} \
                 relu {relu} batch {batch}"
            );
            let plain = dense_model(channels, plane, kernel, pads, batch_norm, relu, batch);
            let mut rewritten = plain.clone().into_decluttered().unwrap();
            speed_up(&mut rewritten).unwrap();
            assert_eq!(count::<DenseConv>(&rewritten), 1, "{case}\n{rewritten}");
            assert_eq!(count::<Conv>(&rewritten), 0, "{case}\n{rewritten}");
            assert_eq!(count::<TypedBinOp>(&rewritten), 0, "{case}\n{rewritten}");
            let mut shape = vec![channels.0, plane.0, plane.1];
            if batch {
                shape.insert(0, 1);
            }
            same_on_one_and_two_threads(plain, rewritten, &shape, &case);
        }
    }

    #[test]
    fn a_max_pooling_after_a_dense_convolution_joins_it() {
        use tract_onnx::tract_core::ops::math;
        let cases = [
            // channels, plane, pads, relu before the pooling, relu after
            ((3, 8), (12, 13), [1, 1, 1, 1], true, false),
            ((3, 8), (12, 13), [0, 0, 0, 0], false, true),
            ((5, 7), (9, 22), [1, 0, 1, 2], false, false),
            ((64, 32), (63, 63), [0, 0, 0, 0], false, true),
        ];
        for (channels, plane, pads, relu_before, relu_after) in cases {
            let case = format!("{channels:?} {plane:?} pads {pads:?} {relu_before} {relu_after}");
            let mut plain = dense_model(channels, plane, (3, 1), pads, false, relu_before, true);
            let conv = plain.output_outlets().unwrap()[0];
            let pool = MaxPool {
                pool_spec: PoolSpec {
                    data_format: DataFormat::NCHW,
                    kernel_shape: tvec!(2, 2),
                    padding: PaddingSpec::Valid,
                    dilations: None,
                    strides: Some(tvec!(2, 2)),
                    input_channels: channels.1,
                    output_channels: channels.1,
                },
                with_index_outputs: None,
            };
            let mut y = plain.wire_node("pool", pool, &[conv]).unwrap()[0];
            if relu_after {
                let zero = plain
                    .add_const(
                        "zero.after",
                        Tensor::from_shape(&[1, 1, 1, 1], &[0f32]).unwrap(),
                    )
                    .unwrap();
                let max = TypedBinOp(Box::new(math::Max), None);
                y = plain.wire_node("relu.after", max, &[y, zero]).unwrap()[0];
            }
            plain.select_output_outlets(&[y]).unwrap();
            let mut rewritten = plain.clone().into_decluttered().unwrap();
            speed_up(&mut rewritten).unwrap();
            assert_eq!(count::<DenseConv>(&rewritten), 1, "{case}\n{rewritten}");
            assert_eq!(count::<PairMax>(&rewritten), 0, "{case}\n{rewritten}");
            assert_eq!(count::<TypedBinOp>(&rewritten), 0, "{case}\n{rewritten}");
            let shape = [1, channels.0, plane.0, plane.1];
            same_on_one_and_two_threads(plain, rewritten, &shape, &case);
        }
    }

    #[test]
    fn a_residual_sum_joins_its_inverted_residual_block() {
        use tract_onnx::tract_core::ops::math;
        // expanded from and to, plane, batch
        let cases = [
            ((8, 48), (14, 24), true),
            ((6, 36), (9, 40), false),
            // Split over two threads.
            ((8, 48), (64, 96), true),
        ];
        for ((from, expanded), plane, batch) in cases {
            let case = format!("{from} → {expanded} {plane:?} batch {batch}");
            let mut plain = block_model(
                Some(from),
                (expanded, from),
                plane,
                3,
                1,
                [1, 1, 1, 1],
                ("relu", "none"),
                batch,
            );
            let block = plain.output_outlets().unwrap()[0];
            let input = plain.input_outlets().unwrap()[0];
            let add = TypedBinOp(Box::new(math::Add), None);
            let sum = plain.wire_node("residual", add, &[block, input]).unwrap();
            plain.select_output_outlets(&sum).unwrap();
            let mut rewritten = plain.clone().into_decluttered().unwrap();
            speed_up(&mut rewritten).unwrap();
            let blocks: Vec<&InvertedResidual> = rewritten
                .nodes
                .iter()
                .filter_map(|n| n.op_as::<InvertedResidual>())
                .collect();
            assert!(
                blocks.len() == 1 && blocks[0].residual,
                "{case}\n{rewritten}"
            );
            assert_eq!(count::<TypedBinOp>(&rewritten), 0, "{case}\n{rewritten}");
            let mut shape = vec![from, plane.0, plane.1];
            if batch {
                shape.insert(0, 1);
            }
            same_on_one_and_two_threads(plain, rewritten, &shape, &case);
        }
    }
}
