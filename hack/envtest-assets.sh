#!/usr/bin/env bash
# Prints a KUBEBUILDER_ASSETS folder (kube-apiserver, etcd, kube-controller-manager), or nothing.
#
# KUBEBUILDER_ASSETS itself when it is set (controller-runtime's envtest convention: a user with
# `setup-envtest` binaries gets the same); otherwise ../shared/envtest/*.tar.xz (the binaries this
# project's machines provide) unpacked once into the ignored .cache/envtest/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi
archive=$(ls ../shared/envtest/*.tar.xz 2>/dev/null | head -n 1 || true)
[ -n "$archive" ] || exit 0
mkdir -p .cache/envtest
if [ ! -x .cache/envtest/bin/kube-apiserver ] || [ "$archive" -nt .cache/envtest/bin/kube-apiserver ]; then
  tar -xJf "$archive" -C .cache/envtest
fi
echo "$PWD/.cache/envtest/bin"
