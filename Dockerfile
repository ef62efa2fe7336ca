# The ray-syncer operator image: Ray of exactly the version pyproject.toml pins (tests/deploy
# checks it), plus the ray-syncer wheel that `make build` leaves in dist/. Head and worker pods of
# deploy/base/ray-cluster.yaml both run it: the head runs the operator next to the Ray head
# (ray-syncer-head), the workers host the shard actors, which import ray_syncer.
#
# `make image` builds it (hack/image.sh). BASE_IMAGE is the official Ray image; where no registry
# can be reached, hack/image.sh builds an equivalent base locally (hack/image/ray-base.Containerfile:
# Debian, the pinned Ray from PyPI, the same `ray` user and paths) and passes it here. Everything
# below is the same either way: same entry points, same non-root user, same wheel.
ARG BASE_IMAGE=rayproject/ray:2.60.0-py311
FROM ${BASE_IMAGE}

ARG RAY_SYNCER_VERSION=0.1.0
# A CA bundle for pip where PyPI sits behind a TLS-inspecting proxy. hack/image.sh mounts the
# build machine's bundle for the build only; the image never keeps it. Empty: pip's own bundle.
ARG PIP_CERT=

LABEL org.opencontainers.image.title="ray-syncer" \
      org.opencontainers.image.description="KRMSyncer on Ray: active-passive DR for Kubernetes" \
      org.opencontainers.image.version="${RAY_SYNCER_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.ray.version="2.60.0"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAY_USAGE_STATS_ENABLED=0

# Non-root, numeric so that `runAsNonRoot: true` can be verified by the kubelet
# (uid 1000 / gid 100 is the `ray` user of the rayproject/ray images).
USER 1000:100

# Only the wheel of this version, never "whatever is in dist/"; Ray itself is already in the base
# image at the pinned version, and the import check below fails the build if pip moved it.
COPY --chown=1000:100 dist/ray_syncer-${RAY_SYNCER_VERSION}-py3-none-any.whl /tmp/wheels/
RUN if [ -n "$PIP_CERT" ]; then export PIP_CERT; else unset PIP_CERT; fi \
 && pip install --no-cache-dir "/tmp/wheels/ray_syncer-${RAY_SYNCER_VERSION}-py3-none-any.whl" \
 && rm -rf /tmp/wheels \
 && python -c "import ray, ray_syncer; assert ray.__version__ == '2.60.0', ray.__version__" \
 && ray-syncer --version

COPY --chmod=0755 deploy/ray-syncer-head.sh /usr/local/bin/ray-syncer-head

WORKDIR /home/ray
CMD ["ray-syncer", "--help"]
