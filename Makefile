# Developer entry points. Only Python (3.11+), pip and gcc are needed: `make run` / `make test`
# bootstrap .venv and start embedded PostgreSQL/Redis (see scripts/devstack.py) unless
# DATABASE_URL / REDIS_URL are set.
#
#   make run                  migrate, seed demo data, run web + worker + beat (Ctrl-C stops all)
#   make test [ARGS="-k x"]   lint, then pytest (ARGS are passed to pytest)
#   make lint | format        ruff + mypy + makemigrations --check | ruff format + ruff check --fix
#   make stop | clean-data    stop the embedded servers | ... and delete .devdata/
#   make chaos SEED=1 RUNS=200  the chaos suite: seeded faults, then the invariant checker
#   make topology             the scaled-out topology on loopback (cluster, PgBouncer, HAProxy, ...)
#   make test-topology        its fault drill, then the gate's suites with the gate on a cluster
#   make drain-bench          rows/s one worker writes from a 100,000-reservation backlog

# Debian's /usr/bin/python3.11 is faster than a pyenv shim; use it if it can create venvs.
PYTHON ?= $(shell /usr/bin/python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1 \
	&& echo /usr/bin/python3.11 || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
DEVSTACK := $(PY) -m scripts.devstack
# Each target installs only the requirements it uses (requirements*.txt say what each set is for),
# again whenever one of the set's files is newer than its stamp.
LOCAL := $(VENV)/.installed-local
DEV := $(VENV)/.installed-dev
LAB := $(VENV)/.installed-lab

export PIP_DISABLE_PIP_VERSION_CHECK := 1
# bash with pipefail: a failing pip fails the target even with its output filtered.
SHELL := bash
.SHELLFLAGS := -o pipefail -c

.DEFAULT_GOAL := help
.PHONY: help venv run test lint format stop clean-data

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

# (Re)create the venv if it is missing or its interpreter is gone (e.g. Python was upgraded),
# then install one requirements file; pip prints each package as it goes.
define install
	@$(PY) -c '' 2>/dev/null || { rm -rf $(VENV) && echo "creating $(VENV) with $(PYTHON)" \
		&& $(PYTHON) -m venv $(VENV); }
	@echo "installing $(1) into $(VENV) (the first time takes a minute or two)..."
	$(PY) -m pip install --progress-bar off -r $(1) | { grep -v '^Requirement already satisfied' || true; }
	@touch $@
endef

$(LOCAL): requirements.txt requirements-local.txt
	$(call install,requirements-local.txt)
$(DEV): requirements.txt requirements-local.txt requirements-dev.txt
	$(call install,requirements-dev.txt)
$(LAB): requirements.txt requirements-local.txt requirements-lab.txt
	$(call install,requirements-lab.txt)

venv: $(DEV)

run: $(LOCAL)
	$(DEVSTACK) run

test: $(DEV)
	$(DEVSTACK) test $(ARGS)

lint: $(DEV)
	$(DEVSTACK) lint

format: $(DEV)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# stop/clean-data need no fresh install, just a venv that can import psutil and redis.
stop:
	@if [ -x $(PY) ]; then $(DEVSTACK) stop; fi

clean-data:
	@if [ -x $(PY) ]; then $(DEVSTACK) clean; else rm -rf .devdata; fi

# Load-test lab (loadtests/README.md): k6 before/after for one scenario, or all of them.
#   make loadtest SCENARIO=product-list-slow [LOADTEST_ARGS="--duration 20"]
#   make loadtest-all
.PHONY: loadtest loadtest-all
loadtest: $(LAB)
	@test -n "$(SCENARIO)" || { echo "usage: make loadtest SCENARIO=<name> (see loadtests/README.md)"; exit 2; }
	$(PY) -m loadtests.run $(SCENARIO) $(LOADTEST_ARGS)

loadtest-all: $(LAB)
	$(PY) -m loadtests.run --all $(LOADTEST_ARGS)

# Chaos suite (docs/reliability.md, "Chaos"): seeds SEED..SEED+RUNS-1, faults drawn from each seed.
#   make chaos SEED=1 RUNS=200 [CHAOS_ARGS="--pipeline redis"]
SEED ?= 1
RUNS ?= 20
.PHONY: chaos
chaos: $(LOCAL)
	$(PY) -m apps.lab.chaos --seed $(SEED) --runs $(RUNS) $(CHAOS_ARGS)

# Scaled-out topology (docs/scaling.md): a 3-shard Valkey Cluster, PgBouncer, two web nodes behind
# HAProxy, two workers, two beats. Needs Debian's haproxy and pgbouncer (.ci/run installs them).
.PHONY: topology test-topology
topology: $(LOCAL)
	$(PY) -m apps.lab.topology

test-topology: $(LOCAL)
	$(PY) -m apps.lab.topology --drill
	$(DEVSTACK) test-cluster

# Drain benchmark (docs/scaling.md, "Capacity"): order rows/s one Celery worker writes from a backlog
# of reservations filled through the gate beforehand, then the invariant checker.
#   make drain-bench [DRAIN_ARGS="--reservations 100000 --repeat 2"]
.PHONY: drain-bench
drain-bench: $(LAB)
	$(PY) -m loadtests.drain_bench $(DRAIN_ARGS)

# Every runtime package has a wheel for the image's Python on Linux x86_64 and aarch64 (deploy/README.md,
# "Checked offline"). Needs PyPI, so it is not part of `make test`.
.PHONY: check-wheels
check-wheels:
	scripts/check_wheels.sh
