"""Rendered KubeRay manifests checked against the recipe they will run, before `kubectl apply`.

A cluster job that starts and then cannot work costs GPU hours: a cluster too small for the
recipe's actor pools, an API key no pod receives, a weight path no volume holds, a `vllm`
Service nobody created, no deadline for a job whose pods never schedule. Each of these is
visible in the rendered files (docker/render-manifests.sh), so `datapipe doctor RECIPE
--manifests DIR` reads them and answers the same questions the cluster would answer later:

- capacity: the Ray resources the RayCluster (and the RayJob's cluster) offer, run through
  the Ray runner's own capacity check with the recipe's pools, and whether every actor fits
  on one node;
- keys: every `api_key_env` of the recipe reaches every Ray container (head: the driver's
  preflight and the bench judge; workers: the prompt actors);
- weights: every local weight path of the recipe is on the weights claim in every Ray pod, and
  the fill Job's table (docker/kuberay/weights.yaml.tmpl) provides it;
- the prompt LLM: an in-cluster `base_url` names a Service that is rendered, whose Deployment
  serves the recipe's model with the same key;
- deadlines and memory: the RayJob fails when it cannot start, and each GPU worker's memory
  holds its object store and processes.

The recipe's paths and keys are read through `Doctor`'s own walk of the stages, so a backend
added there is checked here too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import yaml

from datapipe.doctor import Doctor, Finding
from datapipe.errors import DatapipeError
from datapipe.libraries import LoadedRecipe
from datapipe.quantities import parse_quantity
from datapipe.recipe import PaddleOcrConfig
from datapipe.runner.pools import PoolSpec, capacity_problems, recipe_pools

QWEN_IMAGE_BYTES = 57_700_000_000
"""Qwen-Image's weights in bf16: 28.85e9 parameters counted at the real config on the meta
device (transformer 20.43e9, text encoder 8.29e9, VAE 0.13e9). Host memory needs them only
with `cpu_offload: true`: otherwise they load straight to the GPU."""
WORKER_PROCESS_BYTES = 16 * 2**30
"""Host memory of a GPU worker's processes besides the object store (CUDA contexts of the
render, SAM-2 and CLIP actors, OCR actors, Ray's own): an allowance, not a measurement."""
FIX_TEMPLATES = "docker/kuberay/raycluster.yaml.tmpl and rayjob.yaml.tmpl"
LITERAL = "a literal value in the manifest"
FIX_WEIGHTS = "docker/kuberay/weights.yaml.tmpl"


def quantity(text: Any, where: str) -> float:
    """A Kubernetes quantity (80Gi, 500m, 8589934592) as a number."""
    try:
        return parse_quantity(text)
    except ValueError:
        raise DatapipeError(
            f"{text!r} is not a Kubernetes quantity", where=where, fix="write e.g. 8, 500m or 80Gi"
        ) from None


