# droproom: `make run` (server + demo room) and `make test` (the whole suite).
# Both install what they need first: a virtualenv with the Python packages,
# the web client's npm packages, Debian's Chromium for the browser tests and
# Debian's redis-server 7 for the Redis Cluster run (never started as a service).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test setup lint check-types unit unit-cluster chromium redis-server node clean

run: setup
	$(BIN)/droproom serve --demo

test: setup lint check-types unit unit-cluster

setup: $(STAMP) node chromium redis-server

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

# Only the binaries are wanted: a policy-rc.d (when none is there) keeps the
# package from starting its service, which is then disabled where systemd runs.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  own_policy=; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then own_policy=1; \
	    printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
	    $(SUDO) chmod +x /usr/sbin/policy-rc.d; fi; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends redis-server; \
	  status=$$?; \
	  if [ -n "$$own_policy" ]; then $(SUDO) rm -f /usr/sbin/policy-rc.d; fi; \
	  if command -v systemctl >/dev/null 2>&1; then $(SUDO) systemctl disable --now redis-server >/dev/null 2>&1 || true; fi; \
	  exit $$status; }

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check-types:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -q -ra

# The rooms and shop paths again, against a real 3-node Redis Cluster that the
# tests start on loopback (tests/redis_cluster.py), with accounts, studio, episodes, numbers,
# webhooks and replays; about six minutes.
CLUSTER_TESTS := tests/test_live_room.py tests/test_stage_presence.py tests/test_http_api.py \
	tests/test_commerce_cart.py tests/test_shop_purchase.py tests/test_shop_drops.py \
	tests/test_shop_race.py tests/test_commerce_shares.py tests/test_redis_cluster.py \
	tests/test_shop_money_v2.py tests/test_rooms_v2.py tests/test_rooms_rules.py \
	tests/test_lua_rules.py tests/test_intent_claim.py tests/test_accounts.py tests/test_mail.py \
	tests/test_delivery.py tests/test_buyers_checkout.py tests/test_studio.py \
	tests/test_studio_invites.py tests/test_episodes.py tests/test_numbers.py \
	tests/test_webhooks_out.py tests/test_replays.py tests/test_room_relay.py \
	tests/test_media_lease.py tests/test_fast_sold_out.py tests/test_stock_broadcast.py \
	tests/test_workers_paths.py tests/test_media_owner.py tests/test_media_edges.py \
	tests/test_tone_plays.py tests/test_tone_route.py tests/test_hls.py tests/test_big_room_presence.py

unit-cluster:
	$(BIN)/pytest -q -ra --redis-cluster $(CLUSTER_TESTS)

clean:
	rm -rf $(VENV) web_client/node_modules var
