//! Rewrites of a decluttered tract graph that keep its arithmetic and make it
//! run faster on this engine. Each one is measured by `cargo xtask bench ops`
//! and checked against the unrewritten graph by the tests below.
//!
//! Strided depthwise convolutions. tract 0.23 runs a depthwise convolution
//! with a vectorised kernel only when the input it walks along a row is
//! contiguous, that is at stride 1; at stride 2 it falls back to a scalar loop
//! that is about fourteen times slower per output. A stride-2 convolution is
//! the stride-1 convolution with the same padding, sampled at every second
//! row and column: output `i` of the strided one sums the inputs at `2i + k -
//! pad`, which is output `2i` of the other. So the rewrite computes four times
//! as many outputs at the fast rate and keeps one in four. tract's own
//! `Downsample` copies element by element through ndarray, one axis at a time
//! (1.2 ms for one axis of CenterFace's first strided layer), so the keeping is
//! [`KeepEven`], which takes both axes in one pass over whole rows.
//!
//! 2×2 max-pooling at stride 2. tract's `OptMaxPool` walks a generic patch
//! per output (2.8 ms on the anti-spoofing model's 64×126×126 layer, 38% of
//! the model); [`PairMax`] takes the larger of two rows, then of each pair in
//! it, with loops the compiler vectorises (0.5 ms).
//!
//! Together, at one thread (`cargo xtask bench pipeline`): CenterFace on a
//! 224×384 liveness frame 33 → 28 ms, on a 384×640 selfie 94 → 77 ms, the
//! anti-spoofing model 8.1 → 5.0 ms; outputs equal onnxruntime's as before.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::model::Rewriter;
use tract_onnx::tract_core::ops::cnn::conv::Conv;
use tract_onnx::tract_core::ops::cnn::{MaxPool, PaddingSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Applies every rewrite of this module to `model`, which must be typed and
/// decluttered; optimise it afterwards.
pub fn speed_up(model: &mut TypedModel) -> TractResult<()> {
    Rewriter::<()>::default()
        .with_rule_for("strided-depthwise", strided_depthwise)
        .with_rule_for("pair-max", pair_max)
        .rewrite(&(), model)
}

/// The stride-2 depthwise convolution as a stride-1 one followed by keeping
/// every second output along each strided axis. Only channel-first `f32`
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
    let Some(shape) = input.shape.as_concrete() else {
        return Ok(None);
    };
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
    // The scalar loop is taken when the row (last) axis is strided; strides
    // above 2 would compute too many outputs to win.
    let row_strided = strides.last() == Some(&2) && strides.iter().all(|&s| s == 1 || s == 2);
    if !(depthwise && channel_first && undilated && padding_kept && row_strided) {
        return Ok(None);
    }
    let h_axis = op.pool_spec.data_format.shape(shape)?.h_axis();

    let mut stride_one = op.clone();
    stride_one.pool_spec.strides = None;
    let mut patch = TypedModelPatch::default();
    let taps = patch.taps(model, &node.inputs)?;
    let wire = stride_one.wire_as_depth_wise(&mut patch, name, &taps)?;
    // The two spatial axes are the last two of a channel-first layout.
    debug_assert_eq!(h_axis + 2, shape.len());
    let keep = KeepEven {
        rows: strides[0] == 2,
    };
    let wire = patch.wire_node(format!("{name}.keep_even"), keep, &[wire])?[0];
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

/// Keeps the even columns of the last axis and, when `rows`, the even rows of
/// the axis before it: `[.., h, w]` becomes `[.., ceil(h/2), ceil(w/2)]` (or
/// `[.., h, ceil(w/2)]`). `f32` only; what [`strided_depthwise`] puts after
/// the stride-1 convolution.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeepEven {
    pub rows: bool,
}

impl KeepEven {
    fn row_step(&self) -> usize {
        if self.rows { 2 } else { 1 }
    }
}

impl Op for KeepEven {
    fn name(&self) -> StaticName {
        "KeepEven".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("rows: {}", self.rows)])
    }

    op_as_typed_op!();
}

