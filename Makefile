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
LAB_IMAGE_FILE := .lab/image

.PHONY: help venv prereqs image lab lab-up lab-farm lab-converge lab-summary lab-down shard-check drill drill-short bench test lint unit molecule clean

help:
	@echo "make lab       lab hosts up, site.yml converged, service table"
	@echo "make test      lint, unit tests, every molecule scenario"
	@echo "make shard-check  every replica of the running lab scrapes what the shard plan says"
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
	bash scripts/base-image.sh > $(LAB_IMAGE_FILE).tmp && mv $(LAB_IMAGE_FILE).tmp $(LAB_IMAGE_FILE)

image: prereqs

lab: lab-up lab-farm lab-converge lab-summary

lab-up: prereqs
	$(BIN)/python scripts/lab.py up --image "$$(cat $(LAB_IMAGE_FILE))"

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

# HA drills against the running lab: each takes a node away, measures, puts it back.
drill: venv
	$(BIN)/python scripts/drill.py

# The benchmark suite (recreates the lab for the cold converge; leaves it running).
bench: prereqs
	$(BIN)/python bench/stack.py --drills $(BENCH_ARGS)

# The short drills on a lab of its own, removed afterwards (part of make test).
drill-short: prereqs
	@set -e; trap '$(BIN)/python scripts/lab.py down' EXIT; \
	  $(MAKE) --no-print-directory lab-up lab-farm lab-converge shard-check; \
	  $(BIN)/python scripts/drill.py --short

test: lint unit molecule drill-short

lint: venv
	$(BIN)/yamllint -s .
	$(BIN)/ruff check .
	$(BIN)/python scripts/check-argument-specs.py
	$(BIN)/python scripts/role-readme.py --check
	$(BIN)/python scripts/filter-docs.py --check
	$(BIN)/ansible-lint --offline -q

unit: venv
	$(BIN)/python -m pytest -q tests/unit

molecule: prereqs
	@set -e; for s in $(SCENARIOS); do \
	  echo "=== molecule scenario $$s"; \
	  LAB_IMAGE="$$(cat $(LAB_IMAGE_FILE))" $(BIN)/molecule test -s $$s; \
	done

clean: lab-down
	rm -rf .cache .lab $(VENV)
