# kubesalt — `make test` and `make lab` install what they need themselves.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false

BIN        := bin
GO_PKGS    := ./...
FUZZTIME   ?= 10s
# Debian packages the tests use; installed only when missing.
APT_TEST   := iproute2 iputils-ping

.PHONY: all build test deps-apt deps-go fmt-check vet go-test fuzz bench bench-net clean

all: build

build: deps-go build-virt
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/kubesalt ./cmd/kubesalt

# Install the Debian packages in $(1) that are missing (needs root; skipped
# with a note otherwise, and the tests that need them then say so).
define apt_install
	missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "apt-get install:$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "not root: cannot install$$missing; tests needing them will skip"; fi; \
	fi
endef

deps-apt:
	@$(call apt_install,$(APT_TEST))

deps-go:
	go mod download

fmt-check:
	@out=$$(gofmt -l cmd internal); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: deps-go
	go vet $(GO_PKGS)

# internal/lab's end-to-end test runs in test-lab, with the venv's Salt.
go-test: deps-go
	go test -count=1 $$(go list $(GO_PKGS) | grep -v '/internal/lab$$')

# Brief fuzzing of the parsers that read outside input.
fuzz: deps-go
	go test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./internal/cluster
	go test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/nodes

test: deps-apt deps-apt-pki deps-go fmt-check vet go-test fuzz

# Benchmarks print each measurement beside its baseline, with the ratio.
bench: bench-net bench-pki bench-virt

# Pod CIDR planner vs kube-controller-manager's cidrset; route sync vs
# ip -batch and one `ip route add` per route (needs root).
bench-net: deps-apt deps-go
	go test -run '^$$' -bench . -benchtime 5x ./internal/cidr
	go test -run '^$$' -bench RoutesSync -benchtime 1x ./cmd/kubesalt

clean:
	rm -rf $(BIN)

# --- pki: certificates (internal/pki) ---
# etcd-server/etcd-client: the 3-member mutual-TLS etcd test on the issued
# certificates; openssl: `openssl verify` of every certificate.
APT_TEST_PKI := etcd-server etcd-client openssl
# The cfssl CLI, built for the benchmark's baseline only (never committed).
PKI_CFSSL_BIN ?= /tmp/kubesalt-cfssl-v1.6.5
export KUBESALT_CFSSL_BIN := $(PKI_CFSSL_BIN)

