"""Rendered KubeRay manifests against the KubeRay schema of the pinned version and the recipe.

Renders docker/kuberay/*.yaml.tmpl with versions.env's defaults and with the README's
example, validates every object (RayCluster and RayJob against docker/kuberay-crd.schema.json,
their pod templates and every core object against the Kubernetes schemas kubernetes-validate
ships), then checks them against pipelines/train.yaml with `datapipe doctor --manifests`'s
own code: capacity, keys, weight paths, the vLLM service, deadlines. The README's "Run on a
cluster" steps are checked against the same files.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import ROOT
from referencing import Registry, Resource
from typer.testing import CliRunner

from datapipe.cli import app
from datapipe.doctor import Finding
from datapipe.loading import load_recipe
from datapipe.manifests import Manifests, RecipeNeeds, check_manifests

TRAIN = ROOT / "pipelines" / "train.yaml"
SCHEMA = ROOT / "docker" / "kuberay-crd.schema.json"
KUBERNETES = kubernetes_validate.utils.all_versions()[-1]  # the newest schema it ships


def _render_module():
    spec = importlib.util.spec_from_file_location("docker_render", ROOT / "docker" / "render.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


RENDER = _render_module()


def render(out: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Render the templates into `out` as docker/render-manifests.sh does; the values used."""
    values = RENDER.resolve(RENDER.parse_env_file(), environ=environ or {})
    RENDER.render_all(values, out)
    return values


def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Run on a cluster\n")
    return text[start : text.index("\n## ", start + 1)]


def readme_commands() -> list[list[str]]:
    """The shell commands of the section's bash block, continuations joined, comments dropped."""
    block = re.search(r"```bash\n(.*?)```", readme_section(), re.S).group(1)
    joined = block.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip() and line[0] != "#"]


def readme_render_env() -> dict[str, str]:
    (command,) = [c for c in readme_commands() if "docker/render-manifests.sh" in c]
    env = command[: command.index("docker/render-manifests.sh")]
    return dict(word.split("=", 1) for word in env)


def failed(findings: list[Finding]) -> list[str]:
    return [f"{f.stage} {f.what}: {f.detail} (fix: {f.fix})" for f in findings if not f.ok]


def docs(directory: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        p.name: [d for d in yaml.safe_load_all(p.read_text()) if d]
        for p in sorted(directory.glob("*.yaml"))
    }


