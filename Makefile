# connect.platform: the two commands that matter are `make demo` and `make test`.
# Every target installs what it needs and skips what is already there.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        := .venv
PYTHON      ?= $(shell command -v python3.11 || command -v python3)
STAMP       := $(VENV)/.requirements-$(shell sha256sum requirements.txt | cut -c1-12)
SCENARIOS   := $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
DEMO        := connect-demo
DEMO_PORTS  := -p 127.0.0.1:8080:80 -p 127.0.0.1:8443:443

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup venv host lint unit inputs sanity sanity-tools molecule test test-part demo demo-deploy demo-rollback demo-drill demo-dr demo-destroy demo-cluster demo-cluster-destroy bench build

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@echo "[setup] installing pinned Python dependencies into $(VENV)"
	@$(VENV)/bin/pip install -q -r requirements.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
	@rm -f $(VENV)/.requirements-* && touch $@

COLLECTION_LINK := .collections/ansible_collections/connect/platform

# connect.platform.* resolves from the checkout through this link (ansible.cfg
# puts .collections on the collections path). Made here, not committed:
# ansible-test's symlinks test rejects a committed symlink to a directory.
$(COLLECTION_LINK):
	@mkdir -p $(@D) && ln -sfn ../../.. $@

# promtool and amtool (the alert rules' and Alertmanager's unit tests), from
# Debian's packages into the virtualenv.
PROMTOOLS := $(VENV)/bin/amtool

$(PROMTOOLS): | $(STAMP)
	@bash harness/prom-tools.sh $(VENV)

venv: $(STAMP) $(COLLECTION_LINK) $(PROMTOOLS)  ## Python virtualenv with the pinned dependencies, promtool/amtool, and the .collections link

host: venv  ## This machine as a harness host: Docker engine, registry, S3 stand-in, base images, admin key
	@bash harness/host-setup.sh
	@bash harness/s3-stand-in.sh $(VENV)
	@bash harness/build-base.sh server
	@bash harness/images.sh
	@bash harness/keys.sh

setup: venv host  ## Everything the tests and the demo need (idempotent)

lint: venv  ## ansible-lint (production profile), yamllint, ruff, changelog fragments
	ansible-lint
	yamllint --strict .
	ruff check .
	ruff format --check .
	antsibull-changelog lint

unit: venv  ## Unit tests of the plugins' logic
	python -m pytest tests/unit -q -p no:cacheprovider -n auto

inputs: venv  ## Playbooks against an unreachable host: bad input refused before any change (no server)
	python -m pytest tests/integration -q -p no:cacheprovider

# Before `make host` may run beside it (CI): two apt-gets at once would fight over dpkg's lock.
sanity-tools:
	@command -v shellcheck >/dev/null || { echo "[setup] installing shellcheck (ansible-test's shellcheck test)"; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; }

sanity: venv sanity-tools  ## ansible-test sanity (every test, one Python) on a copy of the collection
	python tests/sanity/run.py

# The scenarios run side by side (each on its own servers; their output
# prefixed with the scenario's name): most of their time is spent waiting.
molecule: setup  ## Every Molecule scenario on fresh disposable servers, side by side, each action timed
	@bash harness/parallel.sh $(foreach s,$(SCENARIOS),"$(s)=bash harness/molecule.sh $(s)")

# The harness host's setup (engine, debootstraps, image builds: mostly
# downloads) runs beside the checks that need no server.
PHASE := bash harness/phase.sh
SUBMAKE := $(MAKE) --no-print-directory
test:  ## What CI runs: lint, unit tests, input checks, ansible-test sanity, every Molecule scenario (each phase timed)
	@$(PHASE) venv $(SUBMAKE) venv sanity-tools
	@$(PHASE) checks-and-host bash harness/parallel.sh "host=$(PHASE) host $(SUBMAKE) host" \
	  "checks=$(PHASE) lint $(SUBMAKE) lint && $(PHASE) unit $(SUBMAKE) unit && $(PHASE) inputs $(SUBMAKE) inputs && $(PHASE) sanity $(SUBMAKE) sanity"
	@$(PHASE) molecule $(SUBMAKE) molecule
	@echo "make test: lint, unit, inputs, sanity and molecule ($(SCENARIOS)) passed"

PART ?=
test-part: setup  ## One part of the scenario's checks alone (PART=host,docker,exposure,data_tier,backup,status,maintenance,playbook,edge,durability,restarts,release,logs,dr)
	@test -n "$(PART)" || { echo "give PART=, one or more of: host docker exposure data_tier backup playbook edge durability restarts release logs dr" >&2; exit 2; }
	molecule create -s default
	molecule converge -s default
	CONNECT_TEST_PARTS="$(PART)" molecule verify -s default
	@echo "the server stays up for the next part; remove it with: molecule destroy -s default"