.PHONY: deps-apt-pki pki-bench-tools bench-pki
# Debian's etcd-server starts a system etcd when installed; the test starts
# its own, so a policy-rc.d (exit 101) keeps the package from starting one
# and is removed again if it was not there before.
deps-apt-pki:
	@if [ "$$(id -u)" = 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then \
	  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && \
	  trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi; \
	$(call apt_install,$(APT_TEST_PKI))

# Certificate set with ECDSA and RSA vs the cfssl CLI run once per certificate.
bench-pki: deps-apt deps-apt-pki deps-go pki-bench-tools
	go test -run '^$$' -bench . -benchtime 3x ./internal/pki

pki-bench-tools:
	@test -x $(PKI_CFSSL_BIN)/cfssljson || { echo "building the cfssl CLI v1.6.5 for the benchmark baseline into $(PKI_CFSSL_BIN)"; \
	  GOBIN=$(PKI_CFSSL_BIN) go install github.com/cloudflare/cfssl/cmd/cfssl@v1.6.5 github.com/cloudflare/cfssl/cmd/cfssljson@v1.6.5; }

# --- kubesalt-virt: the hypervisor's binary (cgo, libvirt) ------------------
# Build: libvirt's headers. Tests: the real libvirtd + qemu (TCG) test, the
# seed ISO checked by isoinfo/xorriso and Debian's cloud-init, virsh for the
# benchmark's baseline. cloud-init is only used as a checker here (without
# systemd it never runs at boot).
APT_VIRT_BUILD := libvirt-dev pkg-config gcc libc6-dev
APT_VIRT_TEST  := libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils \
                  dnsmasq-base iptables genisoimage xorriso cloud-init openssl util-linux
APT_VIRT_E2E   := debootstrap e2fsprogs iputils-ping
APT_TEST       += $(APT_VIRT_BUILD) $(APT_VIRT_TEST)
E2E_TIMEOUT    ?= 45m

.PHONY: build-virt deps-apt-virt-build e2e-vm bench-virt

deps-apt-virt-build:
	@$(call apt_install,$(APT_VIRT_BUILD))

build-virt: deps-go deps-apt-virt-build
	CGO_ENABLED=1 go build -trimpath -o $(BIN)/kubesalt-virt ./cmd/kubesalt-virt

# 50 domains defined and started on test:///default vs virsh, one process
# per domain.
bench-virt: deps-apt deps-go
	go test -run '^$$' -bench . -benchtime 3x ./internal/virt

# Opt-in: debootstraps a small Debian guest with cloud-init (from the apt
# sources this machine uses), boots it under qemu TCG from a kubesalt seed
# and checks the static IP answers ping (inside the test's network
# namespace) and the hostname shows on the serial console.
e2e-vm: deps-apt deps-go
	@$(call apt_install,$(APT_VIRT_E2E))
	KUBESALT_E2E_VM=1 go test -count=1 -v -timeout $(E2E_TIMEOUT) -run '^TestE2EBootDebianGuest$$' ./internal/virt

# ---- saltext: the Salt extension (Python), its tests and benchmark ----
# Salt 3008.5 requires certifi>=2026.10.23, which the package index does not
# serve yet; 3008.4 is the newest 3008 release that installs.
PYTHON       ?= python3
VENV         := .venv
SALT_VERSION ?= 3008.4
# Salt pulls timelib, which pip builds from source (gcc, Python headers).
APT_SALTEXT  := python3-venv python3-dev gcc
APT_TEST     += $(APT_SALTEXT)

.PHONY: venv saltext-lint saltext-test bench-saltext

venv: $(VENV)/.kubesalt-venv

$(VENV)/.kubesalt-venv: saltext/pyproject.toml
	@$(call apt_install,$(APT_SALTEXT))
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q "salt==$(SALT_VERSION)" pytest pytest-salt-factories ruff
	$(VENV)/bin/pip install -q -e saltext
	touch $@

saltext-lint: venv
	$(VENV)/bin/ruff check saltext
	$(VENV)/bin/ruff format --check saltext

# Unit, functional and integration tiers; the integration tier starts a real
# salt-master and two salt-minions on 127.0.0.1 over the binaries `build` made.
saltext-test: venv build deps-apt
	cd saltext && KUBESALT_BIN_DIR=$(CURDIR)/$(BIN) ../$(VENV)/bin/pytest -p no:cacheprovider tests

test: saltext-lint saltext-test

# salt-call --local kubesalt_net.routes_sync vs the binary, no-op of 1,000
# routes (needs root).
bench-saltext: venv deps-apt deps-go
	go test -run '^$$' -bench SaltCallOverhead -benchtime 3x ./cmd/kubesalt

bench: bench-saltext

# --- formula: the kubernetes Salt formula, orchestrations, reactors (salt/) ---
# The tests run a real salt-call/salt-run from the venv (`venv`: Salt 3008,
# pytest, pytest-salt-factories, ruff and saltext-kubesalt) against the real
# kubesalt binary; iptables for the masquerade rule, CNI plugins for the
# local binaries, iproute2 for the
# namespace the network state is applied in.
APT_TEST_FORMULA := iproute2 iptables containernetworking-plugins
FORMULA_PY ?= $(VENV)/bin/python

.PHONY: deps-apt-formula test-formula
deps-apt-formula:
	@$(call apt_install,$(APT_TEST_FORMULA))

test-formula: venv build deps-apt-formula deps-apt-pki
	$(dir $(FORMULA_PY))ruff check salt/tests
	$(dir $(FORMULA_PY))ruff format --check salt/tests
	cd salt/tests && KUBESALT_BIN=$(CURDIR)/$(BIN)/kubesalt $(abspath $(FORMULA_PY)) -m pytest -q -p no:cacheprovider --rootdir=. .

test: test-formula

# ---- Kubernetes binaries, built from the Go module proxy ----
# internal/k8sbuild is a module of its own that replaces k8s.io/kubernetes'
# staging modules with their published versions (its go.sum pins them).
# The binaries are rebuilt only when that module or this recipe changes.
K8S_VERSION    := v1.32.13
K8S_BUILD      := internal/k8sbuild
K8S_BIN        := $(BIN)/k8s
K8S_COMPONENTS := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
# Stamp the release, or `/version` says v0.0.0-master.
K8S_VERSION_VARS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(p).gitVersion=$(K8S_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=32 -X $(p).gitTreeState=clean)

.PHONY: k8s-binaries
k8s-binaries: $(BIN)/.k8s-built-$(K8S_VERSION)

$(BIN)/.k8s-built-$(K8S_VERSION): $(K8S_BUILD)/go.mod $(K8S_BUILD)/go.sum
	@mkdir -p $(K8S_BIN)
	cd $(K8S_BUILD) && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w $(K8S_VERSION_VARS)' \
	  -o $(CURDIR)/$(K8S_BIN)/ $(addprefix k8s.io/kubernetes/cmd/,$(K8S_COMPONENTS))
	@for c in $(K8S_COMPONENTS); do v=$$($(K8S_BIN)/$$c $$([ $$c = kubectl ] && echo version --client || echo --version) 2>&1 | sed -n 1p); \
	  case "$$v" in *$(K8S_VERSION)*) echo "$$c: $$v";; *) echo "$$c reports '$$v', not $(K8S_VERSION)"; exit 1;; esac; done
	touch $@

