# Two commands on a fresh machine: `make run` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
export ETH_HASH_BACKEND ?= pysha3

.PHONY: run test lint unit contract integration bench contracts clean mosquitto postgres stack stack-down

# The node runs its own Mosquitto (Debian's package) with a journal plugin it compiles
# (gcc and Mosquitto's headers). Installed when missing; Debian starts the packaged
# service on 1883 at install, which the node needs, so it is stopped.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
MOSQUITTO_PACKAGES := mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev gcc libc6-dev
mosquitto:
	@{ command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto; } && \
	  test -f /usr/include/mosquitto_broker.h && test -f /usr/include/mosquitto.h && \
	  command -v cc >/dev/null || { \
	  echo "installing Mosquitto (apt-get install $(MOSQUITTO_PACKAGES))"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(MOSQUITTO_PACKAGES) \
	    >/dev/null && \
	  { $(SUDO) systemctl disable --now mosquitto >/dev/null 2>&1 || \
	    $(SUDO) service mosquitto stop >/dev/null 2>&1 || true; }; }

# PostgreSQL 15 (Debian's package) for the store's contract suite and the integration
# tests on BAL_STORE=postgres; the tests start throwaway clusters of their own, so the
# packaged service is stopped.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing PostgreSQL (apt-get install postgresql)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null && \
	  { $(SUDO) systemctl disable --now postgresql >/dev/null 2>&1 || \
	    $(SUDO) service postgresql stop >/dev/null 2>&1 || true; }; }

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP) mosquitto
	$(BIN)/bal up

# The production topology on this machine: PostgreSQL, Mosquitto (TLS, Dynamic
# Security), a JSON-RPC chain (ganache) and STACK_NODES BAL nodes behind one HTTP port;
# everything in STACK_DIR. `make stack-down` stops it and keeps its data.
STACK_DIR ?= bal-stack
STACK_NODES ?= 2
stack: $(STAMP) node_modules/.installed mosquitto postgres
	$(BIN)/bal stack up --dir $(STACK_DIR) --nodes $(STACK_NODES)

stack-down: $(STAMP)
	$(BIN)/bal stack down --dir $(STACK_DIR)

test: lint unit contract integration

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# unit and contract tests are independent: one worker per CPU
unit: $(STAMP)
	$(BIN)/pytest -q -n auto tests/unit

# One suite every store backend must pass: SQLite and a real PostgreSQL.
contract: $(STAMP) postgres
	$(BIN)/pytest -q -n auto tests/contract

# Pinned JavaScript tools (solc, ganache) for the contract and JSON-RPC node tests.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

integration: $(STAMP) node_modules/.installed mosquitto postgres
	$(BIN)/pytest -q --durations=20 tests/integration

# Recompile contracts/*.sol with the pinned solc into the committed artifacts.
contracts: $(STAMP) node_modules/.installed
	$(BIN)/python -m platone_bal.adapters.contracts .

bench: $(STAMP) mosquitto postgres
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/certify.py
	$(BIN)/python benchmarks/storage.py
	$(BIN)/python benchmarks/hammer.py --seconds 60 --report benchmarks/results/hammer.json

clean:
	rm -rf $(VENV) node_modules bal-data .pytest_cache .mypy_cache .ruff_cache
