#!/usr/bin/env bash
# Everything the test suite needs, in the order that avoids a multi-GB download:
# torch and torchvision first, alone, at the versions this machine class has on local disk;
# then datapipe with its dev, model and API extras; then SAM-2, a source package that must
# build against the torch already installed and without its CUDA extension.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --upgrade pip
python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
python -m pip install --quiet -e '.[dev,models,api]'
SAM2_BUILD_CUDA=0 python -m pip install --quiet --no-build-isolation sam2