# ---- the lab: a Salt-managed cluster of network-namespace nodes ----
# `make lab` builds it (NODES=6: 3 masters, then workers) and shows the
# result; lab-add-node / lab-remove-node (NODE=name) change it through the
# reactors; lab-down removes everything it made, also after a failure.
# K8S=1 runs Kubernetes itself (make k8s-binaries, Debian's containerd)
# and its smoke test; MODE=controller lets the controller manager allocate
# the pod CIDRs, which kubesalt discovers.
LAB_DIR ?= .lab
NODES   ?= 6
K8S     ?=
MODE    ?= planned
APT_LAB := iproute2 iputils-ping util-linux procps containernetworking-plugins
APT_K8S := containerd runc iptables conntrack
LAB      = $(BIN)/kubesalt-lab --dir $(LAB_DIR) --salt-bin $(VENV)/bin
LAB_K8S := $(if $(filter 1 yes true,$(K8S)),k8s-binaries deps-apt-k8s)

.PHONY: deps-apt-lab deps-apt-k8s build-lab lab lab-show lab-add-node lab-remove-node lab-down test-lab test-lab-k8s bench-lab bench-lab-k8s

deps-apt-lab: deps-apt-pki
	@$(call apt_install,$(APT_LAB))

deps-apt-k8s: deps-apt-lab
	@$(call apt_install,$(APT_K8S))

build-lab: deps-go
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/kubesalt-lab ./cmd/kubesalt-lab

build: build-lab

lab: venv build deps-apt-lab $(LAB_K8S)
	$(LAB) up --nodes $(NODES) $(if $(LAB_K8S),--k8s) --mode $(MODE)

lab-show: build-lab
	$(LAB) show

lab-add-node: build-lab $(LAB_K8S)
	$(LAB) add-node

lab-remove-node: build-lab
	$(LAB) remove-node $(if $(NODE),--node $(NODE))

lab-down: build-lab
	$(LAB) down

# The same code path as `make lab`, smaller: 2 nodes, a worker added and
# removed, second state.apply without changes, nothing left after teardown.
test-lab: venv build deps-apt-lab
	KUBESALT_LAB_SALT_BIN=$(CURDIR)/$(VENV)/bin go test -count=1 -timeout 30m -run '^TestLabEndToEnd$$' ./internal/lab

test: test-lab

# Kubernetes in the lab: planned mode (3 masters) with a worker added, and
# controller mode; each checks the control plane, Ready nodes, pod CIDRs,
# pod-to-pod and a Service. First: a second k8s-binaries is a no-op.
test-lab-k8s: venv build deps-apt-k8s k8s-binaries
	@$(MAKE) -q k8s-binaries || { echo "make k8s-binaries would build again: its second run must be a no-op"; exit 1; }
	KUBESALT_LAB_SALT_BIN=$(CURDIR)/$(VENV)/bin go test -count=1 -timeout 40m -run '^TestLabKubernetes' -v ./internal/lab 2>&1 | grep -v '^=== \(PAUSE\|CONT\)'

test: test-lab-k8s

# Time to the first full pod-to-pod success and to a node added and routed
# everywhere, for 6 and 20 nodes, beside Kubespray's scale.yml.
bench-lab: venv build deps-apt-lab
	KUBESALT_LAB_SALT_BIN=$(CURDIR)/$(VENV)/bin go test -run '^$$' -bench '^BenchmarkLab$$' -benchtime 1x -timeout 60m ./internal/lab

# Time from nothing to Kubernetes Ready and the smoke test passed, per
# phase, and for an added worker to be Ready and reachable.
bench-lab-k8s: venv build deps-apt-k8s k8s-binaries
	KUBESALT_LAB_SALT_BIN=$(CURDIR)/$(VENV)/bin go test -run '^$$' -bench '^BenchmarkLabKubernetes$$' -benchtime 1x -timeout 60m ./internal/lab

# ---- kubesalt-pod: the pause and test images' only file ----
# Static, so the images need nothing else; `kubesalt-pod image` writes the
# OCI tarballs for `ctr -n k8s.io images import`. The real-containerd test
# (TestContainerdImportAndRun) needs root, containerd, ctr and runc.
APT_POD_TEST := containerd runc util-linux
APT_TEST     += $(APT_POD_TEST)

.PHONY: build-pod

build-pod: deps-go
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $(BIN)/kubesalt-pod ./cmd/kubesalt-pod

build: build-pod
