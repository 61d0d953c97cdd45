"""The verification pipeline again, in Python with onnxruntime: the yardstick
`cargo xtask bench pipeline` holds tract and the Rust pipeline against.

Two commands, each printing one JSON document on stdout:

  models MANIFEST --threads N --runs N
      Times every model of MANIFEST (written by the bench: ONNX file, input
      shape, input tensor and tract's outputs as raw little-endian float32)
      on exactly the tensor tract got, and reports the largest difference
      between the two runtimes' outputs.

  verdict --models DIR --document JPEG --selfie JPEG --frames JPEG... --threads N --runs N
      The whole verdict as the Rust side computes it: decode the JPEGs, read
      the MRZ (PP-OCRv4 detection, the lowest long lines recognised with the
      MRZ alphabet), match the selfie's face against the document portrait
      (CenterFace, five-point alignment, faceres-deep, cosine) and passive
      liveness as the product's LivenessPipeline runs it (per frame the face
      found on a 384-pixel copy, antispoof and liveness on a square crop
      sampled from the frame; three frames described with faceres-deep). Reports per-stage and whole-verdict
      times and what it found.

The pipeline follows the Rust code's steps and constants, written the way a
Python service would (numpy, Pillow), not line for line: its text boxes are
axis-aligned where the Rust detector fits rotated ones, which is the same on
the bench's upright document. Both runtimes get the same thread count:
onnxruntime's intra-op pool of N threads, inter-op parallelism off.
"""

import argparse
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image


