# Every target installs what it needs into .venv first; `make setup` is idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
ARTIFACTS ?= artifacts
HOST ?= 127.0.0.1
PORT ?= 8000

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: setup tools container-tools image kube-play train serve test bench bench-mlserver soak fuzz lint format clean grpc-code

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned (==2.13.0) in the train extra: pip takes the CPU wheel on this machine's disk.
	$(PY) -m pip install --quiet -e '.[train,serve,dev]'
	rm -f $(VENV)/.installed-* && touch $@

# wrk (Debian) is the load generator `make bench` and its tests drive, h2load (Debian nghttp2-client) its
# gRPC one; promtool (Debian `prometheus`) and kustomize (PyPI `pykustomize`) check deploy/ in tests/deploy.
tools: setup
	@command -v wrk >/dev/null 2>&1 || { echo "installing wrk (Debian package)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk >/dev/null; }
	@command -v h2load >/dev/null 2>&1 || { echo "installing h2load (Debian package nghttp2-client)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nghttp2-client >/dev/null; }
	@command -v promtool >/dev/null 2>&1 || { echo "installing promtool (Debian package prometheus)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq prometheus >/dev/null; }
	@# tests/web: Debian's chromium driven by Playwright for Python (Playwright's own browser download fails here)
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (Debian package)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@# kustomize itself (its Go library in a PyPI wheel, pure-Python cffi bindings declared for 3.14 only; they run on 3.11)
	@$(PY) -c 'import pykustomize' 2>/dev/null || $(PY) -m pip install --quiet --ignore-requires-python 'pykustomize==0.1.4'

# podman (with buildah, runc, and debootstrap for a base image where no registry answers) builds and runs
# the image in `make image`, `make kube-play` and tests/deploy (Debian packages; docker with a daemon also works).
container-tools:
	@command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 || { \
	  echo "installing podman, buildah, runc, debootstrap (Debian packages)"; $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq podman buildah runc debootstrap >/dev/null; }

# deploy/Dockerfile -> modelserve:<version> (deploy/image/build.sh: engine, base image, pip configuration).
IMAGE ?= modelserve:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
image: setup container-tools
	PYTHON=$(PY) IMAGE=$(IMAGE) deploy/image/build.sh

# The production overlay's Deployment under `podman kube play` with that image, checked as a cluster would.
kube-play: image tools
	MODELSERVE_IMAGE=$(IMAGE) $(PY) -m pytest -p no:cacheprovider -q -s tests/deploy/test_image.py tests/deploy/test_kube_play.py

train: setup
	$(PY) -m training --artifacts-dir $(ARTIFACTS)

# Train only if no artifact exists yet, then serve.
$(ARTIFACTS)/heart/CURRENT $(ARTIFACTS)/digits/CURRENT:
	$(MAKE) train

serve: setup $(ARTIFACTS)/heart/CURRENT $(ARTIFACTS)/digits/CURRENT
	SERVICE_HOST=$(HOST) SERVICE_PORT=$(PORT) SERVICE_ARTIFACTS_DIR=$(ARTIFACTS) $(PY) -m service

test: setup tools container-tools
	$(PY) -m pytest

bench: setup tools $(ARTIFACTS)/heart/CURRENT $(ARTIFACTS)/digits/CURRENT
	$(PY) -m bench --artifacts-dir $(ARTIFACTS)

# The service against MLServer 1.7 on the same model and the same V2 JSON and gRPC requests, in one run
# (bench/mlserver.py). MLServer gets a virtualenv of its own: its pinned dependencies conflict with the service's.
MLSERVER_VENV := .venv-mlserver
$(MLSERVER_VENV)/bin/mlserver:
	$(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/python -m pip install --quiet "mlserver==1.7.1" onnxruntime numpy

bench-mlserver: setup tools $(MLSERVER_VENV)/bin/mlserver $(ARTIFACTS)/heart/CURRENT
	$(PY) -m bench.mlserver --mlserver $(MLSERVER_VENV)/bin/mlserver --artifacts-dir $(ARTIFACTS)

# 60 s of mixed load from 64 clients on 2 workers with a hot reload every 5 s (bench/README.md, "Soak").
SOAK_SECONDS ?= 60
soak: setup $(ARTIFACTS)/heart/CURRENT $(ARTIFACTS)/digits/CURRENT
	$(PY) -m bench.soak --artifacts-dir $(ARTIFACTS) --seconds $(SOAK_SECONDS)

# The reliability suite's fuzzers with a large budget, exploring (random, seeded by FUZZ_SEED; printed):
# schemathesis over the whole OpenAPI surface of a real process, and the request-model properties.
# Tables in bench-results/fuzz-openapi.md. `make test` runs the same tests small and derandomised.
FUZZ_EXAMPLES ?= 1000
FUZZ_SEED ?= $(shell date +%s)
fuzz: setup
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) $(PY) -m pytest -p no:cacheprovider -q \
	  tests/reliability/test_fuzz_openapi.py tests/reliability/test_request_properties.py

# service/api/grpc/inference_pb2*.py from inference.proto (commit the result: the service needs no protoc).
grpc-code: setup
	$(PY) -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. service/api/grpc/inference.proto

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) $(MLSERVER_VENV) .pytest_cache .ruff_cache
