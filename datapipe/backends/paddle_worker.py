"""PaddleOCR worker: runs under the python of the paddle virtualenv, never under datapipe's.

paddlepaddle pins numpy and brings its own OpenCV, which break torch and RapidOCR in one
environment, so datapipe starts this file by path with another interpreter
(`stages.ocr.paddleocr.python`) and talks to it over stdin/stdout. It therefore imports
only the standard library, numpy and paddleocr, and never datapipe.

Protocol (protocol 1): one JSON object per line each way, UTF-8.
- The worker first writes `{"event": "hello", "protocol": 1, "python": ..., "pid": ...}`
  before importing anything heavy, so a client can tell "this python cannot even run the
  worker" from "paddle failed to load".
- `{"op": "init", "id": N, "config": {...}}` imports paddleocr and loads both models;
  the reply is `{"id": N, "ok": true, "versions": {...}}` or
  `{"id": N, "ok": false, "error": "missing_package" | "missing_model" | "init_failed",
  "message": ..., "package": ...}`.
- `{"op": "read", "id": N, "width": W, "height": H, "rgb": BASE64}` (raw 8-bit RGB rows)
  replies `{"id": N, "ok": true, "lines": [{"text", "score", "quad": [[x, y] x 4]}]}`
  or `{"id": N, "ok": false, "error": "read_failed", "message": ...}`; the worker lives on.
- `{"op": "close"}` or the end of stdin ends the worker, so it never outlives its client.

Everything paddle prints (to stdout or stderr, from Python or C++) goes to stderr: the
real stdout is kept for the protocol alone.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

PROTOCOL = 1


def _protocol_channel() -> TextIO:
    """Keep fd 1 for replies and point fd 1 itself at stderr, so that stray prints and
    native log lines from paddle can never corrupt a reply line."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, ensure_ascii=False) + "\n")
    channel.flush()


def _version(*names: str) -> str | None:
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


class Engine:
    """One PaddleOCR pipeline: text detection + recognition, nothing else, from local dirs."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.ocr: Any = None
        self.np: Any = None

    def load(self) -> dict[str, Any]:
        # The model directories are local: never let paddlex probe model hosts at import.
        os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
        for key in ("det_model_dir", "rec_model_dir"):
            if not Path(self.config[key]).is_dir():
                return {
                    "ok": False,
                    "error": "missing_model",
                    "message": f"{key} {self.config[key]} is not a directory",
                }
        try:
            import numpy
            from paddleocr import PaddleOCR
        except ImportError as exc:
            return _missing(exc)
        try:
            import paddle  # noqa: F401  (paddleocr imports it lazily, at the first model)
        except ImportError as exc:
            return _missing(exc, package="paddlepaddle")
        self.np = numpy
        c = self.config
        options: dict[str, Any] = {
            "text_detection_model_name": c["det_model_name"],
            "text_detection_model_dir": c["det_model_dir"],
            "text_recognition_model_name": c["rec_model_name"],
            "text_recognition_model_dir": c["rec_model_dir"],
            "use_doc_orientation_classify": False,
            "use_doc_unwarping": False,
            "use_textline_orientation": False,
            "text_det_limit_side_len": c["det_limit_side_len"],
            "text_det_limit_type": c["det_limit_type"],
            "device": c["device"],
        }
        if c.get("cpu_threads"):
            options["cpu_threads"] = c["cpu_threads"]
        if c.get("enable_mkldnn") is not None:
            options["enable_mkldnn"] = c["enable_mkldnn"]
        try:
            self.ocr = PaddleOCR(**options)
        except Exception as exc:
            return {"ok": False, "error": "init_failed", "message": _one_line(exc)}
        versions = {
            "paddleocr": _version("paddleocr"),
            "paddlepaddle": _version("paddlepaddle", "paddlepaddle-gpu"),
            "paddlex": _version("paddlex"),
        }
        return {"ok": True, "versions": versions}

    def read(self, request: dict[str, Any]) -> dict[str, Any]:
        np = self.np
        width, height = int(request["width"]), int(request["height"])
        pixels = np.frombuffer(base64.b64decode(request["rgb"]), dtype=np.uint8)
        # PaddleOCR takes arrays as OpenCV does: BGR.
        image = np.ascontiguousarray(pixels.reshape(height, width, 3)[:, :, ::-1])
        results = self.ocr.predict(image)
        lines = []
        for result in results:
            for text, score, quad in zip(
                result["rec_texts"], result["rec_scores"], result["rec_polys"], strict=True
            ):
                lines.append(
                    {
                        "text": str(text),
                        "score": float(score),
                        "quad": [[float(x), float(y)] for x, y in np.asarray(quad)],
                    }
                )
        return {"ok": True, "lines": lines}


def _missing(exc: ImportError, package: str | None = None) -> dict[str, Any]:
    name = package or (exc.name or "paddleocr").split(".")[0]
    return {
        "ok": False,
        "error": "missing_package",
        "package": name,
        "message": f"{_one_line(exc)} (python {sys.executable})",
    }


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:500]}"


def main() -> int:
    channel = _protocol_channel()
    _send(
        channel,
        {
            "event": "hello",
            "protocol": PROTOCOL,
            "python": ".".join(map(str, sys.version_info[:3])),
            "pid": os.getpid(),
        },
    )
    engine: Engine | None = None
    for raw in sys.stdin.buffer:
        try:
            request = json.loads(raw)
        except ValueError as exc:
            _send(channel, {"ok": False, "error": "bad_request", "message": _one_line(exc)})
            continue
        op, rid = request.get("op"), request.get("id")
        if op == "close":
            break
        if op == "init":
            engine = Engine(request["config"])
            reply = engine.load()
            if not reply["ok"]:
                engine = None
        elif op == "read" and engine is None:
            reply = {"ok": False, "error": "not_ready", "message": "read before a successful init"}
        elif op == "read":
            try:
                reply = engine.read(request)
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                reply = {"ok": False, "error": "read_failed", "message": _one_line(exc)}
        else:
            reply = {"ok": False, "error": "bad_request", "message": f"unknown op {op!r}"}
        _send(channel, {"id": rid, **reply})
    return 0


if __name__ == "__main__":
    sys.exit(main())
