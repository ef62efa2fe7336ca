# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast test-distributed lint crd build image deploy-rehearsal bench chaos test-integration clean

# Creates the virtualenv if absent and installs the package with its test and bench extras, and
# the test kit (testkit/: the in-memory API servers of the demo and the tests).
$(STAMP): pyproject.toml testkit/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]' -e ./testkit
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/ray-syncer demo $(DEMO_ARGS)

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Everything except the end-to-end Ray suite, for a quick inner loop.
test-fast: install
	$(BIN)/python -m pytest -q -m "not ray and not slow" $(PYTEST_ARGS)

# Only the multi-node Ray suite (a head and three worker nodes on this machine; `make test`
# runs it too, first). The dashboard's browser test needs Debian's chromium.
test-distributed: install
	$(BIN)/python -m pytest -q -rs tests/distributed $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check ray_syncer tests benchmarks
	$(BIN)/mypy ray_syncer

# The KRMSyncer CRD's generated descriptions (ray_syncer/api/crd.py) written into
# ray_syncer/data/krmsyncer.yaml, and its copies crds/ and deploy/crd/ made identical to it.
crd: install
	$(BIN)/python hack/gen-crd.py

# The wheel and the sdist, in dist/.
build: install
	$(BIN)/python -m pip wheel --quiet --no-deps -w dist .
	$(BIN)/python -m pip install --quiet build && $(BIN)/python -m build --sdist --outdir dist .

# The image ray-syncer:<version> with docker, podman or buildah (hack/image.sh says which base).
image: build
	bash hack/image.sh

# The deployment rehearsed: the image's head and worker containers, run from deploy/ as KubeRay
# would, syncing between two real control planes (needs podman and KUBEBUILDER_ASSETS or
# ../shared/envtest). Builds the image first.
deploy-rehearsal: image
	@assets=$$(bash hack/envtest-assets.sh); \
	KUBEBUILDER_ASSETS="$$assets" KRMSYNCER_REQUIRE_REHEARSAL=1 \
		$(BIN)/python -m pytest -q -rs -p no:cacheprovider tests/rehearsal $(PYTEST_ARGS)

# In-memory servers always; real control planes too when hack/envtest-assets.sh finds binaries.
bench: install
	$(BIN)/python -m benchmarks.churn --substrate memory $(BENCH_ARGS)
	@assets=$$(bash hack/envtest-assets.sh); \
	if [ -n "$$assets" ]; then \
		KUBEBUILDER_ASSETS="$$assets" $(BIN)/python -m benchmarks.churn --substrate envtest $(BENCH_ARGS); \
	else \
		echo "make bench: no KUBEBUILDER_ASSETS (and no ../shared/envtest): no real-control-plane run"; \
	fi

chaos: install
	$(BIN)/python -m pytest -q tests/chaos -m slow --chaos-long $(PYTEST_ARGS)

test-integration: install
	bash hack/test-integration.sh

clean:
	rm -rf $(VENV) dist build *.egg-info .pytest_cache .mypy_cache .ruff_cache