@dataclass(frozen=True)
class PodTemplate:
    """One pod template: the Ray head, a worker group (with its replicas), a Job or a server."""

    label: str
    pod: dict[str, Any]
    params: dict[str, str]
    replicas: int

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod.get("containers") or [{}]
        return containers[0]  # KubeRay's Ray container is the first one

    def limit(self, name: str) -> str | None:
        resources = self.container.get("resources", {})
        value = resources.get("limits", {}).get(name, resources.get("requests", {}).get(name))
        return None if value is None else str(value)

    def resources(self) -> dict[str, float]:
        """Ray's resources of one such node, as KubeRay derives them (rayStartParams first)."""
        cpus = self.params.get("num-cpus") or self.limit("cpu") or "0"
        gpus = self.params.get("num-gpus") or self.limit("nvidia.com/gpu") or "0"
        found = {
            "CPU": quantity(cpus, f"{self.label}: num-cpus"),
            "GPU": quantity(gpus, f"{self.label}: num-gpus"),
        }
        custom = self.params.get("resources")
        if custom:
            found.update({k: float(v) for k, v in json.loads(custom.strip("'\"")).items()})
        return found

    def env_sources(self) -> dict[str, str]:
        """Environment variable -> where its value comes from."""
        found = {}
        for entry in self.container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                found[entry["name"]] = f"Secret {ref.get('name')} key {ref.get('key')}"
            elif entry.get("value"):
                found[entry["name"]] = LITERAL
        return found

    def env_from_secrets(self) -> list[str]:
        """Secrets imported whole with envFrom: they may hold any key."""
        return [
            e["secretRef"].get("name", "")
            for e in self.container.get("envFrom", [])
            if "secretRef" in e
        ]

    def claim_of(self, path: str) -> tuple[str, str] | None:
        """(claim, path inside it) of a file under one of this pod's volume mounts."""
        volumes = {v.get("name"): v for v in self.pod.get("volumes", [])}
        target = PurePosixPath(path)
        best: tuple[int, str, str] | None = None
        for mount in self.container.get("volumeMounts", []):
            root = PurePosixPath(mount.get("mountPath", "/-"))
            if target != root and root not in target.parents:
                continue
            claim = volumes.get(mount.get("name"), {}).get("persistentVolumeClaim", {})
            if claim and (best is None or len(root.parts) > best[0]):
                best = (len(root.parts), claim["claimName"], str(target.relative_to(root)))
        return None if best is None else (best[1], best[2])


