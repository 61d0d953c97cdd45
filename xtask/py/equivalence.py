"""Check that every converted model computes what its original computes.

For each model of the job, fixed pseudo-random inputs (seeded; half white
noise, half smooth "image-like" fields made by upsampling a coarse random
grid) in the model's documented input range are fed to

* the converted ONNX file, with python onnxruntime (1 thread, all graph
  optimisations off, so the file is executed as written), and
* the reference: the original TF.js graph model in Node (@tensorflow/tfjs
  + wasm backend, tfjs_reference.cjs), or for an ONNX rewrite the original
  ONNX file in onnxruntime.

Per output it reports the largest absolute difference, the largest absolute
reference value, and how much the output varies across inputs (the lowest
cosine similarity between the outputs of two different inputs, and the
largest per-element spread), so that a model that ignores its input shows.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort


def make_inputs(shape: list[int], lo: float, hi: float, seed: int, count: int) -> list[np.ndarray]:
    rng = np.random.RandomState(seed)
    out = []
    for i in range(count):
        if i % 2 == 0:
            unit = rng.rand(*shape)
        else:
            unit = _smooth(rng, shape)
        out.append((lo + (hi - lo) * unit).astype(np.float32))
    return out


def _smooth(rng: np.random.RandomState, shape: list[int]) -> np.ndarray:
    """Bilinear upsampling of a 5x5 random grid to the spatial dims of `shape`."""
    nhwc = shape[-1] in (1, 3)
    h, w = (shape[1], shape[2]) if nhwc else (shape[2], shape[3])
    grid = rng.rand(shape[0], 5, 5, 3 if nhwc else shape[1])
    ys = np.linspace(0, 4, h)
    xs = np.linspace(0, 4, w)
    y0 = np.clip(np.floor(ys).astype(int), 0, 3)
    x0 = np.clip(np.floor(xs).astype(int), 0, 3)
    fy = (ys - y0)[None, :, None, None]
    fx = (xs - x0)[None, None, :, None]
    g00 = grid[:, y0][:, :, x0]
    g01 = grid[:, y0][:, :, x0 + 1]
    g10 = grid[:, y0 + 1][:, :, x0]
    g11 = grid[:, y0 + 1][:, :, x0 + 1]
    img = (g00 * (1 - fx) + g01 * fx) * (1 - fy) + (g10 * (1 - fx) + g11 * fx) * fy
    return img if nhwc else img.transpose(0, 3, 1, 2)


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run_onnx(path: Path, inputs: list[np.ndarray]) -> tuple[list[str], list[list[np.ndarray]]]:
    session = _session(path)
    names = [o.name for o in session.get_outputs()]
    feed_name = session.get_inputs()[0].name
    return names, [session.run(names, {feed_name: x}) for x in inputs]


def _run_tfjs(job: dict, model: dict, inputs: list[np.ndarray], work: Path) -> list[list[dict]]:
    work.mkdir(parents=True, exist_ok=True)
    cases = []
    for i, x in enumerate(inputs):
        path = work / f"input{i}.f32"
        x.astype("<f4").tofile(path)
        cases.append({"input": str(path), "shape": list(x.shape), "output_prefix": str(work / f"output{i}")})
    spec = work / "job.json"
    spec.write_text(json.dumps({"model_json": model["reference"], "backend": "wasm", "cases": cases}))
    env = dict(os.environ, NODE_PATH=job["node_modules"])
    done = subprocess.run(
        [job["node"], job["tfjs_script"], str(spec)],
        capture_output=True, text=True, env=env, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tfjs reference failed for {model['name']}: {done.stderr.strip()[-2000:]}")
    results = []
    for line in done.stdout.splitlines():
        record = json.loads(line)
        for o in record["outputs"]:
            o["value"] = np.fromfile(o["file"], dtype="<f4").reshape(o["shape"])
        results.append(record["outputs"])
    return results


def _match_tfjs(onnx_name: str, onnx_shape: tuple, tfjs_outputs: list[dict]) -> int:
    """Index of the TF.js output that an ONNX output was converted from."""
    bare = onnx_name[:-2] if onnx_name.endswith(":0") else onnx_name
    for k, o in enumerate(tfjs_outputs):
        if bare in (o["name"], o["key"]):
            return k
    same = [k for k, o in enumerate(tfjs_outputs) if tuple(o["shape"]) == tuple(onnx_shape)]
    if len(same) == 1:
        return same[0]
    raise RuntimeError(f"cannot tell which TF.js output ONNX output {onnx_name} is")


def _variation(values: list[np.ndarray]) -> dict:
    flat = [v.astype(np.float64).ravel() for v in values]
    lowest = 1.0
    for i in range(len(flat)):
        for j in range(i + 1, len(flat)):
            a, b = flat[i], flat[j]
            denom = np.linalg.norm(a) * np.linalg.norm(b)
            cos = float(a @ b / denom) if denom > 0 else (1.0 if np.array_equal(a, b) else 0.0)
            lowest = min(lowest, cos)
    spread = float(np.max(np.max(flat, axis=0) - np.min(flat, axis=0)))
    return {"min_pairwise_cosine": lowest, "max_spread": spread}


def check_model(job: dict, model: dict) -> dict:
    lo, hi = model["input_range"]
    inputs = make_inputs(model["input_shape"], lo, hi, job["seed"], job["cases"])
    names, got = _run_onnx(Path(model["onnx"]), inputs)
    work = Path(job["work"]) / model["name"]
    if model["reference_kind"] == "tfjs":
        ref_runs = _run_tfjs(job, model, inputs, work)
    else:
        ref_names, ref_values = _run_onnx(Path(model["reference"]), inputs)
        ref_runs = [[{"name": n, "key": None, "shape": list(v.shape), "value": v}
                     for n, v in zip(ref_names, run)] for run in ref_values]
    outputs = []
    for k, name in enumerate(names):
        diff = 0.0
        peak = 0.0
        for case, refs in zip(got, ref_runs):
            mine = case[k]
            ref = refs[_match_tfjs(name, mine.shape, refs)]["value"]
            if tuple(ref.shape) != tuple(mine.shape):
                raise RuntimeError(f"{model['name']}: output {name} shape {mine.shape} vs reference {ref.shape}")
            diff = max(diff, float(np.max(np.abs(mine.astype(np.float64) - ref))))
            peak = max(peak, float(np.max(np.abs(ref))))
        outputs.append({
            "name": name,
            "shape": list(got[0][k].shape),
            "max_abs_diff": diff,
            "max_abs_reference": peak,
            **_variation([case[k] for case in got]),
        })
    extra = []
    for shape in model.get("extra_shapes", []):
        x = make_inputs(shape, lo, hi, job["seed"] + 1, 1)
        out_names, runs = _run_onnx(Path(model["onnx"]), x)
        extra.append({"input_shape": shape, "output_shapes": [list(v.shape) for v in runs[0]]})
    return {
        "name": model["name"],
        "reference": model["reference_kind"],
        "input_shape": model["input_shape"],
        "input_range": model["input_range"],
        "cases": job["cases"],
        "outputs": outputs,
        "extra_shapes": extra,
    }


def run(job_path: Path) -> dict:
    job = json.loads(job_path.read_text())
    return {"seed": job["seed"], "models": [check_model(job, m) for m in job["models"]]}
