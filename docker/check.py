"""Offline checks of the deployment files in docker/ (standard library and PyYAML only,
plus datapipe/quantities.py from the source tree, itself standard library only).

    python docker/check.py

- docker/versions.env parses the same way for bash and for docker/render.py; versions are
  literals, only site settings may come from the environment;
- every ${NAME} in the Dockerfile and the templates is defined in versions.env, each
  Dockerfile stage declares the ARGs it uses, and no version is written anywhere else;
- every file the Dockerfile copies from the build context passes Dockerfile.dockerignore;
- the pins agree with pyproject.toml (ray, torch, the model libraries, Python, the image tag)
  and with each other (CUDA base vs torch wheel index, torch vs torchvision);
- the rendered manifests parse as YAML and have the expected kinds; the RayCluster has a
  CPU-only head with num-cpus 0 and a fixed-size GPU worker group requesting nvidia.com/gpu,
  object stores that fit their /dev/shm volumes, RAY_AUTH_MODE and HF_HUB_OFFLINE on every
  Ray container, /data (ReadWriteMany claim) on every pod and /models read-only; the RayJob
  embeds the same cluster spec, keeps it after the job ends and runs `datapipe run ... --ray`;
- field names against the KubeRay v1 API (RayCluster, RayJob), so a typo is not silently
  dropped by the API server's pruning.

Prints one line per check and exits with status 1 if any fails.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render  # docker/render.py, next to this file

sys.path.insert(0, str(render.REPO_ROOT))  # the source tree's, installed or not
from datapipe.quantities import parse_quantity  # standard library only, shared with doctor

DOCKER = render.DOCKER_DIR
ROOT = render.REPO_ROOT
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERIGNORE = DOCKER / "Dockerfile.dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

# Field names of the KubeRay ray.io/v1 API, from the schema written for the pinned KubeRay
# (docker/kuberay-crd.schema.json; tests/test_manifests.py validates the manifests against it).
CRD_SCHEMA = json.loads((DOCKER / "kuberay-crd.schema.json").read_text(encoding="utf-8"))["$defs"]


def crd_fields(name: str) -> set[str]:
    return set(CRD_SCHEMA[name]["properties"])


RAYCLUSTER_SPEC = crd_fields("RayClusterSpec")
HEAD_GROUP = crd_fields("HeadGroupSpec")
WORKER_GROUP = crd_fields("WorkerGroupSpec")
AUTH_OPTIONS = crd_fields("AuthOptions")
AUTH_MODES = render.CHOICES["RAY_AUTH_MODE"]
RAYJOB_SPEC = crd_fields("RayJobSpec")
SUBMISSION_MODES = set(CRD_SCHEMA["RayJobSpec"]["properties"]["submissionMode"]["enum"])

# Names whose value is a version (or a versioned reference): they must be pinned literals.
VERSION_NAME = re.compile(r"_(VERSION|IMAGE|TAG|CUDA|INDEX_URL)$")
# x.y.z outside comments in the Dockerfile or a template means a version written elsewhere.
HARDCODED_VERSION = re.compile(r"(?<![\w.$])\d+\.\d+\.\d+(?![\w.])")
RUNTIME_UID = 1000


class Report:
    def __init__(self) -> None:
        self.failures = 0

    def check(self, ok: bool, what: str) -> bool:
        print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
        self.failures += not ok
        return ok


# ------------------------------------------------------------------------------- versions


def version_tuple(text: str) -> tuple[int, ...]:
    release = re.match(r"^\s*v?(\d+(?:\.\d+)*)", text)
    if not release:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(part) for part in release.group(1).split("."))


def satisfies(version: str, specifier: str) -> bool:
    """`version` against a PEP 440 specifier set of release numbers (>=, <=, ==, ~= ...)."""
    have = version_tuple(version)
    for clause in filter(None, (c.strip() for c in specifier.split(","))):
        op, _, wanted = re.match(r"^(~=|==|!=|<=|>=|<|>)\s*(\S+)$", clause).group(1, 0, 2)
        want = version_tuple(wanted)
        width = max(len(have), len(want))
        a = have + (0,) * (width - len(have))
        b = want + (0,) * (width - len(want))
        ok = {
            ">=": a >= b,
            "<=": a <= b,
            ">": a > b,
            "<": a < b,
            "==": a == b,
            "!=": a != b,
            "~=": a >= b and a[: len(want) - 1] == b[: len(want) - 1],
        }[op]
        if not ok:
            return False
    return True


def load_pyproject() -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def requirements(pyproject: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(where, normalized name, specifier) for every dependency and extra in pyproject."""
    project = pyproject["project"]
    found = [("dependencies", r) for r in project.get("dependencies", [])]
    for extra, reqs in project.get("optional-dependencies", {}).items():
        found += [(f"extra {extra}", r) for r in reqs]
    out = []
    for where, req in found:
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)", req)
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        out.append((where, name, match.group(3).strip()))
    return out


