#!/usr/bin/env bash
# Which container engine `make image` and the deploy rehearsal use, and how to call it here.
#
# Prints two lines, or nothing (exit 1) when no engine is present:
#   1. the engine and its global flags, e.g. `podman --runtime runc --cgroup-manager cgroupfs`;
#   2. flags every build or run of a container needs on this machine.
# CONTAINER_ENGINE=docker|podman|buildah picks one; otherwise a reachable Docker engine, else
# podman, else buildah (both daemonless). One place, read by hack/image.sh and by the rehearsal
# (tests/rehearsal/podman.py), so that both run containers the same way.
#
# Why the flags (podman/buildah): runc rather than crun where runc is installed (crun fails on
# hybrid cgroup hierarchies); cgroupfs where systemd is not PID 1; the host network (a registry-
# less machine has no CNI setup worth trusting, and the rehearsal's apiservers listen on
# loopback); and explicit rlimits no higher than the host's, because podman otherwise asks for
# more open files than an unprivileged sandbox may raise to (CONTAINER_ULIMITS overrides).
set -euo pipefail

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v podman >/dev/null 2>&1; then
    engine=podman
  elif command -v buildah >/dev/null 2>&1; then
    engine=buildah
  else
    exit 1
  fi
fi

case "$engine" in
  docker)
    echo "docker"
    echo "--network host"
    ;;
  podman|buildah)
    global=("$engine")
    if [ ! -d /run/systemd/system ]; then global+=(--cgroup-manager cgroupfs); fi
    if [ "$engine" = podman ] && command -v runc >/dev/null 2>&1; then global+=(--runtime runc); fi
    nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
    [ "$nofile" = unlimited ] || [ "$nofile" -gt 16384 ] && nofile=16384
    [ "$nproc" = unlimited ] || [ "$nproc" -gt 16384 ] && nproc=16384
    flags="--network host ${CONTAINER_ULIMITS:---ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc}"
    if [ "$engine" = buildah ] && command -v runc >/dev/null 2>&1; then flags+=" --runtime runc"; fi
    echo "${global[*]}"
    echo "$flags"
    ;;
  *)
    echo "hack/engine.sh: CONTAINER_ENGINE=$engine is not docker, podman or buildah" >&2
    exit 2
    ;;
esac
