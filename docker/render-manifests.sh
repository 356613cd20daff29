#!/usr/bin/env bash
# Render docker/kuberay/*.yaml.tmpl into plain manifests, every ${NAME} taken from
# docker/versions.env (site settings may be overridden from the environment):
#
#   docker/render-manifests.sh                       # -> build/kuberay/*.yaml
#   GPU_WORKERS=16 IMAGE_REGISTRY=registry.internal/ml docker/render-manifests.sh --out /tmp/k8s
#
# Then check them against the recipe (`datapipe doctor pipelines/train.yaml --manifests
# build/kuberay`) and apply, in this order: pvc.yaml, the API keys Secret (README), weights.yaml
# (wait for the Job), vllm.yaml, then rayjob.yaml (or raycluster.yaml and `ray job submit`).
# The substitution is done by docker/render.py (Python standard library, no envsubst): it
# refuses a template that names a variable versions.env does not define.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="$(command -v python3 || command -v python)"
exec "$python" "$here/render.py" "$@"
