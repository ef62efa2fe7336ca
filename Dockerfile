# The ray-syncer operator image: the official Ray image of exactly the Ray version pyproject.toml
# pins (tests/deploy checks the tag), plus the ray-syncer wheel that `make build` leaves in dist/.
# Head and worker pods of deploy/ray-cluster.yaml both run it: the head runs the operator next
# to the Ray head (ray-syncer-head), the workers host the shard actors, which import ray_syncer.
FROM rayproject/ray:2.60.0-py311

ARG RAY_SYNCER_VERSION=0.1.0

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
RUN pip install --no-cache-dir "/tmp/wheels/ray_syncer-${RAY_SYNCER_VERSION}-py3-none-any.whl" \
 && rm -rf /tmp/wheels \
 && python -c "import ray, ray_syncer; assert ray.__version__ == '2.60.0', ray.__version__" \
 && ray-syncer --version

COPY --chmod=0755 deploy/ray-syncer-head.sh /usr/local/bin/ray-syncer-head

WORKDIR /home/ray
CMD ["ray-syncer", "--help"]