@pytest.fixture(scope="module")
def defaults(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("defaults")
    render(out)
    return out


@pytest.fixture(scope="module")
def train():
    return load_recipe(TRAIN)


def train_variant(folder: Path, change) -> Any:
    """train.yaml with `change(data)` applied, its libraries made absolute, loaded."""
    data = yaml.safe_load(TRAIN.read_text(encoding="utf-8"))
    data["libraries"] = {k: str((TRAIN.parent / v).resolve()) for k, v in data["libraries"].items()}
    change(data)
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_recipe(path)


def rewrite(directory: Path, name: str, change) -> None:
    """Edit one rendered file in place: `change` gets its list of objects."""
    path = directory / name
    objects = [d for d in yaml.safe_load_all(path.read_text()) if d]
    change(objects)
    path.write_text(yaml.safe_dump_all(objects), encoding="utf-8")


def copy_of(directory: Path, tmp_path: Path) -> Path:
    out = tmp_path / "manifests"
    out.mkdir()
    for path in directory.glob("*.yaml"):
        (out / path.name).write_text(path.read_text())
    return out


# -- schema -------------------------------------------------------------------------------


def crd_validator() -> jsonschema.Validator:
    """The hand-written KubeRay schema, its pod templates resolved against the Kubernetes
    core definitions that kubernetes-validate ships for KUBERNETES."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    folder = f"kubernetes-json-schema/v{KUBERNETES}-local-strict/_definitions.json"
    core = json.loads((Path(kubernetes_validate.__file__).parent / folder).read_text())
    registry = Registry().with_resources([("/api/_definitions.json", Resource.from_contents(core))])
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_all(directory: Path) -> list[str]:
    errors = []
    crd = crd_validator()
    for name, objects in docs(directory).items():
        for obj in objects:
            label = f"{name} {obj.get('kind')} {obj.get('metadata', {}).get('name')}"
            if obj.get("apiVersion", "").startswith("ray.io/"):
                errors += [f"{label}: {e.json_path}: {e.message}" for e in crd.iter_errors(obj)]
            else:
                try:
                    kubernetes_validate.validate(obj, KUBERNETES, strict=True)
                except kubernetes_validate.ValidationError as error:
                    errors.append(f"{label}: {error.message}")
    return errors


def test_the_schema_is_for_the_pinned_kuberay_minor_release():
    pinned = RENDER.resolve(RENDER.parse_env_file(), environ={})["KUBERAY_OPERATOR_VERSION"]
    written = json.loads(SCHEMA.read_text())["x-kuberay-version"]
    assert ".".join(pinned.split(".")[:2]) == written, (
        f"versions.env pins KubeRay {pinned}, docker/kuberay-crd.schema.json describes {written}: "
        "compare the schema with that release's API types and update x-kuberay-version"
    )


@pytest.mark.parametrize("example", ["defaults", "readme"])
def test_every_rendered_object_validates(example, tmp_path):
    out = tmp_path / example
    render(out, readme_render_env() if example == "readme" else {})
    kinds = sorted(o["kind"] for objects in docs(out).values() for o in objects)
    claims = ["PersistentVolumeClaim"] * 2
    assert kinds == sorted(
        ["Namespace", *claims, "ConfigMap", "Job", "Deployment", "Service", "RayCluster", "RayJob"]
    )
    assert validate_all(out) == []


def test_the_schema_refuses_what_the_api_server_would_prune_or_reject(defaults, tmp_path):
    out = copy_of(defaults, tmp_path)

    def break_the_job(objects):
        spec = objects[0]["spec"]
        cluster = spec["rayClusterSpec"]
        cluster["workerGroupSpec"] = cluster.pop("workerGroupSpecs")  # pruned: no workers
        cluster["authOptions"]["mode"] = "tokens"
        spec["preRunningDeadlineSeconds"] = 0

    def break_the_cluster(objects):
        spec = objects[0]["spec"]
        spec["workerGroupSpecs"][0]["replicas"] = "8"
        spec["headGroupSpec"]["template"]["spec"]["containers"][0]["envv"] = []

    rewrite(out, "rayjob.yaml", break_the_job)
    rewrite(out, "raycluster.yaml", break_the_cluster)
    errors = "\n".join(validate_all(out))
    assert "'workerGroupSpec' was unexpected" in errors
    assert "'tokens' is not one of" in errors
    assert "0 is less than the minimum of 1" in errors
    assert "'8' is not of type 'integer'" in errors
    assert "'envv' was unexpected" in errors


# -- against the recipe -------------------------------------------------------------------


def test_defaults_fit_the_train_recipe(defaults, train):
    findings = check_manifests(train, defaults)
    assert failed(findings) == []
    checked = {f.what for f in findings}
    for cluster in ("RayCluster datapipe", "RayJob datapipe-train-v1"):
        assert f"{cluster} capacity" in checked
        assert {f"{cluster} key OPENAI_API_KEY", f"{cluster} key GEMINI_API_KEY"} <= checked
        for _, field, _ in RecipeNeeds(train).paths:
            assert f"{cluster} {field}" in checked
    capacity = next(f for f in findings if f.what == "RayCluster datapipe capacity")
    assert capacity.detail.startswith("64 CPUs, 8 GPUs on 9 nodes")
    assert {"prompt LLM service", "Deployment vllm --model"} <= checked
    assert "RayJob datapipe-train-v1 start deadline" in checked


def test_the_readme_example_fits_the_train_recipe(tmp_path, train):
    render(tmp_path, readme_render_env())
    assert failed(check_manifests(train, tmp_path)) == []


def test_every_weight_path_of_the_recipe_is_in_the_fill_table(defaults, train):
    """The table in weights.yaml.tmpl lists each path once; the recipe names the same ones."""
    (table,) = [o for o in docs(defaults)["weights.yaml"] if o["kind"] == "ConfigMap"]
    rows = [line.split() for line in table["data"]["weights.txt"].splitlines() if line.strip()]
    listed = [row[0] for row in rows]
    assert len(listed) == len(set(listed))
    # Read through doctor's walk of the stages: a recipe that names a new path is checked too.
    wanted = {path for _, _, path in RecipeNeeds(train).paths}
    covered = {p for p in wanted if any(p == f or p.startswith(f"{f}/") for f in listed)}
    assert covered == wanted, wanted - covered
    # Qwen-Image, the SAM-2 checkpoint, its detector, the CLIP folder: each has its line.
    assert len({f for f in listed if any(p == f or p.startswith(f"{f}/") for p in wanted)}) >= 4
    assert all(len(row) in (2, 3) and row[0].startswith("/models/") for row in rows)


def test_a_cluster_too_small_is_named_with_its_fix(tmp_path, train):
    render(tmp_path, {"GPU_WORKERS": "4"})
    problems = failed(check_manifests(train, tmp_path))
    assert any("44 CPUs" in p and "the cluster has 32" in p for p in problems)
    assert any("the GPU pools together ask for 8 GPUs" in p for p in problems)
    assert all("GPU_WORKERS" in p for p in problems)


def test_an_actor_that_fits_no_node_is_named(defaults, tmp_path):
    # 38 of the cluster's 64 CPUs in total, but one OCR actor wants 10 and a node has 8.
    def big_ocr(data):
        data["execution"]["stages"]["ocr"] = {"cpus": 10, "workers": 1, "batch_size": 2}

    problems = failed(check_manifests(train_variant(tmp_path, big_ocr), defaults))
    assert len(problems) == 2  # the RayCluster and the RayJob's cluster
    assert "an actor of ocr (10 CPU, 0 GPU) finds no node" in problems[0]


def test_a_key_missing_from_the_workers_is_named_with_its_fix(defaults, tmp_path, train):
    out = copy_of(defaults, tmp_path)

    def drop(objects):
        container = objects[0]["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
        container["env"] = [e for e in container["env"] if e["name"] != "OPENAI_API_KEY"]

    rewrite(out, "raycluster.yaml", drop)
    (problem,) = failed(check_manifests(train, out))
    assert "OPENAI_API_KEY" in problem and "RayCluster datapipe worker group gpu" in problem
    assert "secretKeyRef" in problem and "raycluster.yaml.tmpl" in problem


def test_a_key_written_into_a_manifest_is_refused(defaults, tmp_path, train):
    out = copy_of(defaults, tmp_path)

    def literal(objects):
        container = objects[0]["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        for entry in container["env"]:
            if entry["name"] == "GEMINI_API_KEY":
                entry.pop("valueFrom")
                entry["value"] = "sk-test"

    rewrite(out, "raycluster.yaml", literal)
    (problem,) = failed(check_manifests(train, out))
    assert "GEMINI_API_KEY is written into the manifest in clear text" in problem


def test_a_weight_path_outside_the_table_or_the_volume_is_named(defaults, tmp_path):
    def change(data):
        data["stages"]["clip"]["model"] = "local-dir:/models/open_clip/other-clip"
        data["stages"]["subject"]["sam2"]["checkpoint"] = "/weights/sam2.pt"

    recipe = train_variant(tmp_path, change)
    problems = "\n".join(failed(check_manifests(recipe, defaults)))
    assert "/models/open_clip/other-clip/open_clip_config.json (claim datapipe-models) is not" in (
        problems
    )
    assert "weights.yaml.tmpl" in problems
    assert "/weights/sam2.pt is on no volume mounted in" in problems


def test_an_llm_service_that_is_not_rendered_or_serves_another_model_is_named(defaults, tmp_path):
    def elsewhere(data):
        data["stages"]["prompt"]["openai"]["base_url"] = "http://qwen.datapipe.svc:8000/v1"

    problems = failed(check_manifests(train_variant(tmp_path, elsewhere), defaults))
    assert len(problems) == 1 and "Service qwen in namespace datapipe" in problems[0]

    def other_model(data):
        data["stages"]["prompt"]["openai"]["model"] = "Qwen/Qwen3-8B"

    problems = failed(check_manifests(train_variant(tmp_path, other_model), defaults))
    assert len(problems) == 1 and "serves 'Qwen/Qwen3-32B'" in problems[0]

    def hosted(data):
        data["stages"]["prompt"]["openai"].pop("base_url")

    assert failed(check_manifests(train_variant(tmp_path, hosted), defaults)) == []


def test_vllm_asking_another_key_than_the_prompt_actors_send_is_named(defaults, tmp_path, train):
    out = copy_of(defaults, tmp_path)

    def other_key(objects):
        container = objects[0]["spec"]["template"]["spec"]["containers"][0]
        container["env"][1]["valueFrom"]["secretKeyRef"]["key"] = "VLLM_KEY"

    rewrite(out, "vllm.yaml", other_key)
    (problem,) = failed(check_manifests(train, out))
    assert "vLLM requires the key from Secret datapipe-api-keys key VLLM_KEY" in problem


def test_a_rayjob_without_deadlines_is_named(defaults, tmp_path, train):
    out = copy_of(defaults, tmp_path)

    def drop(objects):
        objects[0]["spec"].pop("preRunningDeadlineSeconds")
        objects[0]["spec"].pop("activeDeadlineSeconds")

    rewrite(out, "rayjob.yaml", drop)
    problems = failed(check_manifests(train, out))
    assert len(problems) == 2
    assert "waits forever" in problems[0] and "RAYJOB_START_DEADLINE_SECONDS" in problems[0]


def test_worker_memory_must_hold_the_model_when_it_stays_in_host_memory(defaults, tmp_path):
    def offload(data):
        data["stages"]["render"]["qwen_image"]["cpu_offload"] = True

    recipe = train_variant(tmp_path, offload)
    assert failed(check_manifests(recipe, defaults)) == []  # 80Gi covers it
    small = tmp_path / "small"
    render(small, {"GPU_WORKER_MEMORY": "64Gi"})
    problems = failed(check_manifests(recipe, small))
    assert problems and all("GPU_WORKER_MEMORY of at least 80Gi" in p for p in problems)


# -- the README's steps -------------------------------------------------------------------


def test_the_readme_steps_match_the_manifests(tmp_path):
    values = render(tmp_path, readme_render_env())
    manifests = Manifests.load(tmp_path)
    commands = readme_commands()
    namespace = values["NAMESPACE"]

    applied = [c[c.index("-f") + 1] for c in commands if c[:2] == ["kubectl", "apply"]]
    names = [Path(a).name for a in applied]
    assert all(a.startswith("build/kuberay/") for a in applied)
    # Everything but the alternative RayCluster is applied, each after what it needs.
    assert set(names) == {p.name for p in tmp_path.glob("*.yaml")} - {"raycluster.yaml"}
    order = {name: i for i, name in enumerate(names)}
    assert order["pvc.yaml"] < order["weights.yaml"] < order["vllm.yaml"] < order["rayjob.yaml"]

    (secret,) = [c for c in commands if c[1:5] == ["-n", namespace, "create", "secret"]]
    name = secret[6]
    keys = {w.removeprefix("--from-literal=").split("=", 1)[0] for w in secret[7:]}
    assert manifests.secret_keys() == {name: keys}

    def position(*words: str) -> int:
        return next(i for i, c in enumerate(commands) if c[: len(words)] == list(words))

    def applies(name: str) -> int:
        return position("kubectl", "apply", "-f", f"build/kuberay/{name}")

    (job,) = manifests.of_kind("Job")
    (deployment,) = manifests.of_kind("Deployment")
    (rayjob,) = manifests.of_kind("RayJob")
    wait = position("kubectl", "-n", namespace, "wait")
    rollout = position("kubectl", "-n", namespace, "rollout")
    watch = position("kubectl", "-n", namespace, "get", "rayjob")
    assert f"job/{job['metadata']['name']}" in commands[wait]
    assert f"deployment/{deployment['metadata']['name']}" in commands[rollout]
    assert rayjob["metadata"]["name"] in commands[watch]
    # The weights are in place before vLLM or the job starts, the keys before any pod.
    secret_at = commands.index(secret)
    assert applies("pvc.yaml") < secret_at < applies("weights.yaml") < wait
    assert wait < applies("vllm.yaml") < rollout < applies("rayjob.yaml") < watch
    doctor = next(c for c in commands if c[:2] == ["datapipe", "doctor"])
    render_out = next(c for c in commands if "docker/render-manifests.sh" in c)
    assert doctor[doctor.index("--manifests") + 1] == render_out[render_out.index("--out") + 1]


def test_doctor_manifests_on_the_command_line(defaults, tmp_path):
    ok = CliRunner().invoke(app, ["doctor", str(TRAIN), "--manifests", str(defaults)])
    assert ok.exit_code == 0, ok.output
    assert "ready" in ok.output
    render(tmp_path, {"GPU_WORKERS": "4"})
    small = CliRunner().invoke(
        app, ["doctor", str(TRAIN), "--manifests", str(tmp_path)], terminal_width=250
    )
    assert small.exit_code == 1
    assert "cannot run on the cluster of" in " ".join(small.output.split())
    assert "GPU_WORKERS" in small.output
    empty = CliRunner().invoke(app, ["doctor", str(TRAIN), "--manifests", str(tmp_path / "x")])
    assert empty.exit_code != 0 and "render-manifests.sh" in " ".join(empty.output.split())


def test_an_invalid_auth_mode_is_refused_at_render_time(tmp_path):
    with pytest.raises(RENDER.EnvFileError, match="RAY_AUTH_MODE='tokens': must be one of"):
        render(tmp_path, {"RAY_AUTH_MODE": "tokens"})