def check_versions(report: Report, entries: dict[str, render.Entry], values: dict[str, str]):
    overridable = sorted(n for n, e in entries.items() if VERSION_NAME.search(n) and not e.pinned)
    report.check(
        not overridable,
        "versions.env: every version is a pinned literal, none overridable from the environment "
        f"{overridable or ''}",
    )

    pyproject = load_pyproject()
    pins = {
        "ray": "RAY_VERSION",
        "torch": "TORCH_VERSION",
        "diffusers": "DIFFUSERS_VERSION",
        "transformers": "TRANSFORMERS_VERSION",
        "accelerate": "ACCELERATE_VERSION",
        "open-clip-torch": "OPEN_CLIP_VERSION",
    }
    for where, name, specifier in requirements(pyproject):
        if name in pins:
            pin = values[pins[name]]
            report.check(
                satisfies(pin, specifier),
                f"pyproject {where}: {name}{specifier} admits {pins[name]}={pin}",
            )
    ray_lower = [
        version_tuple(m.group(1))
        for _, name, spec in requirements(pyproject)
        if name == "ray"
        for m in re.finditer(r">=\s*([\d.]+)", spec)
    ]
    report.check(
        bool(ray_lower) and all(version_tuple(values["RAY_VERSION"]) >= low for low in ray_lower),
        f"RAY_VERSION={values['RAY_VERSION']} is at or above pyproject's ray[data]>= lower bound "
        f"({', '.join('.'.join(map(str, low)) for low in ray_lower) or 'none found'})",
    )
    python_spec = pyproject["project"].get("requires-python", "")
    report.check(
        satisfies(values["PYTHON_VERSION"], python_spec),
        f"PYTHON_VERSION={values['PYTHON_VERSION']} meets requires-python {python_spec}",
    )
    project_version = pyproject["project"]["version"]
    tag = values["DATAPIPE_IMAGE_TAG"]
    report.check(
        tag == project_version or tag.startswith(project_version + "-"),
        f"DATAPIPE_IMAGE_TAG={tag} starts with pyproject's version {project_version}",
    )

    cuda = re.search(r":(\d+)\.(\d+)(?:\.\d+)?-", values["CUDA_BASE_IMAGE"])
    torch_cuda = re.fullmatch(r"cu(\d+)(\d)", values["TORCH_CUDA"])
    report.check(
        bool(cuda and torch_cuda and cuda.groups() == torch_cuda.groups()),
        f"CUDA_BASE_IMAGE {values['CUDA_BASE_IMAGE']} matches TORCH_CUDA={values['TORCH_CUDA']}",
    )
    torch_v, vision_v = (
        version_tuple(values["TORCH_VERSION"]),
        version_tuple(values["TORCHVISION_VERSION"]),
    )
    report.check(
        torch_v[0] == 2 and vision_v[:2] == (0, torch_v[1] + 15),
        f"TORCHVISION_VERSION={values['TORCHVISION_VERSION']} pairs with "
        f"TORCH_VERSION={values['TORCH_VERSION']} (torch 2.N <-> torchvision 0.N+15)",
    )
    report.check(
        values["RAY_AUTH_MODE"] in AUTH_MODES,
        f"RAY_AUTH_MODE={values['RAY_AUTH_MODE']} is one of {sorted(AUTH_MODES)}",
    )
    report.check(
        values["OUT_DIR"].startswith("/data/"),
        f"OUT_DIR={values['OUT_DIR']} is on the shared volume (/data)",
    )


