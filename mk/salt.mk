# The Salt extension (saltext/, Python) and the kubernetes formula (salt/).
# Salt 3008.5 requires certifi>=2026.10.23, which the package index does not
# serve yet; 3008.4 is the newest 3008 release that installs.
PYTHON       ?= python3
VENV         := .venv
SALT_VERSION ?= 3008.4
# Salt pulls timelib, which pip builds from source (gcc, Python headers).
APT_SALTEXT  := python3-venv python3-dev gcc
APT_TEST     += $(APT_SALTEXT)
PYTEST       := $(CURDIR)/$(VENV)/bin/pytest -q -p no:cacheprovider

.PHONY: venv saltext-lint saltext-unit saltext-test formula-lint formula-unit test-formula deps-apt-formula bench-saltext bench-fanout

venv: $(VENV)/.kubesalt-venv

$(VENV)/.kubesalt-venv: saltext/pyproject.toml mk/salt.mk
	@$(call apt_install,$(APT_SALTEXT))
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q "salt==$(SALT_VERSION)" pytest pytest-xdist pytest-salt-factories ruff
	$(VENV)/bin/pip install -q -e saltext
	touch $@

saltext-lint: venv
	$(VENV)/bin/ruff check saltext
	$(VENV)/bin/ruff format --check saltext

# The unit tier: the modules, states, returner and binary adapter, no daemon.
saltext-unit: venv
	cd saltext && $(PYTEST) tests/unit

# Unit, functional and integration tiers; the integration tier starts a real
# salt-master and two salt-minions on 127.0.0.1 over the binaries `build` made.
saltext-test: venv build deps-apt
	cd saltext && KUBESALT_BIN_DIR=$(CURDIR)/$(BIN) $(PYTEST) tests

formula-lint: venv
	$(VENV)/bin/ruff check salt/tests
	$(VENV)/bin/ruff format --check salt/tests

# The formula's tests run a real salt-call/salt-run from the venv against the
# real kubesalt binary; iptables for the masquerade rule, CNI plugins for the
# local binaries, iproute2 for the namespace the network state is applied in,
# haproxy and keepalived to check the configs the formula renders for them.
APT_TEST_FORMULA := iproute2 iptables containernetworking-plugins haproxy keepalived
APT_TEST += $(APT_TEST_FORMULA)

deps-apt-formula:
	@$(call apt_install_nostart,$(APT_TEST_FORMULA))

# Render-only: every SLS rendered with salt-call --local, nothing applied;
# on two workers, as each salt-call spends a second starting Salt.
formula-unit: venv build-kubesalt
	cd salt/tests && KUBESALT_BIN=$(CURDIR)/$(BIN)/kubesalt $(PYTEST) --rootdir=. -m render -n 2 .

test-formula: venv build deps-apt-formula deps-apt-pki etcd containerd
	cd salt/tests && KUBESALT_BIN=$(CURDIR)/$(BIN)/kubesalt $(PYTEST) --rootdir=. .

# The master's ext_pillar work for one pillar refresh of every minion, at
# 20 to 1,000 nodes (a node add's fan-out; the planner runs once).
bench-fanout: venv build
	cd saltext && KUBESALT_BENCH_FANOUT=1 KUBESALT_BIN_DIR=$(CURDIR)/$(BIN) $(PYTEST) -q -s tests/functional/test_pillar_fanout.py

# salt-call --local kubesalt_net.routes_sync vs the binary, no-op of 1,000
# routes (needs root).
bench-saltext: venv deps-apt deps-go
	go test -run '^$$' -bench SaltCallOverhead -benchtime 3x ./cmd/kubesalt
