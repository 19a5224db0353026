# The front door. `make run` sets everything up and runs the whole job on the embedded
# defaults; `make test` sets up and runs the tests. Both are safe to run again.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
BACKEND ?= optimum
MODELS_DIR ?= models
STAMP := $(VENV)/.installed
TOOLS_STAMP := .tools/.installed

export NNCF_EXTENSION_LOAD_TIMEOUT ?= 0
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install tools run train serve test test-fast lint chart-test bench load-test images clean help

help:
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv with every extra (training, both services, client, dev)

# torch first, pinned: it is the CPU build on this machine's disk. optimum-intel declares
# torchvision, and PyPI's torchvision breaks `import optimum.intel` beside this torch, so it
# is removed again; optimum-intel works without it.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	$(PIP) uninstall --quiet --yes torchvision
	$(PY) -c "import optimum.intel, onnxruntime, nncf; assert 'OpenVINOExecutionProvider' in onnxruntime.get_available_providers()"
	touch $@

tools: $(TOOLS_STAMP) ## fetch real helm/kubectl and the linters into .tools/

$(TOOLS_STAMP): helm/install-tools.sh
	bash helm/install-tools.sh
	touch $@

run: install ## train (or reuse) -> serve -> ask sample questions -> stop  (BACKEND=optimum|onnxruntime)
	$(VENV)/bin/qatflow local --backend $(BACKEND) --models-dir $(MODELS_DIR)

train: install ## train and publish a model version into $(MODELS_DIR)
	$(VENV)/bin/qatflow train --output-dir $(MODELS_DIR)

serve: install ## serve the newest model in $(MODELS_DIR) on :8080 (BACKEND=optimum|onnxruntime)
	$(VENV)/bin/qatflow serve --backend $(BACKEND) --models-dir $(MODELS_DIR)

# Two workers: much of the suite waits on services, helm and subprocesses, so two processes on
# two cores finish in three quarters of the time (8 m 48 s against 11 m 24 s, measured).
test: install tools ## every test, the chart's included
	$(PY) -m pytest -n 2

test-fast: install ## the tests that train nothing
	$(PY) -m pytest -m "not slow and not chart"

lint: install tools ## ruff, mypy, shellcheck, hadolint
	$(VENV)/bin/ruff format --check services tests bench dockerfiles
	$(VENV)/bin/ruff check services tests bench dockerfiles
	$(VENV)/bin/mypy
	.tools/venv/bin/shellcheck helm/install-tools.sh docs/real-cluster.sh dockerfiles/*.sh .ci/run
	.tools/venv/bin/hadolint dockerfiles/*.Dockerfile

chart-test: install tools ## render, validate and scan the Helm chart (no training)
	$(PY) -m pytest tests/chart tests/docker -m "not slow"

bench: install ## benchmark report into bench/reports (after `make run` or `make train`)
	$(PY) -m bench --models-dir $(MODELS_DIR)

load-test: install ## 16 clients x 60 s against each HTTP backend -> bench/reports/load-*.json
	$(PY) -m tests.reliability.load --clients 16 --seconds 60 --report-dir bench/reports

VERSION ?= 0.1.0
IMAGES := training optimum onnxruntime client
# Build arguments (empty: the Dockerfiles' defaults): the base image, a wheel index holding the
# CPU torch (default: PyTorch's CPU index), a PEM file of CAs the builds trust besides the base's.
PYTHON_IMAGE ?=
TORCH_INDEX_URL ?=
EXTRA_CA_CERTS_FILE ?=
DOCKER_BUILD_FLAGS ?=
BUILD_ARGS = $(if $(PYTHON_IMAGE),--build-arg PYTHON_IMAGE=$(PYTHON_IMAGE)) \
	$(if $(TORCH_INDEX_URL),--build-arg TORCH_INDEX_URL=$(TORCH_INDEX_URL)) \
	$(if $(EXTRA_CA_CERTS_FILE),--build-arg EXTRA_CA_CERTS="$$(cat $(EXTRA_CA_CERTS_FILE))")

images: engine $(addprefix image-,$(IMAGES)) ## build every image (needs a Docker engine), print sizes
	@$(PYTHON) dockerfiles/image_sizes.py --tag $(VERSION) $(IMAGES)

image-%:
	start=$$(date +%s); \
	docker build $(DOCKER_BUILD_FLAGS) $(BUILD_ARGS) -f dockerfiles/$*.Dockerfile -t qatflow-$*:$(VERSION) . \
	&& echo "qatflow-$*:$(VERSION) built in $$(( $$(date +%s) - start )) s"

.PHONY: local-images engine e2e e2e-images

local-images: engine ## the images without registry access: debootstrap base, local torch index
	bash dockerfiles/local-images.sh VERSION=$(VERSION)

engine: ## start dockerd if no Docker engine answers (root)
	bash dockerfiles/docker-engine.sh

# The end-to-end tiers (marker e2e), each on real engines: `make test` leaves them out, `.ci/run`
# runs them all after it.
E2E := e2e-images
# How e2e-images gets its images: local-images (no registry access, root) or images.
E2E_IMAGES_BUILD ?= local-images

e2e: $(E2E) ## every end-to-end tier

e2e-images: install $(E2E_IMAGES_BUILD) ## the images for real: train, serve hardened, ask, compose
	$(PY) -m pytest -m e2e tests/docker

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
