#!/usr/bin/env bash
# `make test-integration`: the end-to-end and conformance suites against real clusters.
#
#   * KRMSYNCER_E2E_SOURCE_KUBECONFIG and KRMSYNCER_E2E_DEST_KUBECONFIG set: run the suites
#     against those two clusters (any real pair, also one in use). The tests make their own
#     namespaces, KRMSyncers, CRDs and identities, labelled test.krmsyncer.gkelabs.io/run=<id>,
#     delete them after each test, and the run fails naming anything left (tests/cleanup.py).
#   * otherwise, with kind, kubectl and a running Docker engine: create two kind clusters,
#     "source" and "destination", install the KRMSyncer CRD in both, store the destination's
#     kubeconfig as a Secret in the source exactly as docs/deploy.md's walkthrough does, run
#     the suites (they start the operator locally, on a local Ray, against the two clusters),
#     and delete the clusters on exit (KEEP_CLUSTERS=1 keeps them for debugging).
#   * otherwise: say precisely what is missing and exit 2.
#
# The destination's kubeconfig carries the control-plane container's IP on the kind Docker
# network: reachable from pods in the source cluster and, on Linux, from this host.
# Extra arguments are passed to pytest, e.g. `bash hack/test-integration.sh -k failover`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
SOURCE="${KIND_SOURCE:-source}"
DEST="${KIND_DEST:-destination}"
SECRET_NAMESPACE="${KRMSYNCER_E2E_SECRET_NAMESPACE:-default}"

run_suites() {
  echo "test-integration: source=$1 destination=$2"
  # The suites' "real" substrate is this pair (tests/substrate.py); the conformance suite uses
  # the source. KUBEBUILDER_ASSETS is dropped so that envtest does not take precedence.
  (unset KUBEBUILDER_ASSETS
   KRMSYNCER_E2E_SOURCE_KUBECONFIG="$1" KRMSYNCER_E2E_DEST_KUBECONFIG="$2" KRMSYNCER_REQUIRE_REAL=1 \
     "$PYTHON" -m pytest -q tests/e2e tests/dr tests/conformance "${@:3}")
}

if [[ -n "${KRMSYNCER_E2E_SOURCE_KUBECONFIG:-}" && -n "${KRMSYNCER_E2E_DEST_KUBECONFIG:-}" ]]; then
  run_suites "$KRMSYNCER_E2E_SOURCE_KUBECONFIG" "$KRMSYNCER_E2E_DEST_KUBECONFIG" "$@"
  exit
fi

missing=()
[[ -n "${KRMSYNCER_E2E_SOURCE_KUBECONFIG:-}${KRMSYNCER_E2E_DEST_KUBECONFIG:-}" ]] &&
  missing+=("both KRMSYNCER_E2E_SOURCE_KUBECONFIG and KRMSYNCER_E2E_DEST_KUBECONFIG (only one is set)")
command -v kind >/dev/null 2>&1 || missing+=("kind (https://kind.sigs.k8s.io) on PATH")
command -v kubectl >/dev/null 2>&1 || missing+=("kubectl on PATH")
if ! command -v docker >/dev/null 2>&1; then
  missing+=("docker on PATH")
elif ! docker info >/dev/null 2>&1; then
  missing+=("a running Docker engine ('docker info' failed)")
fi
if (( ${#missing[@]} )); then
  {
    echo "test-integration: cannot run. It needs EITHER two clusters, given as"
    echo "    KRMSYNCER_E2E_SOURCE_KUBECONFIG=/path/to/source.kubeconfig"
    echo "    KRMSYNCER_E2E_DEST_KUBECONFIG=/path/to/destination.kubeconfig"
    echo "OR kind, kubectl and a Docker engine to create two kind clusters. Missing here:"
    printf '    - %s\n' "${missing[@]}"
  } >&2
  exit 2
fi

existing="$(kind get clusters 2>/dev/null || true)"
for name in "$SOURCE" "$DEST"; do
  if grep -qx "$name" <<<"$existing"; then
    echo "test-integration: a kind cluster named '$name' already exists; delete it or set KIND_SOURCE/KIND_DEST" >&2
    exit 2
  fi
done

work="$(mktemp -d)"
created=()
cleanup() {
  if [[ "${KEEP_CLUSTERS:-0}" == 1 ]]; then
    echo "test-integration: keeping kind clusters ${created[*]:-} (kubeconfigs in $work)"
    return
  fi
  for name in "${created[@]}"; do kind delete cluster --name "$name" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

for name in "$SOURCE" "$DEST"; do
  created+=("$name")
  kind create cluster --name "$name" --wait 120s
  kind get kubeconfig --name "$name" >"$work/$name.host.kubeconfig"
  kubectl --kubeconfig "$work/$name.host.kubeconfig" apply --server-side -f crds/krmsyncer.yaml
done
src="$work/$SOURCE.host.kubeconfig"

# The walkthrough's step: the destination's kubeconfig, flattened, with the server address
# replaced by one the source cluster's pods can reach (the control plane's Docker-network IP).
dest_ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$DEST-control-plane")"
kubectl --kubeconfig "$work/$DEST.host.kubeconfig" config view --minify --flatten \
  --context "kind-$DEST" |
  sed -E "s#server: https://[^[:space:]]+#server: https://$dest_ip:6443#" >"$work/$DEST.kubeconfig"
kubectl --kubeconfig "$src" -n "$SECRET_NAMESPACE" create secret generic remote-kubeconfig \
  --from-file=kubeconfig="$work/$DEST.kubeconfig"

KRMSYNCER_E2E_SECRET_NAMESPACE="$SECRET_NAMESPACE" KRMSYNCER_E2E_DEST_SECRET=remote-kubeconfig \
  run_suites "$src" "$work/$DEST.kubeconfig" "$@"
