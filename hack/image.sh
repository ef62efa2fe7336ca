#!/usr/bin/env bash
# `make image`: builds the ray-syncer image (IMAGE, default ray-syncer:<version>) from the
# Dockerfile, with the engine hack/engine.sh picks (docker, else podman, else buildah).
#
# The base: BASE_IMAGE when set; else the official rayproject/ray:<ray>-py311 when it is present
# or can be pulled; else an equivalent built here (hack/image/ray-base.Containerfile) on a Debian
# bookworm root made by mmdebstrap, cached as localhost/ray-syncer-base:<ray>-py311 (delete that
# image, or set REBUILD_BASE=1, to build it from scratch). Either way the Dockerfile on top is the
# same, so users get the same entry points, non-root user and wheel.
#
# podman and buildah builds mount the machine's CA bundle (IMAGE_CA_DIR, default /etc/ssl/certs)
# read-only for pip, for PyPI behind a TLS-inspecting proxy; a mount is never part of the image.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)
ray_version=$(sed -n 's/.*"ray\[default\]==\([0-9][0-9.]*\)".*/\1/p' pyproject.toml)
IMAGE=${IMAGE:-ray-syncer:$version}
official="docker.io/rayproject/ray:${ray_version}-py311"
local_base="localhost/ray-syncer-base:${ray_version}-py311"
debian="localhost/ray-syncer-debian:bookworm"
wheel="dist/ray_syncer-${version}-py3-none-any.whl"

if ! mapfile -t eng < <(bash hack/engine.sh); then
  echo "make image: no container engine found (docker with a reachable daemon, podman or buildah)" >&2
  exit 1
fi
read -r -a engine <<<"${eng[0]}"
read -r -a flags <<<"${eng[1]}"
[ -f "$wheel" ] || { echo "make image: $wheel is missing (make build makes it)" >&2; exit 1; }

build_flags=("${flags[@]}")
ca_dir=${IMAGE_CA_DIR:-/etc/ssl/certs}
if [ "${engine[0]}" != docker ] && [ -f "$ca_dir/ca-certificates.crt" ]; then
  build_flags+=(-v "$ca_dir:/etc/ssl/certs:ro" --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
fi

exists() {
  case "${engine[0]}" in
    docker) "${engine[@]}" image inspect "$1" >/dev/null 2>&1 ;;
    podman) "${engine[@]}" image exists "$1" ;;
    buildah) "${engine[@]}" inspect --type image "$1" >/dev/null 2>&1 ;;
  esac
}

tmp=""
build_local_base() {
  local t0=$SECONDS
  command -v mmdebstrap >/dev/null 2>&1 || {
    echo "make image: $official cannot be pulled and mmdebstrap is missing to build an equivalent base" \
         "(apt-get install mmdebstrap, or set BASE_IMAGE)" >&2
    exit 1
  }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "make image: building the Debian bookworm root with mmdebstrap"
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates,wget \
    bookworm "$tmp/debian.tar"
  case "${engine[0]}" in
    buildah)
      ctr=$("${engine[@]}" from scratch)
      "${engine[@]}" add "$ctr" "$tmp/debian.tar" /
      "${engine[@]}" commit --rm "$ctr" "$debian" >/dev/null ;;
    *) "${engine[@]}" import "$tmp/debian.tar" "$debian" >/dev/null ;;
  esac
  rm -f "$tmp/debian.tar"
  echo "make image: building $local_base (the pinned Ray from PyPI)"
  "${engine[@]}" build "${build_flags[@]}" --build-arg "DEBIAN_IMAGE=$debian" \
    --build-arg "RAY_VERSION=$ray_version" -f hack/image/ray-base.Containerfile -t "$local_base" \
    hack/image
  echo "make image: base built in $(( SECONDS - t0 )) s"
}

t0=$SECONDS
base=${BASE_IMAGE:-}
if [ -z "$base" ]; then
  if exists "$official"; then
    base=$official
  elif [ "${REBUILD_BASE:-0}" != 1 ] && exists "$local_base"; then
    base=$local_base
  elif "${engine[@]}" pull "$official" >/dev/null 2>&1; then
    base=$official
  else
    echo "make image: $official cannot be pulled here; building an equivalent base locally"
    build_local_base
    base=$local_base
  fi
fi
echo "make image: $IMAGE on $base with ${engine[0]}"
"${engine[@]}" build "${build_flags[@]}" --build-arg "BASE_IMAGE=$base" \
  --build-arg "RAY_SYNCER_VERSION=$version" -t "$IMAGE" .
echo "make image: $IMAGE built in $(( SECONDS - t0 )) s"
