# The front door. `make run` sets everything up and runs the whole job on the embedded
# defaults; `make test` sets up and runs the tests. Both are safe to run again.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
BACKEND ?= optimum
MODELS_DIR ?= models
STAMP := $(VENV)/.installed
MLSERVER_VENV ?= .venv-mlserver
MLSERVER_STAMP := $(MLSERVER_VENV)/.installed
TOOLS_STAMP := .tools/.installed

# Real Kubernetes server binaries (etcd, kube-apiserver, -controller-manager, -scheduler) for
# the cluster tier of the tests (tests/cluster), unpacked by the workspace's shared/k8s/install.sh
# (beside the checkout, or /work/shared for a clone made elsewhere) where that exists. Elsewhere
# point KUBEBUILDER_ASSETS (envtest's convention) at such a directory, or the tier is skipped;
# under CI=true it fails instead.
K8S_INSTALL ?= $(firstword $(wildcard ../shared/k8s/install.sh /work/shared/k8s/install.sh))
K8S_ASSETS := .k8s-bin
ifneq ($(K8S_INSTALL),)
export KUBEBUILDER_ASSETS ?= $(CURDIR)/$(K8S_ASSETS)
K8S_STAMP := $(K8S_ASSETS)/.installed
endif

export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install tools k8s run train serve test test-fast lint chart-test cluster-test bench load-test images clean help

help:
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv with every extra (training, both services, client, dev)

# torch first, pinned: it is the CPU build on this machine's disk. optimum-intel declares
# torchvision, and PyPI's torchvision breaks `import optimum.intel` beside this torch, so it
# is removed again; optimum-intel works without it. Last, NNCF's CPU kernels are compiled, so
# that no training waits for the compiler.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	$(PIP) uninstall --quiet --yes torchvision
	$(PY) -c "import optimum.intel, onnxruntime, nncf; assert 'OpenVINOExecutionProvider' in onnxruntime.get_available_providers()"
	$(PY) -m qatflow.training.nncf_extension
	touch $@

.PHONY: mlserver
mlserver: $(MLSERVER_STAMP) ## MLServer in its own .venv-mlserver: the client tests' second KServe v2 server

# MLServer 1.7.1 requires fastapi<0.116: installed into .venv it would downgrade the services'
# fastapi and starlette, so it gets an environment of its own; the tests start it from there.
$(MLSERVER_STAMP): tests/mlserver_fixture/requirements.txt
	$(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MLSERVER_VENV)/bin/python -m pip install --quiet -r tests/mlserver_fixture/requirements.txt
	touch $@

tools: $(TOOLS_STAMP) ## fetch real helm/kubectl and the linters into .tools/

$(TOOLS_STAMP): helm/install-tools.sh
	bash helm/install-tools.sh
	touch $@

k8s: $(K8S_STAMP) ## unpack the Kubernetes control plane of the cluster tests into .k8s-bin/

# install.sh downloads etcd with `python3 -m pip`: the venv's, which a fresh machine has.
ifdef K8S_STAMP
$(K8S_STAMP): $(K8S_INSTALL) | $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash $(K8S_INSTALL) $(K8S_ASSETS)
	touch $@
endif

run: install ## train (or reuse) -> serve -> ask sample questions -> stop  (BACKEND=optimum|onnxruntime)
	$(VENV)/bin/qatflow local --backend $(BACKEND) --models-dir $(MODELS_DIR)

train: install ## train and publish a model version into $(MODELS_DIR)
	$(VENV)/bin/qatflow train --output-dir $(MODELS_DIR)

serve: install ## serve the newest model in $(MODELS_DIR) on :8080 (BACKEND=optimum|onnxruntime)
	$(VENV)/bin/qatflow serve --backend $(BACKEND) --models-dir $(MODELS_DIR)

# Two workers: much of the suite waits on services, helm and subprocesses, so two processes on
# two cores finish in three quarters of the time (8 m 48 s against 11 m 24 s, measured).
# The cluster tier's tests share one worker and one control plane (tests/conftest.py).
test: install tools mlserver k8s ## every test but the end-to-end tiers (make e2e)
	$(PY) -m pytest -n 2

