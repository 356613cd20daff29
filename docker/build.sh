#!/usr/bin/env bash
# Build (and optionally push) the datapipe images from the repository root:
#
#   docker/build.sh                  # both targets: datapipe-head and datapipe-gpu-worker
#   docker/build.sh gpu-worker       # one target
#   docker/build.sh --push           # build both, then push (refuses to overwrite a tag)
#   docker/build.sh --push --force   # push even if the tag exists in the registry
#
# Every build arg docker/Dockerfile declares is taken from docker/versions.env (sourced, so
# site settings such as IMAGE_REGISTRY may come from the environment; pinned versions may not).
# Images: $IMAGE_REGISTRY/datapipe-<target>:$DATAPIPE_IMAGE_TAG.
# Needs Docker with BuildKit (the default since Docker 23): the Dockerfile uses cache mounts,
# bind mounts and docker/Dockerfile.dockerignore.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
dockerfile="$here/Dockerfile"

push=0
force=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --push) push=1 ;;
    --force) force=1 ;;
    head|gpu-worker) targets+=("$arg") ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(head gpu-worker)

# One parser for versions.env: docker/render.py rejects anything outside the format both it
# and bash understand, so the values sourced below are the ones the manifests get.
python="$(command -v python3 || command -v python)"
"$python" "$here/render.py" --get RAY_VERSION > /dev/null
set -a
# shellcheck source=/dev/null
. "$here/versions.env"
set +a

# --build-arg for every ARG in the Dockerfile, each of which must be defined in versions.env.
build_args=()
while read -r name; do
  if [ -z "${!name:-}" ]; then
    echo "docker/Dockerfile declares ARG $name but docker/versions.env does not define it" >&2
    exit 2
  fi
  build_args+=(--build-arg "$name=${!name}")
done < <(sed -n 's/^ARG \([A-Z][A-Z0-9_]*\).*/\1/p' "$dockerfile" | sort -u)

export DOCKER_BUILDKIT=1
for target in "${targets[@]}"; do
  image="$IMAGE_REGISTRY/datapipe-$target:$DATAPIPE_IMAGE_TAG"
  if [ "$push" = 1 ] && [ "$force" = 0 ] && docker manifest inspect "$image" > /dev/null 2>&1; then
    echo "$image already exists in the registry: bump DATAPIPE_IMAGE_TAG in docker/versions.env" >&2
    echo "(nodes that pulled the old image keep it: imagePullPolicy is IfNotPresent), or --force" >&2
    exit 1
  fi
  echo "building $image (target $target)" >&2
  revision="$(git -C "$root" rev-parse HEAD 2> /dev/null || echo unknown)"
  if [ -n "$(git -C "$root" status --porcelain 2> /dev/null)" ]; then revision="$revision-dirty"; fi
  docker build \
    --file "$dockerfile" \
    --target "$target" \
    "${build_args[@]}" \
    --label "org.opencontainers.image.title=datapipe-$target" \
    --label "org.opencontainers.image.version=$DATAPIPE_IMAGE_TAG" \
    --label "org.opencontainers.image.revision=$revision" \
    --tag "$image" \
    "$root"
  if [ "$push" = 1 ]; then
    docker push "$image"
  fi
done
