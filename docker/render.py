"""Read docker/versions.env and render docker/kuberay/*.yaml.tmpl into plain manifests.

    python docker/render.py [--out DIR] [--env FILE]      (docker/render-manifests.sh runs this)
    python docker/render.py --get NAME                     print one resolved value

versions.env holds two kinds of lines (bash `source` reads the file the same way):

    NAME=value              a pinned version: a literal; the environment cannot change it
    NAME=${NAME:-value}     a site setting: the environment variable NAME overrides `value`

A template may use `${NAME}` for any NAME in versions.env and nothing else: an unknown name is
an error, so a typo never renders as an empty string. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DOCKER_DIR = Path(__file__).resolve().parent
REPO_ROOT = DOCKER_DIR.parent
ENV_FILE = DOCKER_DIR / "versions.env"
TEMPLATE_DIR = DOCKER_DIR / "kuberay"
DEFAULT_OUT = REPO_ROOT / "build" / "kuberay"  # build/ is git-ignored

# Values are restricted to characters that mean the same to bash and to YAML plain scalars.
VALUE = r"[A-Za-z0-9._:/@+,%=-]*"
PINNED_LINE = re.compile(rf"^(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>{VALUE})$")
SETTING_LINE = re.compile(
    rf"^(?P<name>[A-Z][A-Z0-9_]*)=\$\{{(?P<ref>[A-Z][A-Z0-9_]*):-(?P<value>{VALUE})\}}$"
)
REFERENCE = re.compile(r"\$\{([^}]*)\}")
NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Settings the API server accepts only from a fixed set (KubeRay's authOptions.mode enum): a typo
# such as `tokens` is refused here rather than by `kubectl apply`.
CHOICES: dict[str, frozenset[str]] = {"RAY_AUTH_MODE": frozenset({"token", "disabled"})}
# Settings that must be whole numbers (Kubernetes integer fields: replicas, deadlines, bytes).
INTEGERS = re.compile(r"^(GPU_WORKERS|VLLM_GPUS|.*_SECONDS|.*_BYTES)$")


class EnvFileError(Exception):
    pass


@dataclass(frozen=True)
class Entry:
    name: str
    default: str
    pinned: bool
    line: int


def parse_env_file(path: Path = ENV_FILE) -> dict[str, Entry]:
    """Every NAME in the file, in order; raises EnvFileError naming the line on anything else."""
    entries: dict[str, Entry] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if raw != line:
            raise EnvFileError(f"{path}:{number}: no leading or trailing spaces: {raw!r}")
        pinned = PINNED_LINE.match(line)
        setting = SETTING_LINE.match(line)
        if pinned:
            entry = Entry(pinned["name"], pinned["value"], True, number)
        elif setting:
            if setting["ref"] != setting["name"]:
                raise EnvFileError(
                    f"{path}:{number}: a setting may only default itself: "
                    f"{setting['name']}=${{{setting['name']}:-...}}"
                )
            entry = Entry(setting["name"], setting["value"], False, number)
        else:
            raise EnvFileError(
                f"{path}:{number}: expected NAME=value or NAME=${{NAME:-value}} "
                f"(value characters: {VALUE}), got {raw!r}"
            )
        if entry.name in entries:
            raise EnvFileError(
                f"{path}:{number}: {entry.name} is already set on line {entries[entry.name].line}"
            )
        if not entry.default:
            raise EnvFileError(f"{path}:{number}: {entry.name} has an empty value")
        entries[entry.name] = entry
    return entries


def resolve(entries: dict[str, Entry], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Pinned versions as written; settings from the environment where set (like bash)."""
    values = {}
    for name, entry in entries.items():
        override = environ.get(name, "")
        if entry.pinned or not override:
            values[name] = entry.default
        elif not re.fullmatch(VALUE, override):
            raise EnvFileError(f"environment {name}={override!r}: characters outside {VALUE}")
        else:
            values[name] = override
        value = values[name]
        if name in CHOICES and value not in CHOICES[name]:
            raise EnvFileError(
                f"{name}={value!r}: must be one of {', '.join(sorted(CHOICES[name]))}"
            )
        if INTEGERS.match(name) and not value.isdigit():
            raise EnvFileError(f"{name}={value!r}: must be a whole number")
    return values


def references(text: str) -> list[str]:
    """The ${...} names a template or Dockerfile uses."""
    return REFERENCE.findall(text)


def render_text(text: str, values: dict[str, str], where: str) -> str:
    unknown = sorted({n for n in references(text) if not NAME.match(n) or n not in values})
    if unknown:
        raise EnvFileError(f"{where}: not defined in {ENV_FILE.name}: {', '.join(unknown)}")
    return REFERENCE.sub(lambda m: values[m.group(1)], text)


def templates(directory: Path = TEMPLATE_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml.tmpl"))


def render_all(values: dict[str, str], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for template in templates():
        target = out / template.name.removesuffix(".tmpl")
        header = (
            f"# Rendered from docker/kuberay/{template.name} and docker/versions.env\n"
            "# by docker/render-manifests.sh: edit those, not this file.\n"
        )
        text = render_text(template.read_text(encoding="utf-8"), values, str(template))
        target.write_text(header + text, encoding="utf-8")
        written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    parser.add_argument("--env", type=Path, default=ENV_FILE, help="the versions file")
    parser.add_argument("--get", metavar="NAME", help="print one resolved value and exit")
    args = parser.parse_args()
    try:
        values = resolve(parse_env_file(args.env))
        if args.get:
            if args.get not in values:
                raise EnvFileError(f"{args.get} is not defined in {args.env}")
            print(values[args.get])
            return 0
        for path in render_all(values, args.out):
            print(path)
    except EnvFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
