"""RapidOCR backend: PP-OCR models that ship inside the rapidocr wheel, run on onnxruntime.

`read` finds and reads every line of a poster; `recognize` reads one cropped line with
the recogniser alone and gives a confidence for each glyph, which the text verifier uses
to read a line again. RapidOCR keeps the use_det/use_cls/use_rec flags of a call for
the calls after it, so every call names all three.
"""

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
    angle: float = 0.0
    """Tilt of the detected quad's top edge, degrees (image y points down)."""


@dataclass
class Reading:
    """One line crop read by the recogniser alone."""

    text: str
    confidence: float
    glyphs: list[float]
    """Confidence of each recognised glyph (white space excluded)."""
    places: list[float]
    """x in the crop where the recogniser read each glyph (white space excluded): the
    frame it fired on, which lies inside the glyph but not at its centre."""


COARSER = 0.65
"""The detector's second look at a poster (`read(coarse=True)`) is at this share of its
first: DB detection at 736 px misses glyphs over about 100 px tall there (measured: a
three-glyph title 230 px tall on a 1104x1472 poster, missed at 736 and 960 px, found
at 320 and 480)."""


class RapidOcrBackend:
    version = "rapidocr"

    def __init__(
        self, threads: int = 0, det_limit_side_len: int = 480, det_limit_type: str = "min"
    ) -> None:
        self.threads = threads
        self.det = {"Det.limit_side_len": det_limit_side_len, "Det.limit_type": det_limit_type}
        self.coarse_det = {
            "Det.limit_side_len": round(det_limit_side_len * COARSER),
            "Det.limit_type": "max",
        }
        self.engine = None
        self.coarse_engine = None

    def load(self) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError:
            raise MissingDependencyError(
                "the OCR backend 'rapidocr' needs the packages rapidocr and onnxruntime",
                fix="pip install 'rapidocr>=3.4,<4' onnxruntime",
            ) from None
        params = {"Global.log_level": "warning", "Global.use_cls": False}
        if self.threads:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = self.threads
            params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
        self.engine = RapidOCR(params={**params, **self.det})
        # Its models load on its first coarse read, which only a poster missing a line makes.
        self.coarse_engine = RapidOCR(params={**params, **self.coarse_det})
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        self.version = f"rapidocr-{metadata.version('rapidocr')}"

    def read(self, image: Image.Image, coarse: bool = False) -> list[OcrLine]:
        """Every line of the poster; `coarse`: with the detector at `COARSER` of its scale."""
        if self.engine is None:
            self.load()
        engine = self.coarse_engine if coarse else self.engine
        result = engine(image, use_det=True, use_cls=False, use_rec=True)
        if result.txts is None:
            return []
        lines = []
        for text, score, quad in zip(result.txts, result.scores, result.boxes, strict=True):
            xs, ys = quad[:, 0], quad[:, 1]
            box = (int(xs.min()), int(ys.min()), int(np.ceil(xs.max())), int(np.ceil(ys.max())))
            (x0, y0), (x1, y1) = quad[0], quad[1]
            angle = float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))
            lines.append(OcrLine(str(text), float(score), box, angle))
        return lines

    def recognize(self, crop: Image.Image) -> Reading:
        """Read one line crop without detection: text, confidence, glyph confidences."""
        if self.engine is None:
            self.load()
        result = self.engine(
            np.asarray(crop), use_det=False, use_cls=False, use_rec=True, return_word_box=True
        )
        if not result.txts:
            return Reading("", 0.0, [], [])
        words = result.word_results[0] if result.word_results else None
        if words is None:
            return Reading(str(result.txts[0]), float(result.scores[0]), [], [])
        glyphs = [float(c) for c in words.confs]
        frames = max(1e-6, float(words.line_txt_len or 0.0))
        width = crop.width
        places = [(c + 0.5) / frames * width for cols in words.word_cols or [] for c in cols]
        return Reading(str(result.txts[0]), float(result.scores[0]), glyphs, places)
