# droproom: `make run` (server + demo room) and `make test` (the whole suite).
# Both install what they need first: a virtualenv with the Python packages,
# the web client's npm packages, and Debian's Chromium for the browser tests.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test setup lint check-types unit chromium node clean

run: setup
	$(BIN)/droproom serve --demo

test: setup lint check-types unit

setup: $(STAMP) node chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

node: web_client/node_modules/.package-lock.json

web_client/node_modules/.package-lock.json: web_client/package-lock.json
	cd web_client && npm ci --no-audit --no-fund

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check-types:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -q -ra

clean:
	rm -rf $(VENV) web_client/node_modules var
