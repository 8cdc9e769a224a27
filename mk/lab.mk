# The lab: a Salt-managed cluster of network-namespace nodes. `make lab`
# builds it (NODES=6: 3 masters, then workers) and shows the result;
# lab-add-node (ROLE=master: a master) / lab-remove-node (NODE=name; a
# worker is drained, a master leaves etcd and every load balancer) change it
# through the reactors; lab-failover freezes a whole master (K8S);
# lab-down removes everything it made, also after a failure. Its etcd is
# `make etcd`'s. K8S=1 runs Kubernetes itself (K8S_VERSION, from make
# k8s-binaries; containerd and runc from make containerd runc) and its smoke
# test; MODE=controller lets the controller manager allocate the pod CIDRs,
# which kubesalt discovers.
LAB_DIR ?= .lab
NODES   ?= 6
K8S     ?=
MODE    ?= planned
APT_LAB := iproute2 iputils-ping util-linux procps containernetworking-plugins
# haproxy (every node's API load balancer), keepalived and curl (the VIP
# on the masters and its health check).
APT_K8S := iptables conntrack haproxy keepalived curl
APT_TEST += $(APT_LAB) $(APT_K8S)
LAB      = $(BIN)/kubesalt-lab --dir $(LAB_DIR) --salt-bin $(VENV)/bin
K8S_BINS := k8s-binaries coredns containerd runc
LAB_K8S := $(if $(filter 1 yes true,$(K8S)),$(K8S_BINS) deps-apt-k8s)
LAB_ENV := KUBESALT_LAB_SALT_BIN=$(CURDIR)/$(VENV)/bin KUBESALT_LAB_K8S_VERSION=$(K8S_VERSION)

.PHONY: deps-apt-lab deps-apt-k8s build-lab lab lab-show lab-add-node lab-remove-node lab-add-vm lab-remove-vm lab-down \
        lab-failover test-lab test-apiserver test-lab-k8s test-lab-rotation test-lab-upgrade bench-lab bench-lab-k8s bench-dns newcomer

deps-apt-lab: deps-apt-pki
	@$(call apt_install,$(APT_LAB))

# Like etcd's (deps-apt-pki), Debian's haproxy and keepalived would start a
# system daemon when installed: the formula runs its own.
deps-apt-k8s: deps-apt-lab
	@$(call apt_install_nostart,$(APT_K8S))

build-lab: deps-go
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/kubesalt-lab ./cmd/kubesalt-lab

lab: venv build deps-apt-lab etcd $(LAB_K8S)
	$(LAB) up --nodes $(NODES) $(if $(LAB_K8S),--k8s --k8s-version $(K8S_VERSION)) --mode $(MODE)

lab-show: build-lab
	$(LAB) show

lab-add-node: build-lab etcd $(LAB_K8S)
	$(LAB) add-node $(if $(ROLE),--role $(ROLE))

lab-remove-node: build-lab
	$(LAB) remove-node $(if $(NODE),--node $(NODE))

# A Kubernetes lab: etcd, the API server, the controller manager and the
# scheduler of the controller manager's leader frozen for 45 s; asserts the
# nodes stay Ready, the leases move, a Deployment scaled up gets its pods,
# etcd keeps quorum, and after the thaw etcd 3/3 and every haproxy whole;
# prints how long each took and how long requests through a worker's
# node-local endpoint and the VIP failed.
lab-failover: build-lab
	$(LAB) failover

# A worker as a VM: the node image, a libvirtd in a
# namespace of its own bridged onto the node network, kubesalt_virt.node_ensure
# through Salt; the created event's add_node does the rest. Prints the time
# from node ensure to each step. lab-remove-vm (NODE=name) takes it out.
lab-add-vm: build-lab build-virt venv deps-apt-virt-lab
	$(LAB) add-vm $(if $(VMS),--vms $(VMS))

lab-remove-vm: build-lab
	$(LAB) remove-vm $(if $(NODE),--node $(NODE))

lab-down: build-lab
	$(LAB) down

# The same code path as `make lab`, smaller: 2 nodes, a worker added and
# removed, second state.apply without changes, nothing left after teardown.
test-lab: venv build deps-apt-lab etcd
	$(LAB_ENV) go test -count=1 -timeout 30m -run '^TestLabEndToEnd$$' ./internal/lab

