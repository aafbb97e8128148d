# Observatoire de Mayotte geodata platform.
#   make serve   install, start PostGIS, load the real data, serve on http://$(HOST):$(PORT)
#   make test    install, then run the whole test suite (it starts its own PostGIS)
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
BIN     := $(VENV)/bin
PYTHON  ?= $(shell command -v python3.12 2>/dev/null || echo $$HOME/.pyenv/versions/3.12.1/bin/python3.12)
HOST    ?= 127.0.0.1
PORT    ?= 5000
WORKERS ?= 4
THREADS ?= 4
DATA_DIR ?= $(abspath ../shared/data/mayotte)

export GEOMAYOTTE_DATA_DIR ?= $(DATA_DIR)
export GEOMAYOTTE_BASE_URL ?= http://$(HOST):$(PORT)
export PYGEOAPI_CONFIG := $(CURDIR)/pygeoapi-config.yml
# the server reads its OpenAPI document from .run/ (built for its own URL at each start);
# openapi/openapi.yml is the committed copy, for http://127.0.0.1:5000 (make openapi)
export PYGEOAPI_OPENAPI := $(CURDIR)/.run/openapi.yml
# DATABASE_URL: used when set; otherwise the private cluster in .pgdata/ (port 54329), or
# where GEOMAYOTTE_PGDATA / GEOMAYOTTE_PGPORT say (environment or make arguments alike:
# exported to every command, and passed by hand to $(shell), which make 4.3 gives no exports)
ifdef GEOMAYOTTE_PGPORT
export GEOMAYOTTE_PGPORT
endif
ifdef GEOMAYOTTE_PGDATA
export GEOMAYOTTE_PGDATA
endif
PG_ENV  = $(if $(GEOMAYOTTE_PGPORT),GEOMAYOTTE_PGPORT=$(GEOMAYOTTE_PGPORT)) $(if $(GEOMAYOTTE_PGDATA),GEOMAYOTTE_PGDATA=$(GEOMAYOTTE_PGDATA))
DB_URL = $(or $(DATABASE_URL),$(shell $(PG_ENV) $(BIN)/geomayotte-db url))

.PHONY: help system-deps venv db db-stop load openapi check-config serve test bench bench-validation clean

help:
	@echo "make serve   serve the platform on real data at http://$(HOST):$(PORT) (PORT=, HOST=, DATA_DIR=, WORKERS=)"
	@echo "make test    run the whole test suite against a PostGIS the tests start"
	@echo "make load    (re)load the real data into PostGIS (idempotent)"
	@echo "make openapi regenerate and validate openapi/openapi.yml"
	@echo "make db / db-stop   start / stop the private PostgreSQL+PostGIS cluster"
	@echo "make bench   Features speed: ours vs pygeoapi's PostgreSQL provider vs TiPG vs SQL (BENCH_ARGS=)"
	@echo "make bench-validation   validation speed vs shapely is_valid and PostGIS ST_IsValidDetail"

# System packages: PostGIS for the private cluster, GDAL's ogrinfo for the client tests.
system-deps:
	@scripts/system-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x "$(PYTHON)" || { echo "Python 3.12 not found: install it (pyenv install 3.12.1) or set PYTHON=" >&2; exit 2; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

db: venv system-deps
	@if [ -z "$(DATABASE_URL)" ]; then $(BIN)/geomayotte-db start >/dev/null && echo "PostGIS: $$($(BIN)/geomayotte-db url)"; \
	 else echo "PostGIS: DATABASE_URL"; fi

db-stop: venv
	$(BIN)/geomayotte-db stop

load: db
	DATABASE_URL="$(DB_URL)" $(BIN)/geomayotte-load

check-config: venv
	DATABASE_URL="$(DB_URL)" $(BIN)/pygeoapi config validate -c $(PYGEOAPI_CONFIG)

openapi: load check-config
	DATABASE_URL="$(DB_URL)" GEOMAYOTTE_BASE_URL=http://127.0.0.1:5000 $(BIN)/python -m geomayotte.openapi --output openapi/openapi.yml

serve: load check-config
	DATABASE_URL="$(DB_URL)" $(BIN)/python -m geomayotte.openapi --output $(PYGEOAPI_OPENAPI)
	@echo "Serving on $(GEOMAYOTTE_BASE_URL) ($(WORKERS) workers x $(THREADS) threads) with a job worker"
	@# both in the background and waited for: a SIGTERM to make (or its shell) stops them at
	@# once (bash runs a trap only once its foreground command ends; it ends `wait` at once)
	DATABASE_URL="$(DB_URL)" $(BIN)/geomayotte-worker & worker=$$!; \
	DATABASE_URL="$(DB_URL)" $(BIN)/gunicorn geomayotte.app:application \
	  --bind $(HOST):$(PORT) --workers $(WORKERS) --threads $(THREADS) --worker-class geomayotte.gunicorn_worker.ThreadWorker \
	  --timeout 120 --limit-request-line 8190 --access-logfile - --log-level warning & server=$$!; \
	trap 'kill -INT $$server $$worker 2>/dev/null; wait' INT TERM; \
	trap 'kill -INT $$server $$worker 2>/dev/null' EXIT; \
	wait $$server

# Speed, side by side: ours, pygeoapi's PostgreSQL provider, TiPG (own virtualenv), direct SQL.
bench: venv db
	$(BIN)/pip install -q -e '.[test,bench]'
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || { echo "install wrk (apt-get install wrk)" >&2; exit 2; }
	test -x bench/.venv-tipg/bin/uvicorn || { $(PYTHON) -m venv bench/.venv-tipg && bench/.venv-tipg/bin/pip install -q tipg uvicorn; }
	DATABASE_URL="$(DB_URL)" $(BIN)/python bench/features.py $(BENCH_ARGS)

bench-validation: venv db
	DATABASE_URL="$(DB_URL)" $(BIN)/python bench/validation.py $(BENCH_ARGS)

test: venv system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	-$(BIN)/geomayotte-db stop 2>/dev/null
	rm -rf .pgdata $(VENV) *.egg-info .pytest_cache