impl EvalOp for KeepEven {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        ensure!(
            shape.len() >= 2,
            "KeepEven needs two spatial axes, got {shape:?}"
        );
        let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        let data = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let mut out_shape: TVec<usize> = shape.into();
        let rank = out_shape.len();
        out_shape[rank - 2] = h.div_ceil(self.row_step());
        out_shape[rank - 1] = w.div_ceil(2);
        let mut out = Vec::with_capacity(out_shape.iter().product());
        if h > 0 && w > 0 {
            for plane in data.chunks_exact(h * w) {
                for row in plane.chunks_exact(w).step_by(self.row_step()) {
                    out.extend(row.chunks(2).map(|pair| pair[0]));
                }
            }
        }
        let out = tract_ndarray::ArrayD::from_shape_vec(&*out_shape, out)?;
        Ok(tvec!(out.into_tensor().into_tvalue()))
    }
}

impl TypedOp for KeepEven {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let input = inputs[0];
        ensure!(
            input.datum_type == f32::datum_type(),
            "KeepEven is f32 only"
        );
        ensure!(input.rank() >= 2, "KeepEven needs two spatial axes");
        let mut fact = input.without_value();
        let rank = fact.rank();
        let h = fact.shape[rank - 2]
            .clone()
            .div_ceil(self.row_step() as u64);
        let w = fact.shape[rank - 1].clone().div_ceil(2);
        fact.shape.set(rank - 2, h);
        fact.shape.set(rank - 1, w);
        Ok(tvec!(fact))
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
        let input = args_1!(inputs);
        let shape = input.shape();
        ensure!(
            shape.len() >= 2,
            "PairMax needs two spatial axes, got {shape:?}"
        );
        let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        let data = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let mut out_shape: TVec<usize> = shape.into();
        let rank = out_shape.len();
        out_shape[rank - 2] = h / 2;
        out_shape[rank - 1] = w / 2;
        let mut out = Vec::with_capacity(out_shape.iter().product());
        let mut column_max = vec![0f32; w];
        if h > 1 && w > 1 {
            for plane in data.chunks_exact(h * w) {
                for rows in plane.chunks_exact(2 * w) {
                    let (upper, lower) = rows.split_at(w);
                    for ((m, &a), &b) in column_max.iter_mut().zip(upper).zip(lower) {
                        *m = a.max(b);
                    }
                    out.extend(column_max.chunks_exact(2).map(|pair| pair[0].max(pair[1])));
                }
            }
        }
        let out = tract_ndarray::ArrayD::from_shape_vec(&*out_shape, out)?;
        Ok(tvec!(out.into_tensor().into_tvalue()))
    }
}

impl TypedOp for PairMax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let input = inputs[0];
        ensure!(input.datum_type == f32::datum_type(), "PairMax is f32 only");
        ensure!(input.rank() >= 2, "PairMax needs two spatial axes");
        let mut fact = input.without_value();
        let rank = fact.rank();
        let h = fact.shape[rank - 2].clone() / 2;
        let w = fact.shape[rank - 1].clone() / 2;
        fact.shape.set(rank - 2, h);
        fact.shape.set(rank - 1, w);
        Ok(tvec!(fact))
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

    fn count_keeps(model: &TypedModel) -> usize {
        model
            .nodes()
            .iter()
            .filter(|node| node.op_is::<KeepEven>())
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
            assert_eq!(count_keeps(&rewritten), 1, "{padding:?}");
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
            assert_eq!(count_keeps(&model), 0);
        }
    }

    #[test]
    fn stride_one_and_stride_three_are_left_alone() {
        for strides in [[1, 1], [3, 3], [2, 1]] {
            let pad = PaddingSpec::Explicit(tvec!(1, 1), tvec!(1, 1));
            let mut model = depthwise_model(4, (12, 12), 3, strides, pad);
            speed_up(&mut model).unwrap();
            assert_eq!(count_keeps(&model), 0, "{strides:?}");
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

    fn count_pair_max(model: &TypedModel) -> usize {
        model
            .nodes()
            .iter()
            .filter(|node| node.op_is::<PairMax>())
            .count()
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
                assert_eq!(count_pair_max(&rewritten), 1, "{padding:?}");
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
                count_pair_max(&model),
                0,
                "{kernel:?} {strides:?} {padding:?}"
            );
        }
    }
}
