"""RapidOCR backend: PP-OCR models that ship inside the rapidocr wheel, run on onnxruntime."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import metadata

import numpy as np
from PIL import Image

from datapipe.errors import MissingDependencyError


@dataclass
class OcrLine:
    text: str
    confidence: float
    box: tuple[int, int, int, int]


class RapidOcrBackend:
    version = "rapidocr"

    def __init__(
        self, threads: int = 0, det_limit_side_len: int = 480, det_limit_type: str = "min"
    ) -> None:
        self.threads = threads
        self.det = {"Det.limit_side_len": det_limit_side_len, "Det.limit_type": det_limit_type}
        self.engine = None

    def load(self) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError:
            raise MissingDependencyError(
                "the OCR backend 'rapidocr' needs the packages rapidocr and onnxruntime",
                fix="pip install 'rapidocr>=3.4,<4' onnxruntime",
            ) from None
        params = {"Global.log_level": "warning", "Global.use_cls": False, **self.det}
        if self.threads:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = self.threads
            params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
        self.engine = RapidOCR(params=params)
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        self.version = f"rapidocr-{metadata.version('rapidocr')}"

    def read(self, image: Image.Image) -> list[OcrLine]:
        if self.engine is None:
            self.load()
        result = self.engine(image)
        if result.txts is None:
            return []
        lines = []
        for text, score, quad in zip(result.txts, result.scores, result.boxes, strict=True):
            xs, ys = quad[:, 0], quad[:, 1]
            box = (int(xs.min()), int(ys.min()), int(np.ceil(xs.max())), int(np.ceil(ys.max())))
            lines.append(OcrLine(text=str(text), confidence=float(score), box=box))
        return lines