# Kubernetes in the lab: planned mode (3 masters) with a worker added, then
# an etcd backup and restore (it prints the time from etcd_restore's start
# to the smoke test passed), and controller mode; each checks the control
# plane, Ready nodes, pod CIDRs, pod-to-pod, a Service, the cluster DNS and
# the rest of Kubernetes The Hard Way's smoke test; the planned-mode lab then
# runs the upstream conformance suite's CI subset (CONFORMANCE_CI_FOCUS, in
# mk/conformance.mk), every spec of which must pass. First: a second build of
# any of its binaries is a no-op.
test-lab-k8s: venv build deps-apt-k8s deps-apt-conformance etcd $(K8S_BINS) e2e-binaries
	@for t in etcd $(K8S_BINS) e2e-binaries; do $(MAKE) -q $$t || { echo "make $$t would build again: its second run must be a no-op"; exit 1; }; done
	$(LAB_ENV) KUBESALT_CONFORMANCE_FOCUS='$(CONFORMANCE_CI_FOCUS)' \
	  go test -count=1 -timeout 60m -run '^TestLabKubernetes' -v ./internal/lab 2>&1 | grep -v '^=== \(PAUSE\|CONT\)'

# Opt-in (a lab of its own, ~15 min): 3 masters and 3 workers whose
# certificates last 24 minutes (renewed in their last 18) run past the
# first renewal by the rotation schedule; every certificate replaced
# before it expires (node files and served ones), no request through a
# worker's node-local endpoint failed, nodes Ready, pod-to-pod and the
# Service. Prints the rotation's time and the longest unavailability.
test-lab-rotation: venv build deps-apt-k8s etcd $(K8S_BINS)
	$(LAB_ENV) go test -count=1 -timeout 40m -run '^TestLabRotation$$' -v ./internal/lab 2>&1 | grep -v '^=== \(PAUSE\|CONT\)'

# Opt-in (a 6-node lab of its own, ~16 min with the preflight's): built at
# UPGRADE_FROM, a Deployment (two pods per worker, a PodDisruptionBudget,
# a NodePort Service) asked every 100 ms from a master's namespace through
# every worker's NodePort while versions:kubernetes moves to UPGRADE_TO and
# orch.kubernetes.pillar_changed upgrades the cluster; none may fail, every
# node must run UPGRADE_TO and the smoke test pass. Prints each step's time
# (snapshot, each master, each worker batch), requests sent and failed and
# the longest gap. TestLabUpgradePreflight (a smaller lab, one release):
# versions read from the running components, test=True's plan, a skipped
# minor refused.
UPGRADE_FROM ?= v1.35.4
UPGRADE_TO   ?= v1.36.3
test-lab-upgrade: venv build deps-apt-k8s etcd coredns containerd runc
	$(MAKE) k8s-binaries K8S_VERSION=$(UPGRADE_FROM)
	$(MAKE) k8s-binaries K8S_VERSION=$(UPGRADE_TO)
	KUBESALT_UPGRADE_FROM=$(UPGRADE_FROM) KUBESALT_UPGRADE_TO=$(UPGRADE_TO) $(LAB_ENV) \
	  go test -count=1 -timeout 60m -run '^TestLabUpgrade(Preflight)?$$' -v ./internal/lab 2>&1 | grep -v '^=== \(PAUSE\|CONT\)'

# Time to the first full pod-to-pod success and to a node added and routed
# everywhere, for 6 and 20 nodes (NODES=50: that count alone; NODES="6 50"),
# each beside its floor (minions answering test.ping), issue 19's baselines
# and Kubespray's scale.yml; the add's and the bootstrap's orchestration
# timelines, the planner's runs, and the add time's growth with the nodes.
bench-lab: venv build deps-apt-lab etcd
	$(LAB_ENV) $(if $(filter command line,$(origin NODES)),KUBESALT_BENCH_NODES="$(NODES)") \
	  go test -run '^$$' -bench '^BenchmarkLab$$' -benchtime 1x -timeout 90m ./internal/lab

# Time from nothing to Kubernetes Ready and the smoke test passed, per
# phase, and for an added worker to be Ready and reachable.
bench-lab-k8s: venv build deps-apt-k8s etcd $(K8S_BINS)
	$(LAB_ENV) go test -run '^$$' -bench '^BenchmarkLabKubernetes$$' -benchtime 1x -timeout 60m ./internal/lab

# Queries per second one CoreDNS replica answers to a pod, beside the
# node's resolver (a lab of 1 master and 2 workers; `bin/kubesalt-lab
# bench-dns` measures on a lab that is up).
bench-dns: venv build deps-apt-k8s etcd $(K8S_BINS)
	$(LAB_ENV) go test -run '^$$' -bench '^BenchmarkLabDNS$$' -benchtime 1x -timeout 30m ./internal/lab

# A newcomer's first hour, checked: a clean clone in a temporary directory,
# then the README's lab commands, each one's result asserted, and nothing
# left on the host (hack/newcomer.sh).
newcomer:
	hack/newcomer.sh
