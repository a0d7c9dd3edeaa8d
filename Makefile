# ledgerdrill: `make gameday` runs the drill suite on the embedded sandbox; `make test` runs
# the harness's own tests. Both create .venv and install the package on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ledgerdrill-installed

.PHONY: test lint typecheck unit gameday plan cleanup clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest --durations=15

test: lint typecheck unit

gameday: $(STAMP)
	$(BIN)/ledgerdrill gameday --target targets/sandbox.yaml $(if $(ERP_API),--erp-api $(ERP_API))

plan: $(STAMP)
	$(BIN)/ledgerdrill plan --target targets/sandbox.yaml

cleanup: $(STAMP)
	$(BIN)/ledgerdrill cleanup

clean:
	rm -rf $(VENV) .ledgerdrill .pytest_cache .mypy_cache .ruff_cache

# -- kind: the same scenarios on a local multi-zone cluster (needs docker, kind, kubectl, helm)
KIND_CLUSTERS := ledgerdrill ledgerdrill-dr
.PHONY: kind-up kind-down
# chart and image versions of the kind stack, pinned in one place
include deploy/kind/versions.env

kind-up: $(STAMP)   # the venv too: the printed next step runs $(BIN)/ledgerdrill
	@command -v docker >/dev/null || { echo "kind-up: docker is not installed (kind runs its nodes as docker containers)"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "kind-up: the docker engine is not reachable (is it running?)"; exit 1; }
	@command -v kind >/dev/null || { echo "kind-up: kind is not installed: https://kind.sigs.k8s.io/docs/user/quick-start/"; exit 1; }
	@command -v kubectl >/dev/null || { echo "kind-up: kubectl is not installed"; exit 1; }
	@command -v helm >/dev/null || { echo "kind-up: helm is not installed (Traefik and CloudNativePG are helm charts)"; exit 1; }
	kind get clusters | grep -qx ledgerdrill || kind create cluster --config kind-config.yaml
	kind get clusters | grep -qx ledgerdrill-dr || kind create cluster --config kind-config-dr.yaml
	docker build -t ledgerdrill/erp:2026.11.0 -f deploy/kind/Dockerfile .
	for c in $(KIND_CLUSTERS); do \
	  kind load docker-image ledgerdrill/erp:2026.11.0 --name $$c && \
	  helm repo add cnpg https://cloudnative-pg.github.io/charts >/dev/null && \
	  helm repo add traefik https://traefik.github.io/charts >/dev/null && \
	  helm upgrade --install cnpg cnpg/cloudnative-pg --version $(CNPG_CHART_VERSION) -n cnpg-system --create-namespace --wait --kube-context kind-$$c && \
	  kubectl --context kind-$$c apply -f https://github.com/cert-manager/cert-manager/releases/download/$(CERT_MANAGER_VERSION)/cert-manager.yaml && \
	  kubectl --context kind-$$c wait --for=condition=Available --timeout=300s -n cert-manager deployment --all && \
	  kubectl --context kind-$$c apply -f https://github.com/cloudnative-pg/plugin-barman-cloud/releases/download/v$(BARMAN_CLOUD_PLUGIN_VERSION)/manifest.yaml && \
	  kubectl --context kind-$$c rollout status --timeout=300s -n cnpg-system deployment/barman-cloud && \
	  helm upgrade --install traefik traefik/traefik --version $(TRAEFIK_CHART_VERSION) -n traefik --create-namespace --wait --kube-context kind-$$c \
	    --set service.spec.type=NodePort --set ports.websecure.nodePort=30443 || exit 1; \
	done
	deploy/kind/setup.sh   # the reference stack: primary, and dr with a CNPG replica cluster
	@echo "kind clusters ready: contexts kind-ledgerdrill and kind-ledgerdrill-dr; try: $(BIN)/ledgerdrill plan --target targets/kind.yaml"

kind-down:
	@command -v kind >/dev/null || { echo "kind-down: kind is not installed: nothing to delete"; exit 0; }
	for c in $(KIND_CLUSTERS); do kind delete cluster --name $$c; done