demo: setup  ## A local disposable server `connect-demo` converged with site.yml
	@bash harness/images.sh probe postgres pgbouncer redis testapp nginx monitoring
	@bash harness/server.sh create $(DEMO) $(DEMO_PORTS)
	ansible-playbook -i inventories/demo site.yml
	@echo
	@docker exec $(DEMO) docker compose -f /opt/connect/docker-compose.production.yml ps --format 'table {{.Name}}\t{{.Status}}'
	@echo
	@echo "connect-demo is up:"
	@echo "  shell:    docker exec -it $(DEMO) bash"
	@echo "  ansible:  .venv/bin/ansible -i inventories/demo connect_servers -m ping"
	@echo "  address:  $$(bash harness/server.sh address $(DEMO)) (SSH: ssh -i /var/lib/connect-harness/keys/admin_ed25519 opsadmin@<address>)"
	@echo "  database: docker exec -it $(DEMO) docker exec -it -u postgres connect_postgres psql -d connect"
	@echo "  web:      https://127.0.0.1:8443/api/health (self-signed; curl -k)  http://127.0.0.1:8080 redirects"
	@echo "  backups:  docker exec $(DEMO) systemctl start connect-backup@pg-full.service   (pg-diff, pg-check, pg-verify)"
	@echo "            docker exec $(DEMO) tail -n 3 /opt/connect/logs/backup.log"
	@echo "            docker exec $(DEMO) docker exec -u postgres connect_postgres pgbackrest --stanza=connect info"
	@echo "  status:   ansible-playbook -i inventories/demo status.yml   (the morning checklist)"
	@echo "  alerts:   ansible-playbook -i inventories/demo monitoring.yml   (every scrape target's health, the active alerts)"
	@echo "            python3 benchmarks/monitoring_cost.py --server $(DEMO) --url https://127.0.0.1:8443   (monitoring's CPU and memory)"
	@echo "  weekly:   docker exec $(DEMO) systemctl start connect-maintenance@vacuum.service   (logs, images, certificates, integrity)"
	@echo "  restart:  ansible-playbook -i inventories/demo restart.yml -e operations_restart_service=app1   (runbook: docs/runbook.md)"
	@echo "  rotate:   ansible-playbook -i inventories/demo rotate.yml   (all ten passwords, no failed request; -e rotate=<name> for one)"
	@echo "  drill:    make demo-drill   (the restore drill: a scratch project restored and checked, then removed)"
	@echo "  DR:       make demo-dr      (connect-demo destroyed, a new one recovered by dr.yml from the off-site store)"
	@echo "  release:  make demo-deploy VERSION=v2   (v1, v2, v3-broken-health, v4-broken-migration)"
	@echo "            make demo-rollback"
	@echo "  remove:   make demo-destroy"

VERSION ?= v2
demo-deploy: venv  ## Release a test-app VERSION (v1 v2 v3-broken-health v4-broken-migration) to connect-demo, under load
	@case "$(VERSION)" in v1|v2|v3-broken-health|v4-broken-migration) ;; \
	  *) echo "VERSION must be v1, v2, v3-broken-health or v4-broken-migration" >&2; exit 2 ;; esac
	python3 benchmarks/release_under_load.py --server $(DEMO) --inventory inventories/demo --url https://127.0.0.1:8443 \
	  --playbook deploy.yml -e 'release_image={{ connect_harness_registry }}/connect-harness/testapp:$(VERSION)' >/dev/null

demo-rollback: venv  ## Roll connect-demo back to the previous release, under load
	python3 benchmarks/release_under_load.py --server $(DEMO) --inventory inventories/demo --url https://127.0.0.1:8443 \
	  --playbook rollback.yml >/dev/null

# The jobs run at night; the demo runs them first (the drill and dr.yml
# restore their newest snapshots and check against a backup's manifest).
DEMO_JOBS := pg-diff files-uploads files-queue
demo-drill: venv  ## The restore drill on connect-demo (drill.yml), after this night's jobs run now
	@for job in $(DEMO_JOBS); do docker exec $(DEMO) systemctl start connect-backup@$$job.service; done
	ansible-playbook -i inventories/demo drill.yml

demo-dr: venv  ## Lose connect-demo and recover it with dr.yml from its off-site repositories (the S3 stand-in)
	@for job in $(DEMO_JOBS); do docker exec $(DEMO) systemctl start connect-backup@$$job.service; done
	@bash harness/server.sh destroy $(DEMO)
	@bash harness/server.sh create $(DEMO) --keep-offsite $(DEMO_PORTS)
	ansible-playbook -i inventories/demo dr.yml

CLUSTER := connect-cluster-1 connect-cluster-2 connect-cluster-3
CLUSTER_IP := 172.29.10
demo-cluster: setup  ## Three local disposable servers formed into a Docker Swarm by site.yml (inventories/cluster)
	@bash harness/images.sh probe
	@i=10; for s in $(CLUSTER); do i=$$((i+1)); bash harness/server.sh create $$s --network connect-cluster --ip $(CLUSTER_IP).$$i; done
	ansible-playbook -i inventories/cluster site.yml
	@echo
	@docker exec connect-cluster-1 docker node ls
	@echo
	@echo "the cluster is up (Swarm of three managers; the stack on it is the next step of issue 23):"
	@echo "  nodes:    docker exec connect-cluster-1 docker node ls"
	@echo "  labels:   docker exec connect-cluster-1 sh -c 'docker node inspect -f \"{{.Description.Hostname}} {{.Spec.Labels}}\" \$$(docker node ls -q)'"
	@echo "  lose one: docker kill connect-cluster-3; docker exec connect-cluster-1 docker node ls; docker start connect-cluster-3"
	@echo "  replace:  bash harness/server.sh destroy connect-cluster-3 && bash harness/server.sh create connect-cluster-3 --network connect-cluster --ip $(CLUSTER_IP).13"
	@echo "            ansible-playbook -i inventories/cluster site.yml --limit connect-cluster-3"
	@echo "  rerun:    ansible-playbook -i inventories/cluster site.yml   (changed=0)"
	@echo "  remove:   make demo-cluster-destroy"

demo-cluster-destroy:  ## Remove the cluster's servers, their Docker volumes and their network
	@for s in $(CLUSTER); do bash harness/server.sh destroy $$s; done
	@bash harness/server.sh network-destroy connect-cluster

bench: venv  ## Throughput and latency of the demo stack through nginx (benchmarks/edge.sh)
	bash benchmarks/edge.sh

demo-destroy:  ## Remove the demo server and its Docker volume
	@bash harness/server.sh destroy $(DEMO)

build: venv  ## Build the collection tarball
	ansible-galaxy collection build --force
