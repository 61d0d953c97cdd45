"""Python side of `cargo xtask models`: the steps that need onnx, tf2onnx,
onnxruntime or numpy. Run with the interpreter of the virtualenv the xtask
creates from requirements.txt. Every subcommand prints one JSON document.

  models_tool.py centerface SRC OUT
  models_tool.py ocr-dict SRC OUT
  models_tool.py tfjs MODEL_JSON OUT --opset N --work DIR --doc TEXT
  models_tool.py equivalence JOB.json
  models_tool.py describe FILE.onnx...   (graph inputs and outputs)
"""

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def describe(path: Path) -> dict:
    """Names and shapes of the real graph inputs and of the outputs."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}

    def shapes(values):
        return [
            {
                "name": v.name,
                "shape": [d.dim_param if d.HasField("dim_param") else d.dim_value
                          for d in v.type.tensor_type.shape.dim],
            }
            for v in values
            if v.name not in inits
        ]

    return {"inputs": shapes(model.graph.input), "outputs": shapes(model.graph.output)}


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("centerface")
    p.add_argument("src", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("ocr-dict")
    p.add_argument("src", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("tfjs")
    p.add_argument("src", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--opset", type=int, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--doc", required=True)
    p = sub.add_parser("equivalence")
    p.add_argument("job", type=Path)
    p = sub.add_parser("describe")
    p.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args()

    # tf2onnx and TensorFlow log to stdout; keep stdout for our one JSON document.
    with contextlib.redirect_stdout(sys.stderr):
        if args.command == "centerface":
            import centerface
            result = centerface.rewrite(args.src, args.out)
        elif args.command == "ocr-dict":
            import ocr_dict
            result = ocr_dict.extract(args.src, args.out)
        elif args.command == "tfjs":
            import convert_tfjs
            result = convert_tfjs.convert(args.src, args.out, args.opset, args.work, args.doc)
        elif args.command == "equivalence":
            import equivalence
            result = equivalence.run(args.job)
        else:
            result = {str(f): describe(f) for f in args.files}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
