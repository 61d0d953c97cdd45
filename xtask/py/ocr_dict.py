"""Extract the PP-OCRv4 recognition alphabet that rapidocr keeps in ONNX metadata.

rapidocr-onnxruntime 1.4.4 ships no keys .txt: the recognizer's alphabet is
the custom metadata entry `character` of ch_PP-OCRv4_rec_infer.onnx, one
symbol per line (6623 lines). rapidocr builds its class list as
["blank"] + lines + [" "], matching the model's 6625 output classes: index 0
is the CTC blank, index i (1..=6623) is line i, index 6624 is a space.

The file written is the metadata text verbatim plus one final newline.
"""

from pathlib import Path

import onnx


def extract(source: Path, out: Path) -> dict:
    model = onnx.load(str(source), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    text = meta["character"]
    lines = text.splitlines()
    classes = model.graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    if classes != len(lines) + 2:
        raise ValueError(f"{len(lines)} symbols do not explain {classes} classes")
    out.write_bytes((text if text.endswith("\n") else text + "\n").encode("utf-8"))
    return {"symbols": len(lines), "classes": classes}