def session(path, threads, spinning=True):
    """An onnxruntime session as fast as it gets for its use. Its intra-op
    threads spin between runs by default, which wins when one model runs in a
    loop (the per-model timing) but, on two cores, takes a core from the
    decoding and numpy work between the models of the verdict: measured
    here, the two-thread verdict took 1.09 s spinning and 0.64 s without."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def summary(ms):
    """Median and 90th percentile, ranked as the Rust side ranks them."""
    v = sorted(ms)
    if not v:
        return None
    at = lambda p: v[min(max(math.ceil(p * len(v)), 1), len(v)) - 1]
    return {"median": round(at(0.5), 2), "p90": round(at(0.9), 2), "min": round(v[0], 2)}


def now_ms():
    return time.perf_counter() * 1000.0


# ---------------------------------------------------------------- models


def time_models(manifest_path, threads, runs):
    manifest = json.loads(Path(manifest_path).read_text())
    folder = Path(manifest["dir"])
    rows = []
    for m in manifest["models"]:
        sess = session(m["model"], threads)
        name = sess.get_inputs()[0].name
        x = np.fromfile(folder / m["input"], dtype="<f4").reshape(m["shape"])
        outputs = sess.run(None, {name: x})
        diff = 0.0
        for out, ref in zip(outputs, m["tract_outputs"]):
            tract = np.fromfile(folder / ref["file"], dtype="<f4")
            flat = np.asarray(out, dtype=np.float32).ravel()
            if flat.size != tract.size:
                diff = float("inf")
            else:
                diff = max(diff, float(np.max(np.abs(flat - tract))) if flat.size else 0.0)
        ms = []
        for _ in range(runs):
            t = now_ms()
            sess.run(None, {name: x})
            ms.append(now_ms() - t)
        rows.append(
            {
                "name": m["name"],
                "ms": summary(ms),
                "samples": [round(x, 3) for x in ms],
                "max_abs_diff": diff,
            }
        )
    return {"threads": threads, "runs": runs, "onnxruntime": ort.__version__, "models": rows}


# ---------------------------------------------------------------- faces

TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
VGGFACE_MEAN_BGR = np.array([93.5940, 104.7624, 129.1863], dtype=np.float32)


def detect_faces(sess, image, long_side, min_score=0.5, nms_iou=0.3):
    """CenterFace on `image` (PIL) scaled to `long_side`: [(box, score, landmarks)] in image pixels."""
    w0, h0 = image.size
    scale = long_side / max(w0, h0)
    w, h = max(1, round(w0 * scale)), max(1, round(h0 * scale))
    small = np.asarray(image.resize((w, h), Image.BILINEAR), dtype=np.float32)
    pw, ph = -(-w // 32) * 32, -(-h // 32) * 32
    x = np.zeros((1, 3, ph, pw), dtype=np.float32)
    x[0, :, :h, :w] = small[:, :, ::-1].transpose(2, 0, 1)
    heat, scales, offsets, marks = sess.run(None, {sess.get_inputs()[0].name: x})
    rows, cols = np.nonzero(heat[0, 0] >= min_score)
    faces = []
    for r, c in zip(rows, cols):
        fh = math.exp(scales[0, 0, r, c]) * 4.0
        fw = math.exp(scales[0, 1, r, c]) * 4.0
        cy = (r + offsets[0, 0, r, c] + 0.5) * 4.0
        cx = (c + offsets[0, 1, r, c] + 0.5) * 4.0
        top, left = cy - fh / 2.0, cx - fw / 2.0
        lm = np.array([[left + marks[0, 2 * j + 1, r, c] * fw, top + marks[0, 2 * j, r, c] * fh] for j in range(5)])
        faces.append((np.array([left, top, left + fw, top + fh]), float(heat[0, 0, r, c]), lm))
    faces.sort(key=lambda f: -f[1])
    kept = []
    for f in faces:
        if all(iou(f[0], k[0]) <= nms_iou for k in kept):
            kept.append(f)
    sx, sy = w0 / w, h0 / h
    out = []
    for box, score, lm in kept:
        box = np.clip(box * [sx, sy, sx, sy], 0, [w0, h0, w0, h0])
        out.append((box, score, lm * [sx, sy]))
    return out


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = area(a) + area(b) - inter
    return 0.0 if union <= 0 else inter / union


def area(box):
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def align(image_array, landmarks, size=224):
    """The 4-degree-of-freedom similarity taking the landmarks onto the template, inverted and sampled bilinearly."""
    template = TEMPLATE_112 * (size / 112.0)
    f_mean, t_mean = landmarks.mean(0), template.mean(0)
    fc, tc = landmarks - f_mean, template - t_mean
    den = (fc**2).sum()
    a = (fc[:, 0] * tc[:, 0] + fc[:, 1] * tc[:, 1]).sum() / den
    b = (fc[:, 0] * tc[:, 1] - fc[:, 1] * tc[:, 0]).sum() / den
    tx = t_mean[0] - (a * f_mean[0] - b * f_mean[1])
    ty = t_mean[1] - (b * f_mean[0] + a * f_mean[1])
    d = a * a + b * b
    ia, ib = a / d, -b / d
    itx, ity = -(ia * tx - ib * ty), -(ib * tx + ia * ty)
    v, u = np.mgrid[0:size, 0:size].astype(np.float32)
    xs = ia * u - ib * v + itx
    ys = ib * u + ia * v + ity
    return bilinear_black(image_array, xs, ys)


def bilinear_black(img, xs, ys):
    h, w = img.shape[:2]
    x0, y0 = np.floor(xs).astype(np.int64), np.floor(ys).astype(np.int64)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]

    def fetch(xi, yi):
        ok = (xi >= 0) & (yi >= 0) & (xi < w) & (yi < h)
        px = img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)].astype(np.float32)
        return px * ok[..., None]

    top = fetch(x0, y0) * (1 - fx) + fetch(x0 + 1, y0) * fx
    bottom = fetch(x0, y0 + 1) * (1 - fx) + fetch(x0 + 1, y0 + 1) * fx
    inside = ((xs > -1) & (ys > -1) & (xs < w) & (ys < h))[..., None]
    return np.clip(np.round((top * (1 - fy) + bottom * fy) * inside), 0, 255).astype(np.uint8)


def describe(sess, crop):
    x = (crop[:, :, ::-1].astype(np.float32) - VGGFACE_MEAN_BGR)[None]
    outputs = sess.run(None, {sess.get_inputs()[0].name: x})
    raw = next(o for o in outputs if o.size == 1024).ravel()
    return raw / np.linalg.norm(raw)


def face_lookup(models, image, single):
    faces = detect_faces(models["centerface"], image, 640)
    faces.sort(key=lambda f: -area(f[0]))
    if not faces:
        return None
    if single and sum(area(f[0]) >= area(faces[0][0]) * 0.25 for f in faces) > 1:
        return None
    crop = align(np.asarray(image), faces[0][2])
    return describe(models["faceres"], crop)


# ---------------------------------------------------------------- OCR


def mrz_char(symbol):
    if len(symbol) != 1:
        return None
    c = symbol
    if "\uff01" <= c <= "\uff5e":
        c = chr(ord(c) - 0xFEE0)
    if "A" <= c <= "Z" or "0" <= c <= "9" or c == "<":
        return c
    if "a" <= c <= "z":
        return c.upper()
    if c in "‹〈く":
        return "<"
    if c in "«《":
        return "«"
    return None


def load_alphabet(keys_path):
    symbols = [""] + Path(keys_path).read_text(encoding="utf-8").split("\n")[:-1] + [" "]
    symbols = [s.rstrip("\r") for s in symbols]
    mapped = [mrz_char(s) if i > 0 else None for i, s in enumerate(symbols)]
    allowed = np.array([m is not None for m in mapped])
    allowed[0] = True  # the CTC blank always competes
    return mapped, allowed


def ocr_input(image, width, height):
    arr = np.asarray(image, dtype=np.float32)
    h, w = arr.shape[:2]
    x = np.zeros((1, 3, height, width), dtype=np.float32)
    x[0, :, :h, :w] = ((arr[:, :, ::-1] / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
    return x


def text_boxes(prob, threshold=0.3, box_threshold=0.5, unclip=1.6, min_size=3.0):
    """4-connected regions of the probability map, from runs of text pixels
    per row joined across rows (union-find): (left, top, width, height, score)
    boxes, grown back by DB's unclip ratio, in map pixels."""
    mask = prob > threshold
    parent = []

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    runs = []  # (row, start, end) end exclusive
    previous = []
    for y in range(mask.shape[0]):
        row = mask[y]
        if not row.any():
            previous = []
            continue
        edges = np.flatnonzero(np.diff(np.concatenate(([0], row.view(np.int8), [0]))))
        current = []
        for s, e in zip(edges[0::2], edges[1::2]):
            idx = len(runs)
            runs.append((y, s, e))
            parent.append(idx)
            for j in previous:
                _, ps, pe = runs[j]
                if ps < e and s < pe:
                    a, b = find(idx), find(j)
                    if a != b:
                        parent[a] = b
            current.append(idx)
        previous = current
    groups = {}
    for i in range(len(runs)):
        groups.setdefault(find(i), []).append(runs[i])
    boxes = []
    for members in groups.values():
        total = sum(float(prob[y, s:e].sum()) for y, s, e in members)
        count = sum(e - s for _, s, e in members)
        if total / count < box_threshold:
            continue
        left = min(s for _, s, _ in members)
        right = max(e for _, _, e in members)
        top = min(y for y, _, _ in members)
        bottom = max(y for y, _, _ in members) + 1
        w, h = right - left, bottom - top
        if h < min_size:
            continue
        grow = w * h * unclip / (2.0 * (w + h))
        if h + 2 * grow < min_size + 2:
            continue
        boxes.append([left - grow, top - grow, w + 2 * grow, h + 2 * grow, total / count])
    return boxes