test-fast: install mlserver ## the tests that train nothing
	$(PY) -m pytest -m "not slow and not chart and not cluster"

lint: install tools ## ruff, mypy, shellcheck, hadolint
	$(VENV)/bin/ruff format --check services tests bench dockerfiles
	$(VENV)/bin/ruff check services tests bench dockerfiles
	$(VENV)/bin/mypy
	.tools/venv/bin/shellcheck helm/install-tools.sh docs/real-cluster.sh dockerfiles/*.sh .ci/run
	.tools/venv/bin/hadolint dockerfiles/*.Dockerfile

chart-test: install tools ## render, validate and scan the Helm chart (no training)
	$(PY) -m pytest tests/chart tests/docker -m "not slow"

cluster-test: install tools k8s ## install the chart on a real Kubernetes control plane (simulated nodes)
	$(PY) -m pytest tests/cluster

bench: install ## benchmark report into bench/reports (after `make run` or `make train`)
	$(PY) -m bench --models-dir $(MODELS_DIR)

load-test: install ## 16 clients x 60 s against each HTTP backend -> bench/reports/load-*.json
	$(PY) -m tests.reliability.load --clients 16 --seconds 60 --report-dir bench/reports

VERSION ?= 0.1.0
IMAGES := training optimum onnxruntime client
# Build arguments (empty: the Dockerfiles' defaults): the base image, a wheel index holding the
# CPU torch (default: PyTorch's CPU index; given only to the Dockerfiles that install torch, as
# Docker warns of an argument a build does not use), a PEM file of CAs the builds trust besides
# the base's.
PYTHON_IMAGE ?=
TORCH_INDEX_URL ?=
EXTRA_CA_CERTS_FILE ?=
DOCKER_BUILD_FLAGS ?=
BUILD_ARGS = $(if $(PYTHON_IMAGE),--build-arg PYTHON_IMAGE=$(PYTHON_IMAGE)) \
	$(if $(and $(TORCH_INDEX_URL),$(shell grep -l '^ARG TORCH_INDEX_URL' dockerfiles/$*.Dockerfile)),--build-arg TORCH_INDEX_URL=$(TORCH_INDEX_URL)) \
	$(if $(EXTRA_CA_CERTS_FILE),--build-arg EXTRA_CA_CERTS="$$(cat $(EXTRA_CA_CERTS_FILE))")

images: engine $(addprefix image-,$(IMAGES)) ## build every image (needs a Docker engine), print sizes
	@$(PYTHON) dockerfiles/image_sizes.py --tag $(VERSION) $(IMAGES)

image-%:
	start=$$(date +%s); \
	docker build $(DOCKER_BUILD_FLAGS) $(BUILD_ARGS) -f dockerfiles/$*.Dockerfile -t qatflow-$*:$(VERSION) . \
	&& echo "qatflow-$*:$(VERSION) built in $$(( $$(date +%s) - start )) s"

.PHONY: local-images engine e2e e2e-images e2e-cluster

local-images: engine ## the images without registry access: debootstrap base, local torch index
	bash dockerfiles/local-images.sh VERSION=$(VERSION)

engine: ## start dockerd if no Docker engine answers (root)
	bash dockerfiles/docker-engine.sh

# The end-to-end tiers (marker e2e), each on real engines: `make test` leaves them out; `make e2e`
# runs them, as `.ci/run` does after `make test`.
E2E := e2e-images e2e-cluster
# How the end-to-end tiers get their images: local-images (no registry access, root) or images.
E2E_IMAGES_BUILD ?= local-images

e2e: $(E2E) ## every end-to-end tier

e2e-images: install $(E2E_IMAGES_BUILD) ## the images for real: train, serve hardened, ask, compose
	$(PY) -m pytest -m e2e tests/docker

# Also needs Debian's containerd, runc and containernetworking-plugins, and root (docs/kubernetes.md).
e2e-cluster: install tools k8s $(E2E_IMAGES_BUILD) ## the chart on a real kubelet: hook trains in a pod, both services answer
	$(PY) -m pytest -m e2e tests/cluster/e2e

clean:
	rm -rf $(VENV) $(MLSERVER_VENV) .tools $(K8S_ASSETS) .pytest_cache .mypy_cache .ruff_cache