@dataclass
class Manifests:
    """Every object of a directory of rendered manifests."""

    directory: Path
    docs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, directory: Path) -> Manifests:
        files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
        if not files:
            raise DatapipeError(
                f"no *.yaml manifests in {directory}",
                where="--manifests",
                fix=f"render them first: docker/render-manifests.sh --out {directory}",
            )
        found = cls(directory)
        for path in files:
            try:
                docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
            except yaml.YAMLError as exc:
                raise DatapipeError(
                    f"{path.name} is not valid YAML: {exc}", where=str(path), fix="re-render it"
                ) from None
            found.docs += [d for d in docs if isinstance(d, dict)]
        return found

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") == kind]

    def clusters(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(label, RayCluster spec) of every RayCluster and every RayJob's own cluster."""
        for doc in self.of_kind("RayCluster"):
            yield f"RayCluster {doc['metadata']['name']}", doc.get("spec", {})
        for doc in self.of_kind("RayJob"):
            spec = doc.get("spec", {}).get("rayClusterSpec")
            if spec:
                yield f"RayJob {doc['metadata']['name']}", spec

    def secret_keys(self) -> dict[str, set[str]]:
        """Secret name -> the keys the pods require of it (optional references left out)."""
        found: dict[str, set[str]] = {}
        for ref in _secret_refs(self.docs):
            if not ref.get("optional"):
                found.setdefault(ref["name"], set()).add(ref["key"])
        return found


def _secret_refs(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "secretKeyRef" in node:
            yield node["secretKeyRef"]
        for value in node.values():
            yield from _secret_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _secret_refs(item)


def ray_pods(label: str, spec: dict[str, Any]) -> list[PodTemplate]:
    head = spec.get("headGroupSpec", {})
    pods = [
        PodTemplate(
            f"{label} head",
            head.get("template", {}).get("spec", {}),
            head.get("rayStartParams", {}),
            1,
        )
    ]
    for group in spec.get("workerGroupSpecs", []):
        pods.append(
            PodTemplate(
                f"{label} worker group {group.get('groupName')}",
                group.get("template", {}).get("spec", {}),
                group.get("rayStartParams", {}),
                int(group.get("replicas", group.get("minReplicas", 0)) or 0),
            )
        )
    return pods


class RecipeNeeds(Doctor):
    """Doctor's walk of the stages, recording the paths and keys instead of checking them."""

    def __init__(self, loaded: LoadedRecipe) -> None:
        super().__init__(loaded, devices=False)
        self.paths: list[tuple[str, str, str]] = []  # (stage, recipe field, path)
        self.keys: list[tuple[str, str]] = []  # (stage, variable)
        self.check()

    # Doctor's signatures, so its walk calls these: the unused arguments are its.
    def package(self, stage: str, module: str, fix: str) -> bool:  # noqa: ARG002
        return True

    def path(self, stage: str, field: str, value: str | None, kind: str = "any") -> None:  # noqa: ARG002
        if value is not None:
            self.paths.append((stage, field, value))

    def files(self, stage: str, field: str, expected: list[tuple[str, str]]) -> None:
        """Each model file (the first of its alternatives): a file inside a folder of the
        weights table is covered by that folder's line."""
        for paths, _ in expected:
            self.paths.append((stage, field, paths.split(" | ")[0]))

    def env(self, stage: str, variable: str) -> None:
        self.keys.append((stage, variable))

    def device(self, stage: str, device: str) -> None:  # noqa: ARG002
        return None

    def _paddleocr(self, config: PaddleOcrConfig) -> None:
        for kind in ("det", "rec"):
            value = getattr(config, f"{kind}_model_dir")
            self.paths.append(("ocr", f"stages.ocr.paddleocr.{kind}_model_dir", value))

    def _fonts(self, area: str, weights: tuple[str, ...]) -> None:  # noqa: ARG002
        return None


class ManifestCheck:
    """The findings of one recipe against one directory of rendered manifests."""

    def __init__(self, loaded: LoadedRecipe, manifests: Manifests) -> None:
        self.loaded = loaded
        self.manifests = manifests
        self.needs = RecipeNeeds(loaded)
        self.findings: list[Finding] = []

    def add(self, stage: str, what: str, ok: bool, detail: str, fix: str = "") -> None:
        self.findings.append(Finding(stage, what, ok, detail, "" if ok else fix))

    def check(self) -> list[Finding]:
        clusters = list(self.manifests.clusters())
        if not clusters:
            self.add(
                "cluster",
                "RayCluster or RayJob",
                False,
                f"no RayCluster or RayJob in {self.manifests.directory}",
                "render docker/kuberay/*.yaml.tmpl with docker/render-manifests.sh",
            )
        for label, spec in clusters:
            pods = ray_pods(label, spec)
            self._capacity(label, pods)
            self._keys(label, pods)
            self._weights(label, pods)
            self._memory(pods)
        self._llm()
        self._jobs()
        return self.findings

    # -- capacity -------------------------------------------------------------------

    def _capacity(self, label: str, pods: list[PodTemplate]) -> None:
        pools = recipe_pools(self.loaded)
        total: dict[str, float] = {}
        nodes: list[dict[str, float]] = []
        for pod in pods:
            offered = pod.resources()
            nodes += [dict(offered) for _ in range(pod.replicas)]
            for name, amount in offered.items():
                total[name] = total.get(name, 0.0) + amount * pod.replicas
        fix_size = "render with more GPU_WORKERS / GPU_WORKER_CPUS (docker/versions.env)"
        problems = capacity_problems(total, pools)
        for problem in problems:
            self.add(
                "cluster", f"{label} capacity", False, problem.what, f"{fix_size}, or {problem.fix}"
            )
        unplaced = _unplaced(pools, nodes)
        for pool in unplaced:
            self.add(
                "cluster",
                f"{label} placement",
                False,
                f"an actor of {pool.stage.name} ({pool.cpus:g} CPU, {pool.gpus:g} GPU) finds no "
                "node with room left after the larger actors",
                f"{fix_size}, or lower the stage's cpus/gpus in execution.stages",
            )
        if not problems and not unplaced:
            wanted_cpu = sum(p.cpus * p.workers for p in pools)
            wanted_gpu = sum(p.gpus * p.workers for p in pools)
            self.add(
                "cluster",
                f"{label} capacity",
                True,
                f"{total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs on {len(nodes)} nodes "
                f"hold the pools ({wanted_cpu:g} CPUs, {wanted_gpu:g} GPUs), every actor placed",
            )

    # -- keys -----------------------------------------------------------------------

    def _keys(self, label: str, pods: list[PodTemplate]) -> None:
        for stage, variable in self.needs.keys:
            missing, sources = [], set()
            for pod in pods:
                source = pod.env_sources().get(variable)
                if source is None and pod.env_from_secrets():
                    source = f"envFrom Secret {', '.join(pod.env_from_secrets())}"
                if source is None:
                    missing.append(pod.label)
                else:
                    sources.add(source)
            fix = (
                f"add env {variable} with valueFrom.secretKeyRef (the API_KEYS_SECRET Secret, "
                f"key {variable}) to the head and every worker container in {FIX_TEMPLATES}"
            )
            if LITERAL in sources:
                self.add(
                    stage,
                    f"{label} key {variable}",
                    False,
                    f"{variable} is written into the manifest in clear text",
                    fix,
                )
            elif missing:
                self.add(
                    stage,
                    f"{label} key {variable}",
                    False,
                    f"{variable} (the recipe's api_key_env) is not set on: {', '.join(missing)}",
                    fix,
                )
            else:
                self.add(
                    stage,
                    f"{label} key {variable}",
                    True,
                    f"{variable} on the head and every worker, from {', '.join(sorted(sources))}",
                )

    # -- weights --------------------------------------------------------------------

    def fill_layout(self) -> dict[str, set[str]]:
        """Claim -> the paths (inside it) that a fill Job's table writes."""
        maps = {d["metadata"]["name"]: d for d in self.manifests.of_kind("ConfigMap")}
        layout: dict[str, set[str]] = {}
        for job in self.manifests.of_kind("Job"):
            pod = job.get("spec", {}).get("template", {}).get("spec", {})
            fill = PodTemplate(f"Job {job['metadata']['name']}", pod, {}, 1)
            volumes = {v.get("name"): v for v in pod.get("volumes", [])}
            tables = [
                maps.get(v["configMap"].get("name"), {})
                for v in volumes.values()
                if "configMap" in v
            ]
            for table in tables:
                for text in table.get("data", {}).values():
                    for line in str(text).splitlines():
                        words = line.split()
                        if not words or words[0].startswith("#"):
                            continue
                        where = fill.claim_of(words[0])
                        if where:
                            layout.setdefault(where[0], set()).add(where[1])
        return layout

    def _weights(self, label: str, pods: list[PodTemplate]) -> None:
        layout = self.fill_layout()
        for stage, recipe_field, path in self.needs.paths:
            self._weight_path(stage, f"{label} {recipe_field}", path, pods, layout)

    def _weight_path(
        self, stage: str, what: str, path: str, pods: list[PodTemplate], layout: dict[str, set[str]]
    ) -> None:
        if not PurePosixPath(path).is_absolute():
            self.add(
                stage,
                what,
                False,
                f"{path} is relative: on a pod it resolves against the recipe's folder in the "
                "image, not the weights volume",
                "name an absolute path under /models in the recipe",
            )
            return
        places = {pod.label: pod.claim_of(path) for pod in pods}
        off = [name for name, place in places.items() if place is None]
        if off:
            self.add(
                stage,
                what,
                False,
                f"{path} is on no volume mounted in: {', '.join(off)}",
                f"mount the weights claim there ({FIX_TEMPLATES}) or put the path under /models",
            )
            return
        claim, inside = next(iter(places.values()))
        provided = layout.get(claim, set())
        covered = any(inside == p or inside.startswith(p.rstrip("/") + "/") for p in provided)
        if not covered:
            self.add(
                stage,
                what,
                False,
                f"{path} (claim {claim}) is not in the weights table of any fill Job",
                f"add a line `{path}  HUB_REPO  [FILE]` to the table in {FIX_WEIGHTS}, "
                "or point the recipe at a path listed there",
            )
            return
        self.add(stage, what, True, f"{path}: claim {claim} on every Ray pod, filled by the Job")

    # -- memory ---------------------------------------------------------------------

    def _memory(self, pods: list[PodTemplate]) -> None:
        render = self.loaded.recipe.stages.render
        offload = render.backend == "qwen_image" and render.qwen_image.cpu_offload
        for pod in pods[1:]:
            memory = pod.limit("memory")
            shm = next(
                (
                    v["emptyDir"].get("sizeLimit")
                    for v in pod.pod.get("volumes", [])
                    if v.get("emptyDir", {}).get("medium") == "Memory"
                ),
                None,
            )
            if memory is None:
                self.add("render", f"{pod.label} memory", False, "no memory limit", "set one")
                continue
            need = WORKER_PROCESS_BYTES + (quantity(shm, pod.label) if shm else 0.0)
            parts = f"/dev/shm {shm or 0} + processes {WORKER_PROCESS_BYTES / 2**30:g} GiB"
            if offload:
                need += QWEN_IMAGE_BYTES
                parts += (
                    f" + Qwen-Image kept in host memory (cpu_offload) {QWEN_IMAGE_BYTES / 1e9:g} GB"
                )
            have = quantity(memory, pod.label)
            self.add(
                "render",
                f"{pod.label} memory",
                have >= need,
                f"limit {memory} ({have / 2**30:.1f} GiB) for {parts} = {need / 2**30:.1f} GiB",
                f"render with GPU_WORKER_MEMORY of at least {int(-(-need // 2**30))}Gi",
            )

    # -- the prompt LLM -------------------------------------------------------------

    def _llm(self) -> None:
        prompt = self.loaded.recipe.stages.prompt
        if prompt.backend != "openai" or prompt.openai is None:
            return
        what = "prompt LLM service"
        base_url = prompt.openai.base_url
        if not base_url:
            self.add("prompt", what, True, "hosted API (no base_url): nothing to serve here")
            return
        url = urlparse(base_url)
        parts = (url.hostname or "").split(".")
        if len(parts) > 1 and parts[2:3] != ["svc"]:
            self.add("prompt", what, True, f"{url.hostname}: outside the cluster, nothing to serve")
            return
        # name.namespace.svc[.cluster.local], or a bare name in the manifests' namespace
        namespaces = {d.get("metadata", {}).get("namespace") for d in self.manifests.docs}
        namespace = parts[1] if len(parts) > 1 else next(iter(namespaces - {None}), None)
        port = url.port or (443 if url.scheme == "https" else 80)
        server, problem, fix = self._server(parts[0], namespace, port)
        if server is None:
            self.add("prompt", what, False, f"base_url {base_url}: {problem}", fix)
            return
        args = [str(a) for a in server.container.get("args", [])]
        model = _flag(args, "--model")
        served = _flag(args, "--served-model-name") or model
        key = server.env_sources().get("VLLM_API_KEY")
        sent = self._key_source(prompt.openai.api_key_env)
        if served != prompt.openai.model:
            wanted = prompt.openai.model
            problem = f"{server.label} serves {served!r}, the recipe asks for {wanted!r}"
            fix = (
                "make --served-model-name in docker/kuberay/vllm.yaml.tmpl and "
                "stages.prompt.openai.model the same"
            )
        elif key is not None and sent is not None and key != sent:
            problem = (
                f"vLLM requires the key from {key}, the prompt actors send "
                f"{prompt.openai.api_key_env} from {sent}"
            )
            fix = "take VLLM_API_KEY from the same Secret key as the recipe's api_key_env"
        else:
            detail = f"Service {parts[0]}:{port} -> {server.label} serving {served!r} from {model}"
            self.add("prompt", what, True, detail)
            if model and model.startswith("/"):
                layout = self.fill_layout()
                self._weight_path("prompt", f"{server.label} --model", model, [server], layout)
            return
        self.add("prompt", what, False, problem, fix)

    def _server(
        self, name: str, namespace: str | None, port: int
    ) -> tuple[PodTemplate | None, str, str]:
        """The pod template behind Service `name`, or why there is none and the fix."""
        fix = (
            "apply docker/kuberay/vllm.yaml.tmpl rendered into this directory, or set "
            "stages.prompt.openai.base_url to the server that serves the model"
        )
        service = next(
            (
                s
                for s in self.manifests.of_kind("Service")
                if s["metadata"]["name"] == name and s["metadata"].get("namespace") == namespace
            ),
            None,
        )
        if service is None:
            return None, f"names Service {name} in namespace {namespace}; none is rendered", fix
        spec = service.get("spec", {})
        if not any(p.get("port") == port for p in spec.get("ports", [])):
            return None, f"Service {name} has no port {port}", "match the port in base_url"
        selector = spec.get("selector", {}).items()
        for deployment in self.manifests.of_kind("Deployment"):
            template = deployment.get("spec", {}).get("template", {})
            if selector and selector <= template.get("metadata", {}).get("labels", {}).items():
                label = f"Deployment {deployment['metadata']['name']}"
                return PodTemplate(label, template.get("spec", {}), {}, 1), "", ""
        return None, f"no Deployment behind Service {name}", fix

    def _key_source(self, variable: str) -> str | None:
        for _, spec in self.manifests.clusters():
            for pod in ray_pods("", spec):
                found = pod.env_sources().get(variable)
                if found:
                    return found
        return None

    # -- the RayJob -----------------------------------------------------------------

    def _jobs(self) -> None:
        for job in self.manifests.of_kind("RayJob"):
            name = f"RayJob {job['metadata']['name']}"
            spec = job.get("spec", {})
            start = spec.get("preRunningDeadlineSeconds")
            self.add(
                "cluster",
                f"{name} start deadline",
                bool(start),
                f"preRunningDeadlineSeconds {start}"
                if start
                else "no preRunningDeadlineSeconds: a job whose pods never schedule waits forever",
                "set RAYJOB_START_DEADLINE_SECONDS (docker/versions.env) and re-render",
            )
            active = spec.get("activeDeadlineSeconds")
            self.add(
                "cluster",
                f"{name} deadline",
                bool(active),
                f"activeDeadlineSeconds {active}" if active else "no activeDeadlineSeconds",
                "set RAYJOB_DEADLINE_SECONDS (docker/versions.env) and re-render",
            )
            words = str(spec.get("entrypoint", "")).split()
            recipe = words[2] if words[:2] == ["datapipe", "run"] and len(words) > 2 else None
            self.add(
                "cluster",
                f"{name} entrypoint",
                recipe is not None and PurePosixPath(recipe).name == self.loaded.path.name,
                f"runs recipe {recipe}, checked against {self.loaded.path.name}",
                f"render with RECIPE=/app/pipelines/{self.loaded.path.name}",
            )


def _flag(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _unplaced(pools: list[PoolSpec], nodes: list[dict[str, float]]) -> list[PoolSpec]:
    """First-fit decreasing of every actor onto the nodes: the pools whose actors find no room
    (Ray places actors one at a time, so a fit here is necessary, not a promise)."""
    free = [dict(n) for n in nodes]
    actors = sorted((p for p in pools for _ in range(p.workers)), key=lambda p: (-p.gpus, -p.cpus))
    unplaced: list[PoolSpec] = []
    for actor in actors:
        wants = {"CPU": actor.cpus, "GPU": actor.gpus, **actor.resources}
        node = next(
            (n for n in free if all(n.get(k, 0.0) + 1e-9 >= v for k, v in wants.items() if v)),
            None,
        )
        if node is None:
            if actor not in unplaced:
                unplaced.append(actor)
            continue
        for k, v in wants.items():
            node[k] = node.get(k, 0.0) - v
    return unplaced


def check_manifests(loaded: LoadedRecipe, directory: Path) -> list[Finding]:
    """Every finding of the recipe against the manifests rendered into `directory`."""
    return ManifestCheck(loaded, Manifests.load(directory)).check()
