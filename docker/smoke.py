"""Smoke test of a datapipe image: pinned versions, torch flavour, imports, fonts, GPU.

Runs at the end of every image build (docker/Dockerfile) and on a running pod:

    kubectl exec POD -- python /opt/datapipe/smoke.py --torch cu128 --require-gpu

Checks that every package pinned in /etc/datapipe/constraints.txt (written from
docker/versions.env at build time) is installed at its pinned version, that torch is the
expected build (`cpu`, or `cuNNN` for CUDA N.NN), that datapipe and every backend library
import, that the CJK fonts and the `hf` CLI (the weights fill Job's) are there and, with
--require-gpu, that CUDA works. Prints one line per check and exits with status 1 if any
fails. Standard library only, so it can report a missing package instead of crashing on it.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

CONSTRAINTS = Path("/etc/datapipe/constraints.txt")
MODULES = [
    "datapipe",
    "datapipe.cli",
    "ray",
    "ray.data",
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "accelerate",
    "open_clip",
    "sam2",
    "rapidocr",
    "onnxruntime",
    "webdataset",
    "pyarrow",
    "openai",
    "google.genai",
    "tenacity",
]


def pinned(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip()] = version.strip()
    return pins


def installed_version(name: str) -> str | None:
    for candidate in (name, re.sub(r"[-_.]+", "-", name).lower()):
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", required=True, help="expected torch build: cpu or cuNNN")
    parser.add_argument("--require-gpu", action="store_true", help="also run a CUDA kernel")
    parser.add_argument("--constraints", type=Path, default=CONSTRAINTS)
    args = parser.parse_args()

    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            failures.append(what)

    check(True, f"python {sys.version.split()[0]}")
    for name, want in pinned(args.constraints).items():
        got = installed_version(name)
        check(got is not None and got.split("+")[0] == want, f"{name}=={want} (installed {got})")

    for module in MODULES:
        try:
            importlib.import_module(module)
        except Exception as exc:  # any import failure is a finding, not a crash
            check(False, f"import {module}: {type(exc).__name__}: {exc}")
        else:
            check(True, f"import {module}")

    try:
        import torch

        cuda = torch.version.cuda
        if args.torch == "cpu":
            check(cuda is None, f"torch {torch.__version__} is a CPU build (CUDA {cuda})")
        else:
            want = re.fullmatch(r"cu(\d+)(\d)", args.torch)
            expected = f"{want.group(1)}.{want.group(2)}" if want else args.torch
            check(cuda == expected, f"torch {torch.__version__} built for CUDA {expected} ({cuda})")
        if args.require_gpu:
            ok = torch.cuda.is_available() and torch.cuda.device_count() > 0
            check(ok, f"CUDA available ({torch.cuda.device_count()} device(s))")
            if ok:
                x = torch.ones(64, 64, device="cuda")
                check(float((x @ x).sum()) == 64.0**3, f"matmul on {torch.cuda.get_device_name(0)}")
    except Exception as exc:
        check(False, f"torch: {type(exc).__name__}: {exc}")

    try:
        from datapipe.fonts import font_path

        for weight in ("regular", "bold"):
            check(font_path(weight).is_file(), f"datapipe {weight} CJK font {font_path(weight)}")
    except Exception as exc:
        check(False, f"datapipe fonts: {type(exc).__name__}: {exc}")
    system = sorted(Path("/usr/share/fonts").glob("**/NotoSansCJK*"))
    check(bool(system), f"system Noto Sans CJK fonts ({len(system)} files)")
    # The weights fill Job (docker/kuberay/weights.yaml.tmpl) runs `hf download` in this image.
    hf = shutil.which("hf")
    check(hf is not None, f"huggingface_hub's `hf` CLI on the PATH ({hf})")

    print(f"{len(failures)} failed" if failures else "smoke test passed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