# ------------------------------------------------------------------------------ Dockerfile


def instructions(path: Path) -> list[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) with continuations joined and comments dropped."""
    out: list[tuple[int, str, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, rest = text.partition(" ")
        out.append((start, keyword.upper(), rest.strip()))
    return out


def check_dockerfile(report: Report, entries: dict[str, render.Entry]) -> None:
    steps = instructions(DOCKERFILE)
    global_args: set[str] = set()
    stage_args: set[str] | None = None  # None: before the first FROM
    env_names: set[str] = set()
    declared: set[str] = set()
    problems: list[str] = []
    stages: list[str] = []
    for line, keyword, rest in steps:
        if keyword == "ARG":
            name = rest.split("=", 1)[0].strip()
            declared.add(name)
            if "=" in rest:
                problems.append(f"line {line}: ARG {name} has a default (versions.env only)")
            (global_args if stage_args is None else stage_args).add(name)
            continue
        if keyword == "ENV":
            env_names.update(re.findall(r"(?:^|\s)([A-Z_][A-Z0-9_]*)=", rest))
        used = {n for n in render.references(rest) if render.NAME.match(n)}
        if keyword == "FROM":
            missing = used - global_args
            stage_args = set()
            stages.append(rest.split()[-1] if " AS " in rest.upper() else rest)
        else:
            missing = used - (stage_args or set()) - env_names
        for name in sorted(missing):
            problems.append(f"line {line}: {keyword} uses ${{{name}}} without ARG {name} in scope")
    report.check(not problems, "Dockerfile: every ${NAME} is a declared ARG in its stage")
    for problem in problems:
        print(f"       {problem}")

    undefined = sorted(declared - set(entries))
    report.check(
        not undefined, f"Dockerfile: every ARG is defined in versions.env {undefined or ''}"
    )
    settings = sorted(n for n in declared & set(entries) if not entries[n].pinned)
    report.check(
        not settings, f"Dockerfile: build args are pinned versions, not settings {settings or ''}"
    )
    report.check(
        {"head", "gpu-worker"} <= set(stages), f"Dockerfile: targets head and gpu-worker ({stages})"
    )
    for keyword_line in (s for s in steps if s[1] == "USER"):
        report.check(
            keyword_line[2] == f"{RUNTIME_UID}:{RUNTIME_UID}",
            f"Dockerfile line {keyword_line[0]}: USER is numeric uid {RUNTIME_UID} "
            "(Kubernetes runAsNonRoot can verify it)",
        )

    # Everything taken from the build context must pass Dockerfile.dockerignore.
    sources = []
    for line, keyword, rest in steps:
        if keyword == "COPY" and "--from=" not in rest:
            parts = [p for p in rest.split() if not p.startswith("--")]
            sources += [(line, s) for s in parts[:-1]]
        for mount in re.findall(r"--mount=type=bind,([^\s]+)", rest):
            fields = dict(f.split("=", 1) for f in mount.split(",") if "=" in f)
            if "from" not in fields and "source" in fields:
                sources.append((line, fields["source"]))
    allowed = allowlist(DOCKERIGNORE)
    blocked = [f"line {line}: {src}" for line, src in sources if not admitted(src, allowed)]
    report.check(
        not blocked and bool(sources),
        f"Dockerfile.dockerignore admits all {len(sources)} context paths the Dockerfile uses",
    )
    for item in blocked:
        print(f"       not admitted: {item}")
    missing_paths = [src for _, src in sources if not (ROOT / src).exists()]
    report.check(not missing_paths, f"Dockerfile: context paths exist {missing_paths or ''}")


def allowlist(path: Path) -> list[str]:
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines or lines[0] != "*":
        return []
    return [ln[1:].rstrip("/") for ln in lines[1:] if ln.startswith("!")]


def admitted(source: str, allowed: list[str]) -> bool:
    source = source.rstrip("/")
    return any(source == a or source.startswith(a + "/") for a in allowed)


def check_no_hardcoded_versions(report: Report) -> None:
    files = [DOCKERFILE, *render.templates()]
    found = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.lstrip().startswith("#"):
                continue
            for match in HARDCODED_VERSION.finditer(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)}")
    report.check(
        not found, "no version literal in the Dockerfile or the templates (versions.env only)"
    )
    for item in found:
        print(f"       {item}")


# ------------------------------------------------------------------------------- manifests


def unknown_keys(mapping: dict[str, Any], allowed: set[str]) -> list[str]:
    return sorted(set(mapping) - allowed)


def container_env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def mounts(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[dict, dict]]:
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    return {
        m["mountPath"]: (m, volumes.get(m["name"], {})) for m in container.get("volumeMounts", [])
    }


def check_pod(
    report: Report, label: str, pod: dict[str, Any], values: dict[str, str], image: str
) -> dict[str, Any]:
    """Checks every Ray pod template shares; returns its Ray container."""
    containers = pod.get("containers", [])
    report.check(bool(containers), f"{label}: has a container")
    ray = containers[0] if containers else {}
    report.check(ray.get("image") == image, f"{label}: image {ray.get('image')}")
    security = pod.get("securityContext", {})
    report.check(
        security.get("runAsNonRoot") is True and security.get("runAsUser") == RUNTIME_UID,
        f"{label}: runs as non-root uid {RUNTIME_UID} (the image's user)",
    )
    env = container_env(ray)
    report.check(
        env.get("RAY_AUTH_MODE") == values["RAY_AUTH_MODE"],
        f"{label}: RAY_AUTH_MODE={env.get('RAY_AUTH_MODE')}",
    )
    report.check(env.get("HF_HUB_OFFLINE") == "1", f"{label}: HF_HUB_OFFLINE=1")
    mounted = mounts(pod, ray)
    data = mounted.get("/data")
    report.check(
        bool(data)
        and not data[0].get("readOnly")
        and data[1].get("persistentVolumeClaim", {}).get("claimName") == values["OUTPUT_PVC"],
        f"{label}: /data is the shared claim {values['OUTPUT_PVC']}, read-write",
    )
    models = mounted.get("/models")
    report.check(
        bool(models)
        and models[0].get("readOnly") is True
        and models[1].get("persistentVolumeClaim", {}).get("claimName") == values["MODELS_PVC"],
        f"{label}: /models is the claim {values['MODELS_PVC']}, read-only",
    )
    shm = mounted.get("/dev/shm")
    report.check(
        bool(shm) and shm[1].get("emptyDir", {}).get("medium") == "Memory",
        f"{label}: /dev/shm is a memory-backed emptyDir",
    )
    return ray


def check_raycluster_spec(report: Report, label: str, spec: dict[str, Any], values: dict[str, str]):
    registry, tag = values["IMAGE_REGISTRY"], values["DATAPIPE_IMAGE_TAG"]
    report.check(
        not unknown_keys(spec, RAYCLUSTER_SPEC),
        f"{label}: spec fields are KubeRay's {unknown_keys(spec, RAYCLUSTER_SPEC) or ''}",
    )
    report.check(
        spec.get("rayVersion") == values["RAY_VERSION"],
        f"{label}: rayVersion {spec.get('rayVersion')}",
    )
    auth = spec.get("authOptions", {})
    report.check(
        not unknown_keys(auth, AUTH_OPTIONS) and auth.get("mode") == values["RAY_AUTH_MODE"],
        f"{label}: authOptions.mode={auth.get('mode')}",
    )

    head = spec.get("headGroupSpec", {})
    report.check(
        not unknown_keys(head, HEAD_GROUP),
        f"{label}: headGroupSpec fields are KubeRay's {unknown_keys(head, HEAD_GROUP) or ''}",
    )
    params = head.get("rayStartParams", {})
    report.check(
        all(isinstance(v, str) for v in params.values()),
        f"{label}: head rayStartParams are strings",
    )
    report.check(params.get("num-cpus") == "0", f"{label}: head has num-cpus 0 (no work scheduled)")
    pod = head.get("template", {}).get("spec", {})
    ray = check_pod(report, f"{label} head", pod, values, f"{registry}/datapipe-head:{tag}")
    limits = ray.get("resources", {}).get("limits", {})
    report.check("nvidia.com/gpu" not in limits, f"{label}: head requests no GPU")
    report.check(
        any(p.get("containerPort") == 8265 for p in ray.get("ports", [])),
        f"{label}: head exposes the dashboard (8265)",
    )
    fits(report, f"{label} head", params, pod, limits)

    groups = spec.get("workerGroupSpecs", [])
    gpu_groups = [
        g
        for g in groups
        if "nvidia.com/gpu"
        in g.get("template", {})
        .get("spec", {})
        .get("containers", [{}])[0]
        .get("resources", {})
        .get("limits", {})
    ]
    report.check(bool(gpu_groups), f"{label}: a worker group requests nvidia.com/gpu")
    for group in groups:
        name = f"{label} worker group {group.get('groupName')}"
        report.check(
            not unknown_keys(group, WORKER_GROUP),
            f"{name}: fields are KubeRay's {unknown_keys(group, WORKER_GROUP) or ''}",
        )
        params = group.get("rayStartParams", {})
        report.check(
            all(isinstance(v, str) for v in params.values()), f"{name}: rayStartParams are strings"
        )
        sizes = {group.get(k) for k in ("replicas", "minReplicas", "maxReplicas")}
        report.check(
            sizes == {int(values["GPU_WORKERS"])},
            f"{name}: fixed size replicas=min=max={values['GPU_WORKERS']}",
        )
        pod = group.get("template", {}).get("spec", {})
        ray = check_pod(report, name, pod, values, f"{registry}/datapipe-gpu-worker:{tag}")
        resources = ray.get("resources", {})
        limits, requests = resources.get("limits", {}), resources.get("requests", {})
        gpus = limits.get("nvidia.com/gpu")
        report.check(str(gpus) == "1", f"{name}: one GPU per pod (limit {gpus})")
        report.check(
            requests.get("nvidia.com/gpu") in (None, gpus), f"{name}: GPU request equals the limit"
        )
        report.check(
            params.get("num-gpus") in (None, str(gpus)), f"{name}: num-gpus matches the GPU limit"
        )
        fits(report, name, params, pod, limits)


def fits(report: Report, label: str, params: dict, pod: dict, limits: dict) -> None:
    store = params.get("object-store-memory")
    shm = next(
        (v["emptyDir"].get("sizeLimit") for v in pod.get("volumes", []) if v["name"] == "dshm"),
        None,
    )
    memory = limits.get("memory")
    ok = bool(store and shm and memory)
    ok = ok and parse_quantity(store) <= parse_quantity(shm) < parse_quantity(memory)
    report.check(ok, f"{label}: object store {store} <= /dev/shm {shm} < memory {memory}")


def check_manifests(report: Report, values: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            written = render.render_all(values, Path(tmp))
        except render.EnvFileError as error:
            report.check(False, f"render: {error}")
            return
        report.check(True, f"render: {len(written)} manifests, every ${{NAME}} defined")
        docs: dict[str, list[dict[str, Any]]] = {}
        for path in written:
            try:
                docs[path.name] = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
            except yaml.YAMLError as error:
                report.check(False, f"{path.name}: YAML: {error}")
                continue
            kinds = [d.get("kind") for d in docs[path.name]]
            report.check(True, f"{path.name}: parses as YAML ({', '.join(map(str, kinds))})")

    expected = {
        "raycluster.yaml": ["RayCluster"],
        "rayjob.yaml": ["RayJob"],
        "pvc.yaml": ["Namespace", "PersistentVolumeClaim", "PersistentVolumeClaim"],
        "weights.yaml": ["ConfigMap", "Job"],
        "vllm.yaml": ["Deployment", "Service"],
    }
    for name, kinds in expected.items():
        got = [d.get("kind") for d in docs.get(name, [])]
        report.check(got == kinds, f"{name}: kinds {got} (expected {kinds})")
        for doc in docs.get(name, []):
            if doc.get("kind") in ("RayCluster", "RayJob"):
                report.check(
                    doc.get("apiVersion") == values["KUBERAY_API_VERSION"],
                    f"{name}: apiVersion {doc.get('apiVersion')}",
                )
            if doc.get("kind") != "Namespace":
                report.check(
                    doc.get("metadata", {}).get("namespace") == values["NAMESPACE"],
                    f"{name}: {doc.get('kind')} in namespace {values['NAMESPACE']}",
                )

    cluster = next(
        (d for d in docs.get("raycluster.yaml", []) if d.get("kind") == "RayCluster"), None
    )
    job = next((d for d in docs.get("rayjob.yaml", []) if d.get("kind") == "RayJob"), None)
    claim = next(
        (d for d in docs.get("pvc.yaml", []) if d.get("kind") == "PersistentVolumeClaim"), None
    )
    if cluster:
        check_raycluster_spec(report, "RayCluster", cluster.get("spec", {}), values)
    if job:
        spec = job.get("spec", {})
        report.check(
            not unknown_keys(spec, RAYJOB_SPEC),
            f"RayJob: spec fields are KubeRay's {unknown_keys(spec, RAYJOB_SPEC) or ''}",
        )
        report.check(
            bool(cluster) and spec.get("rayClusterSpec") == cluster.get("spec"),
            "RayJob: rayClusterSpec is the RayCluster's spec",
        )
        report.check(
            spec.get("shutdownAfterJobFinishes") is False,
            "RayJob: shutdownAfterJobFinishes false (a failed run can be resumed on its cluster)",
        )
        report.check(
            spec.get("submissionMode", "K8sJobMode") in SUBMISSION_MODES,
            f"RayJob: submissionMode {spec.get('submissionMode')}",
        )
        entry = str(spec.get("entrypoint", "")).split()
        report.check(
            entry[:3] == ["datapipe", "run", values["RECIPE"]]
            and "--ray" in entry
            and entry[entry.index("--out") + 1 : entry.index("--out") + 2] == [values["OUT_DIR"]]
            if "--out" in entry
            else False,
            f"RayJob: entrypoint `{spec.get('entrypoint')}`",
        )
        report.check(
            "entrypointNumCpus" not in spec and "entrypointResources" not in spec,
            "RayJob: the driver needs no resources (it runs on the num-cpus-0 head)",
        )
        submitter = spec.get("submitterPodTemplate", {}).get("spec", {})
        containers = submitter.get("containers", [{}])
        report.check(
            containers[0].get("image")
            == f"{values['IMAGE_REGISTRY']}/datapipe-head:{values['DATAPIPE_IMAGE_TAG']}"
            and not containers[0].get("command")
            and container_env(containers[0]).get("RAY_AUTH_MODE") == values["RAY_AUTH_MODE"]
            and submitter.get("restartPolicy") == "Never",
            "RayJob: submitter uses the head image, KubeRay's command and RAY_AUTH_MODE",
        )
    if claim:
        report.check(
            claim.get("metadata", {}).get("name") == values["OUTPUT_PVC"]
            and "ReadWriteMany" in claim.get("spec", {}).get("accessModes", []),
            f"pvc.yaml: {values['OUTPUT_PVC']} is ReadWriteMany",
        )


def main() -> int:
    report = Report()
    try:
        entries = render.parse_env_file()
    except render.EnvFileError as error:
        report.check(False, f"versions.env: {error}")
        return 1
    # Defaults only: a check must not depend on the caller's environment.
    values = render.resolve(entries, environ={})
    report.check(
        True,
        f"versions.env: {sum(e.pinned for e in entries.values())} pinned versions, "
        f"{sum(not e.pinned for e in entries.values())} settings",
    )
    check_versions(report, entries, values)
    check_dockerfile(report, entries)
    check_no_hardcoded_versions(report)
    check_manifests(report, values)
    print(f"{report.failures} failed" if report.failures else "all checks passed")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
