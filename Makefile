# pairwatch: set-up, run, test, bench.
# `make run` and `make test` do all the set-up a fresh Debian 12 machine needs.

# The interpreter .venv is made from: Debian's own /usr/bin/python3 when it can make one (its
# interpreter links libpython statically; the line path ran 7-12 % faster on it than on a
# python3 built from source with a shared libpython: bench/README.md), else python3 on PATH.
PYTHON ?= $(shell for p in /usr/bin/python3 python3; do $$p -c 'import ensurepip, venv' >/dev/null 2>&1 && { echo $$p; exit; }; done; echo python3)
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests need: real logger, rsyslog, dhcpd, dhclient, Kea, namespaces; Chromium for the web page's browser
# test; python3-venv, so that .venv is made from Debian's python3 (`PYTHON` above).
DEB_PACKAGES := python3-venv bsdutils rsyslog rsyslog-gnutls isc-dhcp-server isc-dhcp-client kea-dhcp4-server iproute2 openssl prometheus systemd chromium
# and what the benchmarks compare against
BENCH_PACKAGES := rsyslog mtail chromium

.PHONY: install deps bench-deps apt run test check lab bench fuzz clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

deps:
	@$(MAKE) --no-print-directory apt PACKAGES="$(DEB_PACKAGES)"

bench-deps:
	@$(MAKE) --no-print-directory apt PACKAGES="$(BENCH_PACKAGES)"

# apt PACKAGES="...": install those that are missing (apt-get update first)
apt:
	@missing=""; for p in $(PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

run: install
	$(BIN)/pairwatch serve

test: deps install check
	$(BIN)/python -m pytest -m 'not lab'

# lint (with import order) and types of the service's code
check: install
	$(BIN)/ruff check parsers collector
	$(BIN)/mypy

lab: deps install
	$(BIN)/python -m pytest -m lab tests/lab

bench: bench-deps install
	$(BIN)/python bench/floor.py
	$(BIN)/python bench/parse.py
	$(BIN)/python bench/correlate.py
	$(BIN)/python bench/line_path.py
	$(BIN)/python bench/ingest.py --runs 1
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/agreement.py
	$(BIN)/python bench/scrape.py
	$(BIN)/python bench/webpage.py
	$(BIN)/python bench/soak.py --minutes 10

# coverage-guided fuzzing of framing + parsers (atheris); FUZZ_SECONDS bounds it
FUZZ_SECONDS ?= 60
fuzz: install
	$(BIN)/python -m pip install --quiet 'atheris>=2.3'
	$(BIN)/python tests/fuzz/fuzz_framing.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
