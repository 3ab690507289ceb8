# Entry points. `make lab` and `make test` work from a fresh clone on a fresh
# Debian machine with only Python: they install what they need themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Keep pip's download cache inside the checkout too.
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
SCENARIOS ?= $(sort $(notdir $(wildcard molecule/*)))
# The Debian release of the lab and the scenarios: bookworm (12), trixie (13), or
# mixed (every second lab host in name order, one of each pair, on trixie; the
# scenarios on bookworm).
DIST ?= bookworm
ifeq ($(filter $(DIST),bookworm trixie mixed),)
$(error DIST must be bookworm, trixie or mixed, not '$(DIST)')
endif
IMAGE_DIST := $(if $(filter mixed,$(DIST)),bookworm,$(DIST))
LAB_IMAGE_FILE := .lab/image-$(IMAGE_DIST)
LAB_IMAGES := --image "$$(cat $(LAB_IMAGE_FILE))"$(if $(filter mixed,$(DIST)), --odd-image "$$(cat .lab/image-trixie)")

.PHONY: help venv prereqs image releases lab lab-up lab-farm lab-converge lab-summary lab-down shard-check dashboard-check drill drill-short bench test test-all lint unit molecule molecule-scenarios molecule-lane-1 molecule-lane-2 clean

help:
	@echo "make lab       lab hosts up, site.yml converged, service table"
	@echo "make test      lint, unit tests, every molecule scenario (DIST) but its LONG_TESTS, short drills on a mixed-release lab"
	@echo "make test-all  lint, unit tests, every scenario (and the archive ones with upstream releases), the short drills and the rolling upgrade on bookworm and on trixie"
	@echo "RELEASES=1     make molecule: the archive scenarios install the upstream releases of make releases"
	@echo "make releases  upstream-layout Prometheus/Alertmanager/node_exporter archives: .lab/releases"
	@echo "DIST=bookworm|trixie|mixed  the Debian release of the lab and scenarios (default bookworm)"
	@echo "make shard-check  every replica of the running lab scrapes what the shard plan says"
	@echo "make dashboard-check  every dashboard panel's query returns data on the running lab"
	@echo "make drill     HA drills against the running lab (after make lab), with a table of figures"
	@echo "make bench     cold/warm converge, one-line rollouts, controller cost, drills: bench/results/stack.md"
	@echo "make lab-down  remove the lab containers and network"

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/ansible-galaxy collection list >/dev/null
	touch $@

# Docker engine (installed from Debian's packages when none answers) and the base image.
prereqs: venv
	bash scripts/ensure-docker.sh
	LAB_DIST=$(IMAGE_DIST) bash scripts/base-image.sh > $(LAB_IMAGE_FILE).tmp && mv $(LAB_IMAGE_FILE).tmp $(LAB_IMAGE_FILE)
ifeq ($(DIST),mixed)
	LAB_DIST=trixie bash scripts/base-image.sh > .lab/image-trixie.tmp && mv .lab/image-trixie.tmp .lab/image-trixie
endif

image: prereqs

lab: lab-up lab-farm lab-converge lab-summary

# Upstream-layout release archives built from Debian unstable's newer builds, and
# .lab/releases/vars.yml to install them (ansible-playbook -e @.lab/releases/vars.yml).
releases: venv
	$(BIN)/python scripts/release-archives.py

lab-up: prereqs
	$(BIN)/python scripts/lab.py up $(LAB_IMAGES)

# Test-only: the lab's application targets (a farm of HTTP targets, a discovery file),
# which the lab's own scrape jobs (inventories/lab/group_vars/prometheus) shard.
lab-farm: venv
	$(BIN)/ansible-playbook -i inventories/lab tests/playbooks/target-farm.yml

lab-converge: venv
	time $(BIN)/ansible-playbook -i inventories/lab site.yml

lab-summary: venv
	$(BIN)/python scripts/lab.py summary

lab-down: venv
	$(BIN)/python scripts/lab.py down

# Every replica of the running lab scrapes what the shard plan says.
shard-check: venv
	$(BIN)/python scripts/shard-check.py

# Every panel of the provisioned dashboards returns data on the running lab.
dashboard-check: venv
	$(BIN)/python scripts/dashboard-check.py

# HA drills against the running lab: each takes a node away, measures, puts it back
# (DRILL_ARGS=--upgrade adds the rolling upgrade to the archives of `make releases`).
drill: venv
	$(BIN)/python scripts/drill.py $(DRILL_ARGS)

# The benchmark suite (recreates the lab for the cold converge; leaves it running).
bench: prereqs
	$(BIN)/python bench/stack.py --drills $(LAB_IMAGES) $(BENCH_ARGS)

# The short drills on a lab of its own, removed afterwards (part of make test).
drill-short: prereqs
	@set -e; trap '$(BIN)/python scripts/lab.py down' EXIT; \
	  $(MAKE) --no-print-directory lab-up lab-farm lab-converge shard-check dashboard-check; \
	  $(BIN)/python scripts/drill.py --short $(DRILL_ARGS)

# `make test` (CI): every scenario on $(DIST), the short drills on a lab of both
# releases. `make test-all`, on each release: every scenario, the two archive
# scenarios again with the upstream releases, the short drills and the rolling upgrade
# (drill 10, to the archives of `make releases`).
# Lint, the unit tests and the Docker engine with both base images at once (two cores,
# and the images wait on the mirror more than on the CPU); then the scenarios in two
# lanes at once, without LONG_TESTS; then the short drills on a lab of both releases.
test: venv
	$(MAKE) --no-print-directory -j3 --output-sync=target lint unit prereqs DIST=mixed
	$(MAKE) --no-print-directory -j2 --output-sync=target molecule-lane-1 molecule-lane-2 SHORT=1
	$(MAKE) --no-print-directory drill-short DIST=mixed

# The scenario tests that take minutes each and that a drill or the unit tests prove
# as well: `make test` (SHORT=1) leaves them out; `make molecule` and `make test-all`
# run them (pytest -k names them). The short runs print their 15 slowest tests.
LONG_TESTS := reshard_two_to_three or replicas_two_in_hashmod or whole_cluster_stopped
# The lanes of `make test`: the scenarios wait on daemons more than they compute.
LANE_1 := prometheus frontend
LANE_2 := database alertmanager common
molecule-lane-1 molecule-lane-2:
	$(MAKE) --no-print-directory molecule-scenarios SCENARIOS="$(LANE_$(subst molecule-lane-,,$@))"

test-all: lint unit releases
	@set -e; for d in bookworm trixie; do \
	  $(MAKE) --no-print-directory molecule DIST=$$d; \
	  $(MAKE) --no-print-directory molecule DIST=$$d RELEASES=1 SCENARIOS="alertmanager prometheus"; \
	  $(MAKE) --no-print-directory drill-short DIST=$$d DRILL_ARGS=--upgrade; \
	done

lint: venv
	$(BIN)/yamllint -s .
	$(BIN)/ruff check .
	$(BIN)/python scripts/check-argument-specs.py
	$(BIN)/python scripts/role-readme.py --check
	$(BIN)/python scripts/filter-docs.py --check
	$(BIN)/python scripts/dashboards.py --check
	$(BIN)/ansible-lint --offline -q

unit: venv
	$(BIN)/python -m pytest -q tests/unit

# RELEASES=1: the scenarios that install from a release archive (alertmanager,
# prometheus) serve the current upstream releases of `make releases` instead of
# archives built from the host release's packages.
molecule: prereqs $(if $(RELEASES),releases)
	$(MAKE) --no-print-directory molecule-scenarios

# The scenarios of SCENARIOS one after the other (prereqs made already).
molecule-scenarios:
	@set -e; for s in $(SCENARIOS); do \
	  echo "=== molecule scenario $$s$(if $(RELEASES), (upstream releases))"; \
	  $(if $(RELEASES),PROMHA_RELEASES=$(CURDIR)/.lab/releases) LAB_IMAGE="$$(cat $(LAB_IMAGE_FILE))" \
	    $(if $(SHORT),PYTEST_ADDOPTS="-k 'not ($(LONG_TESTS))' --durations=15") $(BIN)/molecule test -s $$s; \
	done

clean: lab-down
	rm -rf .cache .lab $(VENV)
