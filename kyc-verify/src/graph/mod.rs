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
//! Together, at one thread (`cargo xtask bench pipeline`): CenterFace on a
//! 224×384 liveness frame 33 → 26 ms, on a 384×640 selfie about 92 → 69 ms,
//! the anti-spoofing model 8.1 → 4.5 ms, faceres-deep 28.5 → 21 ms, PP-OCR
//! detection 120 → 107 ms; outputs equal onnxruntime's as before.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::model::Rewriter;
use tract_onnx::tract_core::ops::binary::{BinMiniOp, TypedBinOp};
use tract_onnx::tract_core::ops::cnn::conv::Conv;
use tract_onnx::tract_core::ops::cnn::{MaxPool, PaddingSpec};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::{Add, Max};
use tract_onnx::tract_core::ops::nn::DataFormat;

mod pointwise;
pub use pointwise::Pointwise;

/// Applies every rewrite of this module to `model`, which must be typed and
/// decluttered; optimise it afterwards.
pub fn speed_up(model: &mut TypedModel) -> TractResult<()> {
    Rewriter::<()>::default()
        .with_rule_for("strided-depthwise", strided_depthwise)
        .with_rule_for("pair-max", pair_max)
        .with_rule_for("last-axis-affine", last_axis_affine)
        .with_rule_for("affine-after-affine", affine_after_affine)
        .with_rule_for("pointwise", pointwise)
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
    let previous = model.node(node.inputs[0].node);
    let Some(first) = previous.op_as::<LastAxisAffine>() else {
        return Ok(None);
    };
    if previous.outputs[0].successors.len() != 1
        || model.output_outlets()?.contains(&node.inputs[0])
    {
        return Ok(None);
    }
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
    let mut patch = TypedModelPatch::default();
    let input = patch.tap_model(model, previous.inputs[0])?;
    let wire = patch.wire_node(name, merged, &[input])?[0];
    patch.shunt_outside(model, node.id.into(), wire)?;
    Ok(Some(patch))
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
    let batch = match op.axes.to_string().as_str() {
        "IHW,OI->OHW" | "NIHW,OI->OHW" => false,
        "NIHW,OI->NOHW" => true,
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
    if let Some((add, values)) = only_reader_with_constant::<Add>(model, last)? {
        let per_channel = values.datum_type() == f32::datum_type()
            && values.len() == outputs
            && values.shape().first() == Some(&outputs)
            && values.shape().iter().skip(1).all(|&d| d == 1);
        if per_channel {
            bias = values.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
            last = add;
        }
    }
    let mut relu = false;
    if let Some((max, values)) = only_reader_with_constant::<Max>(model, last)?
        && values.len() == 1
        && values.cast_to_scalar::<f32>()? == 0.0
    {
        relu = true;
        last = max;
    }
    let rank = shape.len();
    let mut produced = vec![outputs, shape[rank - 2], shape[rank - 1]];
    if batch {
        produced.insert(0, 1);
    }
    if model.outlet_fact(last.id.into())?.shape.as_concrete() != Some(&produced[..]) {
        return Ok(None);
    }
    let mut patch = TypedModelPatch::default();
    let tap = patch.tap_model(model, node.inputs[0])?;
    let wire = patch.wire_node(name, Pointwise::new(&weights, &bias, relu, batch)?, &[tap])?[0];
    patch.shunt_outside(model, last.id.into(), wire)?;
    Ok(Some(patch))
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
    let mut out = vec![0f32; out_shape.iter().product()];
    if oh > 0 && ow > 0 {
        let plane_len = oh * ow;
        tract_linalg::multithread::par_chunks_mut(
            &mut out,
            plane_len,
            data.len(),
            |first, planes| {
                for (ix, plane) in planes.chunks_exact_mut(plane_len).enumerate() {
                    fill(&data[(first + ix) * h * w..][..h * w], w, plane, ow);
                }
                Ok(())
            },
        )?;
    }
    let out = tract_ndarray::ArrayD::from_shape_vec(&*out_shape, out)?;
    Ok(tvec!(out.into_tensor().into_tvalue()))
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

    fn run(model: TypedModel, input: &Tensor) -> (Vec<usize>, Vec<f32>) {
        let plan = model.into_optimized().unwrap().into_runnable().unwrap();
        let out = plan.run(tvec!(input.clone().into())).unwrap();
        let view = out[0].to_plain_array_view::<f32>().unwrap();
        (view.shape().to_vec(), view.iter().copied().collect())
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

    fn run_all(model: TypedModel, input: &Tensor) -> Vec<Vec<f32>> {
        let plan = model.into_optimized().unwrap().into_runnable().unwrap();
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
}
