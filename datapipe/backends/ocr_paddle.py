"""PaddleOCR backend: PaddleOCR 3.x from local model directories, in a worker process.

paddlepaddle cannot share an environment with torch, OpenCV and numpy as datapipe installs
them, so PaddleOCR lives in its own virtualenv (`stages.ocr.paddleocr.python`) and runs
there as `datapipe/backends/paddle_worker.py`, started once per stage worker in `setup()`
and spoken to one JSON line at a time (the protocol is in that file's docstring).

What it returns is what the RapidOCR backend returns (`OcrLine`: text, confidence and the
axis-aligned box of the line's quadrilateral, rounded the same way), so OcrStage scores
both backends with the same code.

A worker can die (a segfault in native code, the OOM killer) or hang. Every request has a
deadline; a lost worker is restarted once and the image retried. A worker that is lost
again before it has read a single image is not restarted again: that candidate and every
later one is recorded as failed with the reason, quickly, and the run goes on (the filter
rejects candidates without OCR scores). A worker that has served images since its last
restart earns a new restart, so a rare crash on a multi-day run never turns OCR off.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import logging
import os
import queue
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datapipe.backends.ocr_rapidocr import OcrLine
from datapipe.errors import DatapipeError, MissingDependencyError

if TYPE_CHECKING:
    from PIL import Image

    from datapipe.recipe import PaddleOcrConfig

log = logging.getLogger(__name__)

WORKER = Path(__file__).with_name("paddle_worker.py")
PADDLE_PINS = "paddlepaddle==3.3.1 paddleocr==3.7.0"
PADDLE_ENV = "python -m venv /opt/paddle-ocr && /opt/paddle-ocr/bin/pip install " + PADDLE_PINS
FIELD = "stages.ocr.paddleocr"
HELLO_TIMEOUT_S = 30.0
"""The worker says hello before importing paddle: only a very slow interpreter start
(a cold network filesystem) takes this long."""

# The worker's interpreter is another virtualenv's: nothing of this one may leak into it.
_PRIVATE_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__")


def worker_env() -> dict[str, str]:
    """This environment minus what would point the paddle interpreter at datapipe's
    packages; model directories are local, so paddlex need not probe model hosts."""
    env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
    env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    env.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
    return env


class OcrImageError(DatapipeError):
    """OCR could not read one image: that candidate is recorded as failed, the run goes on."""


class _WorkerLostError(Exception):
    """The worker process died, hung past its deadline, or broke the protocol."""


class _Worker:
    """One worker process and the threads that drain its pipes.

    Requests are written from a thread of their own: a hung worker stops reading stdin,
    and a write of a large image into a full pipe would otherwise block past any deadline.
    """

    def __init__(self, python: str, stderr_lines: int = 40) -> None:
        self.proc = subprocess.Popen(
            [python, "-u", str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=worker_env(),
            start_new_session=True,  # a Ctrl-C reaches the run; the run closes the worker
        )
        self.replies: queue.Queue[bytes | None] = queue.Queue()
        self.stderr: collections.deque[str] = collections.deque(maxlen=stderr_lines)
        self._finalizer = weakref.finalize(self, _kill, self.proc)
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump_stdout(self) -> None:
        for line in self.proc.stdout:
            self.replies.put(line)
        self.replies.put(None)

    def _pump_stderr(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                self.stderr.append(line)
                log.debug("paddleocr worker %d: %s", self.proc.pid, line)

    def _write(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass  # the worker is gone: the stdout pump reports it

    def receive(self, timeout: float, want: int | None = None) -> dict[str, Any]:
        """The next message (with id `want`, when given), or _WorkerLostError at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise _WorkerLostError(f"no reply within {timeout:g} s")
            try:
                line = self.replies.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise _WorkerLostError(
                    f"the worker exited with code {self.exit_code()}{self.tail()}"
                )
            try:
                message = json.loads(line)
            except ValueError:
                self.kill()
                raise _WorkerLostError(f"unreadable reply {line[:80]!r}") from None
            if not isinstance(message, dict):
                self.kill()
                raise _WorkerLostError(f"unreadable reply {line[:80]!r}")
            if want is None or message.get("id") == want:
                return message

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8")
        threading.Thread(target=self._write, args=(data,), daemon=True).start()
        return self.receive(timeout, want=message["id"])

    def exit_code(self) -> int | None:
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait()

    def tail(self, lines: int = 3) -> str:
        """The last lines the worker wrote to stderr, on one line, for error messages."""
        time.sleep(0.05)  # let the stderr pump catch the last words of a dying worker
        last = [line for line in list(self.stderr)[-lines:] if line.strip()]
        if not last:
            return ""
        text = " | ".join(" ".join(line.split()) for line in last)
        return f" (stderr: {text[-400:]})"

    def close(self, grace: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it does not within `grace` seconds."""
        if self.proc.poll() is None:
            self._write(b'{"op": "close"}\n')
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self._finalizer.detach()

    def kill(self) -> None:
        _kill(self.proc)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def quad_box(quad: Any) -> tuple[int, int, int, int]:
    """The line's box as the RapidOCR backend rounds it: int() of the mins, ceil of the maxes."""
    points = np.asarray(quad, dtype=np.float64)
    xs, ys = points[:, 0], points[:, 1]
    return (int(xs.min()), int(ys.min()), int(np.ceil(xs.max())), int(np.ceil(ys.max())))


class PaddleOcrBackend:
    version = "paddleocr"

    def __init__(
        self,
        config: PaddleOcrConfig,
        threads: int = 0,
        det_limit_side_len: int = 480,
        det_limit_type: str = "min",
    ) -> None:
        self.config = config
        self.init = {
            "det_model_dir": str(Path(config.det_model_dir).expanduser()),
            "det_model_name": config.det_model_name,
            "rec_model_dir": str(Path(config.rec_model_dir).expanduser()),
            "rec_model_name": config.rec_model_name,
            "device": config.device,
            "enable_mkldnn": config.enable_mkldnn,
            "cpu_threads": threads,
            "det_limit_side_len": det_limit_side_len,
            "det_limit_type": det_limit_type,
        }
        self.worker: _Worker | None = None
        self.versions: dict[str, str | None] = {}
        self._ids = 0
        self._restarts_unserved = 0
        self._last_loss = ""
        self._gave_up: str | None = None

    def load(self) -> None:
        """Start the worker and load both models; raise a one-line error if it cannot."""
        if self.worker is None:
            self.worker = self._start()

    def read(self, image: Image.Image) -> list[OcrLine]:
        """Raises OcrImageError when this image cannot be read (the run goes on)."""
        if self._gave_up:
            raise OcrImageError(self._gave_up, where=FIELD)
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        request = {
            "op": "read",
            "width": image.width,
            "height": image.height,
            "rgb": base64.b64encode(rgb.tobytes()).decode("ascii"),
        }
        lost: list[str] = []
        for _ in range(2):
            if self.worker is None:
                self._restart()
            self._ids += 1
            try:
                reply = self.worker.request({**request, "id": self._ids}, self.config.timeout_s)
            except _WorkerLostError as exc:
                lost.append(str(exc))
                self._last_loss = str(exc)
                log.warning("paddleocr worker lost while reading an image: %s", exc)
                self._drop_worker()
                continue
            if not reply.get("ok"):
                raise OcrImageError(
                    f"PaddleOCR could not read the image: {reply.get('message', reply)}",
                    where=FIELD,
                )
            try:
                lines = [
                    OcrLine(str(line["text"]), float(line["score"]), quad_box(line["quad"]))
                    for line in reply["lines"]
                ]
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise OcrImageError(
                    f"malformed reply from the paddleocr worker ({type(exc).__name__}: {exc})",
                    where=FIELD,
                ) from None
            self._restarts_unserved = 0
            return lines
        raise OcrImageError(
            f"the paddleocr worker was lost twice on this image: {'; then '.join(lost)}",
            where=FIELD,
        )

    def close(self) -> None:
        self._drop_worker()

    def _restart(self) -> None:
        """A worker that served an image since its last restart earns a new one; a worker
        lost again before that would only be lost again, at the price of a timeout each."""
        if self._restarts_unserved >= 1:
            self._give_up(
                f"the paddleocr worker was lost again right after a restart: {self._last_loss}"
            )
        self._restarts_unserved += 1
        try:
            self.worker = self._start()
        except DatapipeError as exc:
            self._give_up(f"the paddleocr worker could not be restarted: {exc}")

    def _give_up(self, why: str) -> None:
        self._gave_up = f"{why}; OCR is off for the rest of this worker's run"
        log.error("%s", self._gave_up)
        raise OcrImageError(self._gave_up, where=FIELD)

    def _drop_worker(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def _start(self) -> _Worker:
        python = self.config.python
        fix_env = f"create it: {PADDLE_ENV}, or set {FIELD}.python"
        try:
            worker = _Worker(python)
        except FileNotFoundError:
            raise MissingDependencyError(
                f"the paddle python {python} does not exist", where=f"{FIELD}.python", fix=fix_env
            ) from None
        except PermissionError:
            raise MissingDependencyError(
                f"the paddle python {python} is not executable",
                where=f"{FIELD}.python",
                fix=fix_env,
            ) from None
        try:
            hello = worker.receive(HELLO_TIMEOUT_S)
            if hello.get("event") != "hello" or hello.get("protocol") != 1:
                raise _WorkerLostError(f"unexpected first message {str(hello)[:120]}")
        except _WorkerLostError as exc:
            worker.kill()
            raise DatapipeError(
                f"{python} could not run the paddleocr worker {WORKER.name}: {exc}",
                where=f"{FIELD}.python",
                fix=f"check that it is a python 3.10+ interpreter ({PADDLE_ENV})",
            ) from None
        self._ids += 1
        try:
            reply = worker.request(
                {"op": "init", "id": self._ids, "config": self.init},
                self.config.startup_timeout_s,
            )
        except _WorkerLostError as exc:
            worker.kill()
            raise DatapipeError(
                f"the paddleocr worker failed while loading its models: {exc}",
                where=FIELD,
                fix=f"raise {FIELD}.startup_timeout_s if it was only slow; "
                f"`datapipe doctor RECIPE` checks the environment",
            ) from None
        if not reply.get("ok"):
            worker.close()
            raise self._init_error(reply)
        self.versions = reply.get("versions", {})
        self.version = f"paddleocr-{self.versions.get('paddleocr')}"
        return worker

    def _init_error(self, reply: dict[str, Any]) -> DatapipeError:
        python, message = self.config.python, reply.get("message", "")
        if reply.get("error") == "missing_package":
            package = reply.get("package", "paddleocr")
            return MissingDependencyError(
                f"the OCR backend 'paddleocr' needs the package {package} in {python} ({message})",
                where=f"{FIELD}.python",
                fix=f"{python} -m pip install {PADDLE_PINS}",
            )
        if reply.get("error") == "missing_model":
            return DatapipeError(
                message,
                where=FIELD,
                fix="put the PaddleOCR model directories there (they are never downloaded)",
            )
        return DatapipeError(
            f"PaddleOCR could not load its models: {message}",
            where=FIELD,
            fix="check that det_model_name and rec_model_name are the models in the "
            "directories (their inference.yml), and the device",
        )
