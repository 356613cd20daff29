"""What a `datapipe run` says while it runs: its own log file in OUT, and Ray kept quiet.

datapipe's notes (pools fitted to the cluster, blocks repaired ...) go to the console and
to OUT/datapipe.log. Under Ray, everything Ray itself prints (Ray Data's progress bars and
plan lines, the core worker's C++ error lines, which write straight to the process's file
descriptors) goes to OUT/ray.log instead, so datapipe's progress line stays readable;
the file is there when something goes wrong.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from datapipe.runner.output import LOG_FILE, RAY_LOG_FILE

LOGGER = "datapipe"


@contextmanager
def run_log(out: Path, console: Console) -> Iterator[Path]:
    """datapipe's INFO messages to the console and to OUT/datapipe.log, for one run."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOG_FILE
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_console = RichHandler(console=console, show_time=False, show_path=False, markup=False)
    logger = logging.getLogger(LOGGER)
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(to_file)
    logger.addHandler(to_console)
    try:
        yield path
    finally:
        logger.removeHandler(to_file)
        logger.removeHandler(to_console)
        logger.setLevel(previous)
        to_file.close()


@contextmanager
def ray_output_to(out: Path) -> Iterator[Path]:
    """Send whatever this process prints on file descriptors 1 and 2 to OUT/ray.log, while
    Python's sys.stdout and sys.stderr (and so datapipe's console) keep the terminal."""
    from ray.data import DataContext

    context = DataContext.get_current()
    bars = context.enable_progress_bars
    context.enable_progress_bars = False
    path = out / RAY_LOG_FILE
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    streams = (sys.stdout, sys.stderr)
    sys.stdout = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8")
    sys.stderr = os.fdopen(os.dup(saved[2]), "w", buffering=1, encoding="utf-8")
    with path.open("ab") as log:
        for fd in saved:
            os.dup2(log.fileno(), fd)
    try:
        yield path
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        sys.stdout.close()
        sys.stderr.close()
        sys.stdout, sys.stderr = streams
        context.enable_progress_bars = bars