def merge_lines(boxes):
    """Joins pieces of one line (the detector may split an MRZ line at long filler runs)."""
    boxes = sorted(boxes, key=lambda b: b[0])
    out = []
    for b in boxes:
        for m in out:
            same_row = abs((m[1] + m[3] / 2) - (b[1] + b[3] / 2)) < 0.5 * min(m[3], b[3])
            gap = b[0] - (m[0] + m[2])
            if same_row and gap < 2 * max(m[3], b[3]):
                right, bottom = max(m[0] + m[2], b[0] + b[2]), max(m[1] + m[3], b[1] + b[3])
                m[0], m[1] = min(m[0], b[0]), min(m[1], b[1])
                m[2], m[3] = right - m[0], bottom - m[1]
                break
        else:
            out.append(list(b))
    return out


def read_mrz(models, image):
    width, height = image.size
    ratio = min(960 / max(width, height), 1.0)
    nw = max(1, round(width * ratio / 32)) * 32
    nh = max(1, round(height * ratio / 32)) * 32
    pw, ph = -(-nw // 160) * 160, -(-nh // 160) * 160
    small = image.resize((nw, nh), Image.BILINEAR)
    det = models["det"]
    prob = det.run(None, {det.get_inputs()[0].name: ocr_input(small, pw, ph)})[0][0, 0]
    sx, sy = width / nw, height / nh
    boxes = [[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy, b[4]] for b in text_boxes(prob)]
    thin = [b for b in merge_lines(boxes) if b[2] >= 8 * b[3]]
    longest = max((b[2] for b in thin), default=0.0)
    candidates = sorted((b for b in thin if b[2] >= longest / 3), key=lambda b: b[1] + b[3] / 2)
    mapped, allowed = models["alphabet"]
    rec = models["rec"]
    zone = []
    for left, top, w, h, _ in reversed(candidates):
        left, w = left - h / 2, w + h  # room at the ends, as the Rust side pads
        out_w = int(min(max(round(w * 48 / h * 1.5), 1), 1920))
        line = image.resize((out_w, 48), Image.BILINEAR, box=(left, top, left + w, top + h))
        bucket = min(max(-(-out_w // 160) * 160, 320), 1920)
        probs = rec.run(None, {rec.get_inputs()[0].name: ocr_input(line, bucket, 48)})[0][0]
        probs = np.where(allowed, probs, -1.0)
        best = probs.argmax(1)
        text, previous = [], 0
        for k in best:
            if k != 0 and k != previous:
                text.append(mapped[k])
            previous = k
        text = "".join(text)
        if len(text) >= 24:
            zone.append(text)
            if len(zone) == 3:
                break
        elif zone:
            break
    return list(reversed(zone))


# ---------------------------------------------------------------- liveness


def identity_frames(n, k):
    """Which of n frames to describe: k spread evenly from the first to the last."""
    if k >= n:
        return list(range(n))
    if k == 0:
        return []
    if k == 1:
        return [0]
    # Rust's f32::round rounds halves away from zero; Python's round() does not.
    return sorted({int(math.floor(i * (n - 1) / (k - 1) + 0.5)) for i in range(k)})


def crop_input(image_array, box, margin, size):
    """The square crop the presentation-attack models see, sampled bilinearly
    straight from the frame (no smoothing), as NHWC RGB 0..1."""
    side = max(box[2] - box[0], box[3] - box[1]) * margin
    left = (box[0] + box[2]) / 2.0 - side / 2.0
    top = (box[1] + box[3]) / 2.0 - side / 2.0
    step = side / size
    v, u = np.mgrid[0:size, 0:size].astype(np.float32)
    xs = left + (u + 0.5) * step - 0.5
    ys = top + (v + 0.5) * step - 0.5
    return bilinear_black(image_array, xs, ys).astype(np.float32)[None] / 255.0


def liveness(models, frames, args):
    """Passive liveness as the product's LivenessPipeline::passive: per frame,
    the largest face at the liveness detector's size, scored by both models;
    the frames picked for the identity check described."""
    described = identity_frames(len(frames), args.identity_frames)
    spoof, antispoof, seen, descriptors = [], [], 0, 0
    for i, data in enumerate(frames):
        frame = Image.open(io.BytesIO(data)).convert("RGB")
        faces = detect_faces(models["centerface"], frame, args.liveness_long_side)
        if not faces:
            continue
        faces.sort(key=lambda f: -area(f[0]))
        box, _, landmarks = faces[0]
        count = sum(area(f[0]) >= area(box) * args.second_face_area for f in faces)
        seen += 1
        pixels = np.asarray(frame)
        a_in = crop_input(pixels, box, args.crop_margin, 128)
        l_in = crop_input(pixels, box, args.crop_margin, 32)
        a = models["antispoof"].run(None, {models["antispoof"].get_inputs()[0].name: a_in})[0]
        l = models["liveness"].run(None, {models["liveness"].get_inputs()[0].name: l_in})[0]
        antispoof.append(float(a.ravel()[0]))
        spoof.append(min(max(1.0 - float(l.ravel()[0]), 0.0), 1.0))
        if i in described and count == 1:
            describe(models["faceres"], align(pixels, landmarks))
            descriptors += 1
    median = lambda v: round(float(np.median(v)), 3) if v else None
    return {
        "frames_with_face": seen,
        "described": descriptors,
        "spoof": median(spoof),
        "antispoof": median(antispoof),
    }


def verdict(args):
    folder = Path(args.models)
    models = {
        "centerface": session(folder / "centerface.onnx", args.threads, spinning=False),
        "faceres": session(folder / "faceres-deep.onnx", args.threads, spinning=False),
        "det": session(folder / "ppocr-v4-det.onnx", args.threads, spinning=False),
        "rec": session(folder / "ppocr-v4-rec.onnx", args.threads, spinning=False),
        "antispoof": session(folder / "antispoof.onnx", args.threads, spinning=False),
        "liveness": session(folder / "liveness.onnx", args.threads, spinning=False),
        "alphabet": load_alphabet(folder / "ppocr-v4-rec-keys.txt"),
    }
    document_bytes = Path(args.document).read_bytes()
    selfie_bytes = Path(args.selfie).read_bytes()
    frames = [Path(f).read_bytes() for f in args.frames]

    def once(stages):
        t = now_ms()
        document = Image.open(io.BytesIO(document_bytes)).convert("RGB")
        selfie = Image.open(io.BytesIO(selfie_bytes)).convert("RGB")
        stages["decode"].append(now_ms() - t)
        t = now_ms()
        lines = read_mrz(models, document)
        stages["read_document"].append(now_ms() - t)
        t = now_ms()
        s = face_lookup(models, selfie, True)
        d = face_lookup(models, document, False)
        similarity = None if s is None or d is None else round(float(s @ d), 3)
        stages["face_compare"].append(now_ms() - t)
        t = now_ms()
        live = liveness(models, frames, args)
        stages["liveness_10_frames"].append(now_ms() - t)
        return {"mrz_lines": lines, "similarity": similarity, "liveness": live}

    names = ["decode", "read_document", "face_compare", "liveness_10_frames"]
    once({n: [] for n in names})  # warm-up, as the Rust side builds its plans
    stages = {n: [] for n in names}
    total = []
    outcome = None
    for _ in range(args.runs):
        t = now_ms()
        outcome = once(stages)
        total.append(now_ms() - t)
    side_by_side = verdict_side_by_side(args, document_bytes, selfie_bytes, frames)
    return {
        "threads": args.threads,
        "runs": args.runs,
        "onnxruntime": ort.__version__,
        "verdict_ms": summary(total),
        "verdict_samples": [round(x, 3) for x in total],
        "verdict_side_by_side_ms": None if side_by_side is None else summary(side_by_side),
        "verdict_side_by_side_samples": None
        if side_by_side is None
        else [round(x, 3) for x in side_by_side],
        "stages_ms": {n: summary(v) for n, v in stages.items()},
        "outcome": outcome,
    }


def verdict_side_by_side(args, document_bytes, selfie_bytes, frames):
    """The same verdict with the document reading on a second thread beside
    the face match and liveness, each model on one onnxruntime thread: the
    structure of the Rust bench's side-by-side run, so that each language is
    also measured at its best use of the cores (onnxruntime releases the GIL
    while a model runs). None at one thread, where there is nothing to put
    side by side."""
    if args.threads < 2:
        return None
    from concurrent.futures import ThreadPoolExecutor

    folder = Path(args.models)
    names = ["centerface", "faceres-deep", "ppocr-v4-det", "ppocr-v4-rec", "antispoof", "liveness"]
    keys = ["centerface", "faceres", "det", "rec", "antispoof", "liveness"]
    models = {k: session(folder / f"{n}.onnx", 1, spinning=False) for k, n in zip(keys, names)}
    models["alphabet"] = load_alphabet(folder / "ppocr-v4-rec-keys.txt")

    def once(pool):
        document = Image.open(io.BytesIO(document_bytes)).convert("RGB")
        reading = pool.submit(read_mrz, models, document)
        selfie = Image.open(io.BytesIO(selfie_bytes)).convert("RGB")
        face_lookup(models, selfie, True)
        face_lookup(models, document, False)
        liveness(models, frames, args)
        return reading.result()

    with ThreadPoolExecutor(max_workers=1) as pool:
        once(pool)  # warm-up
        total = []
        for _ in range(args.runs):
            t = now_ms()
            once(pool)
            total.append(now_ms() - t)
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("models")
    m.add_argument("manifest")
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--runs", type=int, default=10)
    v = sub.add_parser("verdict")
    v.add_argument("--models", required=True)
    v.add_argument("--document", required=True)
    v.add_argument("--selfie", required=True)
    v.add_argument("--frames", nargs="+", required=True)
    v.add_argument("--threads", type=int, default=1)
    v.add_argument("--runs", type=int, default=10)
    v.add_argument("--liveness-long-side", type=int, default=384)
    v.add_argument("--crop-margin", type=float, default=1.3)
    v.add_argument("--identity-frames", type=int, default=3)
    v.add_argument("--second-face-area", type=float, default=0.25)
    args = parser.parse_args()
    result = time_models(args.manifest, args.threads, args.runs) if args.command == "models" else verdict(args)
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
