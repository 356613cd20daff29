#!/usr/bin/env bash
# The PaddleOCR backend's virtualenv, and (for the tests) local PaddleOCR model directories
# made without any model hub:
#
#   scripts/make-paddle-env.sh [ENV_DIR]          # default /tmp/paddle-venv
#   DATAPIPE_PADDLE_PYTHON=ENV_DIR/bin/python pytest tests/backends/test_ocr_paddle.py
#
# 1. ENV_DIR: a virtualenv with the pins in docker/paddle-ocr.txt (~1.4 GB, ~40 s). Never
#    datapipe's own env: paddle pins numpy and brings an OpenCV that break torch there.
# 2. ENV_DIR/models/PP-OCRv6_small_{det,rec}: the PP-OCRv6 small models that ship inside the
#    rapidocr wheel (ONNX), converted to Paddle inference models (inference.json +
#    inference.pdiparams) with x2paddle, plus the inference.yml PaddleX reads. The tests find
#    them next to the python. The converter (x2paddle, onnx) goes into ENV_DIR/convert-tools
#    and is put on PYTHONPATH for the conversion only, so the env itself stays as deployed.
#
# The converted models need `enable_mkldnn: false` in the recipe (x2paddle writes an
# attribute oneDNN cannot run); PaddleOCR's official model directories do not.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_DIR=${1:-/tmp/paddle-venv}
PY=${PYTHON:-python3}
RAPIDOCR_VERSION=3.10.0   # the wheel whose ONNX models are converted

if [ ! -x "$ENV_DIR/bin/python" ]; then
  "$PY" -m venv "$ENV_DIR"
fi
"$ENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check -r docker/paddle-ocr.txt

TOOLS="$ENV_DIR/convert-tools"
if [ ! -d "$TOOLS/x2paddle" ]; then
  # --no-deps: numpy and protobuf come from the paddle env; onnx 1.17 is the last release
  # with the `onnx.version` module x2paddle 1.6 reads.
  "$ENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$TOOLS" x2paddle==1.6.0 onnx==1.17.0 sympy==1.14.0 mpmath==1.3.0 six==1.17.0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$ENV_DIR/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
  --dest "$WORK" "rapidocr==$RAPIDOCR_VERSION"

PYTHONPATH="$TOOLS" "$ENV_DIR/bin/python" - "$WORK" "$ENV_DIR/models" <<'PY'
"""Extract the ONNX models from the rapidocr wheel, convert them, write inference.yml."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import onnx
import yaml

work, out = Path(sys.argv[1]), Path(sys.argv[2])
wheel = next(work.glob("rapidocr-*.whl"))
models = {
    "PP-OCRv6_small_det": "rapidocr/models/PP-OCRv6_det_small.onnx",
    "PP-OCRv6_small_rec": "rapidocr/models/PP-OCRv6_rec_small.onnx",
}
with zipfile.ZipFile(wheel) as archive:
    for member in models.values():
        archive.extract(member, work)

# PaddleX's layout for the PP-OCRv6 small models. The detector's post-processing is
# RapidOCR's (box_thresh 0.5, unclip_ratio 1.6, dilation), so both backends see the same
# boxes from the same weights.
DET = {
    "Global": {"model_name": "PP-OCRv6_small_det"},
    "PreProcess": {
        "transform_ops": [
            {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
            {"DetLabelEncode": None},
            {"DetResizeForTest": {"resize_long": 960}},
            {
                "NormalizeImage": {
                    "mean": [0.485, 0.456, 0.406],
                    "std": [0.229, 0.224, 0.225],
                    "scale": "1./255.",
                    "order": "hwc",
                }
            },
            {"ToCHWImage": None},
            {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
        ]
    },
    "PostProcess": {
        "name": "DBPostProcess",
        "thresh": 0.3,
        "box_thresh": 0.5,
        "max_candidates": 1000,
        "unclip_ratio": 1.6,
        "use_dilation": True,
        "score_mode": "fast",
    },
}
REC = {
    "Global": {"model_name": "PP-OCRv6_small_rec"},
    "PreProcess": {
        "transform_ops": [
            {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
            {"MultiLabelEncode": {"gtc_encode": "NRTRLabelEncode"}},
            {"RecResizeImg": {"image_shape": [3, 48, 320]}},
            {"KeepKeys": {"keep_keys": ["image", "label_ctc", "label_gtc", "length", "valid_ratio"]}},
        ]
    },
    "PostProcess": {"name": "CTCLabelDecode"},
}

for name, member in models.items():
    onnx_path = work / member
    target = out / name
    converted = work / f"{name}-x2paddle"
    done = subprocess.run(
        [sys.executable, "-m", "x2paddle.convert", "--framework=onnx", f"--model={onnx_path}",
         f"--save_dir={converted}", "--disable_feedback=True"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode or not (converted / "inference_model" / "model.json").exists():
        sys.exit(f"x2paddle could not convert {onnx_path.name}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(converted / "inference_model" / "model.json", target / "inference.json")
    shutil.copy(converted / "inference_model" / "model.pdiparams", target / "inference.pdiparams")
    meta = DET if name.endswith("_det") else REC
    if meta is REC:  # the character list travels in the ONNX model's metadata
        props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
        meta["PostProcess"]["character_dict"] = props["character"].split("\n")
    (target / "inference.yml").write_text(
        yaml.safe_dump(meta, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    print(f"{target}: {sorted(p.name for p in target.iterdir())}")
PY
echo "export DATAPIPE_PADDLE_PYTHON=$ENV_DIR/bin/python"
