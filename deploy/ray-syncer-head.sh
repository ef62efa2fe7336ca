#!/usr/bin/env bash
# Entry point of the Ray head container (installed in the image as /usr/local/bin/ray-syncer-head).
#
# Why it exists: the operator is a long-running Ray driver that must live next to the Ray head.
# The RayCluster carries `ray.io/overwrite-container-cmd: "true"`, so KubeRay hands us its
# generated `ray start --head ... --block` in $KUBERAY_GEN_RAY_START_CMD instead of running it.
# This script runs that command, waits until the GCS answers, then runs
# `ray-syncer run --ray-address=auto "$@"` beside it:
#   * the operator exits or crashes -> it is restarted here with backoff while Ray (and the live
#     shard actors, which the supervisor re-attaches to by name) keeps running;
#   * Ray exits -> the operator is stopped and the container exits non-zero, so the kubelet
#     restarts the whole head; the operator then rebuilds every shard from the KRMSyncers;
#   * SIGTERM (pod deletion) -> the operator is stopped first (it drains in-flight writes),
#     then Ray.
# Ray token auth: KubeRay injects RAY_AUTH_MODE/RAY_AUTH_TOKEN into this container; both
# `ray health-check` and the operator's ray.init inherit them from the environment.
set -uo pipefail

: "${KUBERAY_GEN_RAY_START_CMD:?is unset: run this only in a KubeRay head with ray.io/overwrite-container-cmd: \"true\"}"
# KubeRay sets RAY_PORT to the head's GCS port (rayStartParams "port", default 6379).
GCS_ADDRESS="${RAY_SYNCER_GCS_ADDRESS:-127.0.0.1:${RAY_PORT:-6379}}"
BACKOFF_MAX="${RAY_SYNCER_RESTART_BACKOFF_MAX:-30}"

ulimit -n 65536 2>/dev/null || echo "ray-syncer-head: could not raise the open-files limit" >&2

bash -c "$KUBERAY_GEN_RAY_START_CMD" &
ray_pid=$!
op_pid=""
stopping=0

stop_all() {
  stopping=1
  if [[ -n "$op_pid" ]]; then
    kill -TERM "$op_pid" 2>/dev/null
    wait "$op_pid" 2>/dev/null
  fi
  # `ray stop` ends the raylet, GCS and dashboard that `ray start --block` launched.
  ray stop >/dev/null 2>&1
  kill -TERM "$ray_pid" 2>/dev/null
  wait "$ray_pid" 2>/dev/null
}
trap 'stop_all; exit 0' TERM INT

until ray health-check --address "$GCS_ADDRESS" >/dev/null 2>&1; do
  if ! kill -0 "$ray_pid" 2>/dev/null; then
    wait "$ray_pid"
    echo "ray-syncer-head: ray start exited before the GCS became healthy" >&2
    exit 1
  fi
  sleep 1
done

backoff=1
while kill -0 "$ray_pid" 2>/dev/null; do
  started=$SECONDS
  ray-syncer run --ray-address=auto "$@" &
  op_pid=$!
  # Returns when either process ends (or at once when a trapped signal arrives).
  wait -n "$op_pid" "$ray_pid"
  [[ $stopping == 1 ]] && exit 0
  if ! kill -0 "$ray_pid" 2>/dev/null; then
    echo "ray-syncer-head: Ray exited; stopping the operator so the container restarts" >&2
    stop_all
    exit 1
  fi
  wait "$op_pid"
  echo "ray-syncer-head: the operator exited with status $?; restarting it in ${backoff}s" >&2
  op_pid=""
  # A run that lasted a while resets the backoff; a crash loop backs off up to BACKOFF_MAX.
  if (( SECONDS - started > 60 )); then backoff=1; fi
  sleep "$backoff" & wait $!
  backoff=$(( backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2 ))
done
echo "ray-syncer-head: Ray exited" >&2
stop_all
exit 1
