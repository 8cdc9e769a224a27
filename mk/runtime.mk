# The container runtime and etcd that Kubernetes v1.36 supports, built from
# the Go module proxy as the Kubernetes binaries are: Debian's containerd 1.6
# (no CRI RuntimeConfig: the kubelet guesses the cgroup driver), runc 1.1 and
# etcd 3.4 are older than what v1.36 is tested with (containerd 2, etcd 3.6).
# Each is a build module of its own (internal/<name>build) whose go.sum pins
# it, built into bin/<name>/<version>/ under the version the formula's
# versions:<name> gives; rebuilt only when its build module changes.
ETCD_VERSION       := v3.6.16
CONTAINERD_VERSION := 2.2.9
RUNC_VERSION       := v1.4.4
ETCD_BIN           := $(BIN)/etcd/$(ETCD_VERSION)
CONTAINERD_BIN     := $(BIN)/containerd/$(CONTAINERD_VERSION)
RUNC_BIN           := $(BIN)/runc/$(RUNC_VERSION)

# The module must pin the version named here.
define check_pin
	@grep -q '^\s*\(require \)\?$(1) $(2)$$' $(3)/go.mod || { echo "$(3)/go.mod does not require $(1) $(2): change both together"; exit 1; }
endef
# The binary must say it is the version named here.
define check_version
	@v=$$($(1) 2>&1 | sed -n 1p); case "$$v" in *$(2)*) echo "$(notdir $(word 1,$(1))): $$v";; \
	  *) echo "$(word 1,$(1)) reports '$$v', not $(2)"; exit 1;; esac
endef

.PHONY: runtime-binaries etcd containerd runc
runtime-binaries: etcd containerd runc
etcd: $(BIN)/.etcd-built-$(ETCD_VERSION)
containerd: $(BIN)/.containerd-built-$(CONTAINERD_VERSION)
runc: $(BIN)/.runc-built-$(RUNC_VERSION)

# etcd, etcdctl and etcdutl are each the main package of a module of their own.
$(BIN)/.etcd-built-$(ETCD_VERSION): internal/etcdbuild/go.mod internal/etcdbuild/go.sum
	$(call check_pin,go.etcd.io/etcd/server/v3,$(ETCD_VERSION),internal/etcdbuild)
	@mkdir -p $(ETCD_BIN)
	cd internal/etcdbuild && for m in server:etcd etcdctl:etcdctl etcdutl:etcdutl; do \
	  CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $(CURDIR)/$(ETCD_BIN)/$${m#*:} go.etcd.io/etcd/$${m%:*}/v3 || exit 1; done
	$(call check_version,$(ETCD_BIN)/etcd --version,$(ETCD_VERSION:v%=%))
	$(call check_version,$(ETCD_BIN)/etcdctl version,$(ETCD_VERSION:v%=%))
	$(call check_version,$(ETCD_BIN)/etcdutl version,$(ETCD_VERSION:v%=%))
	touch $@

# Static, without cgo: the btrfs snapshotter (cgo, libbtrfs) is left out;
# overlayfs and native are what the kubelet's pods use.
CONTAINERD_PKG := github.com/containerd/containerd/v2
$(BIN)/.containerd-built-$(CONTAINERD_VERSION): internal/containerdbuild/go.mod internal/containerdbuild/go.sum
	$(call check_pin,$(CONTAINERD_PKG),v$(CONTAINERD_VERSION),internal/containerdbuild)
	@mkdir -p $(CONTAINERD_BIN)
	cd internal/containerdbuild && CGO_ENABLED=0 go build -trimpath -tags 'no_btrfs' \
	  -ldflags '-s -w -X $(CONTAINERD_PKG)/version.Version=v$(CONTAINERD_VERSION) -X $(CONTAINERD_PKG)/version.Package=$(CONTAINERD_PKG)' \
	  -o $(CURDIR)/$(CONTAINERD_BIN)/ $(CONTAINERD_PKG)/cmd/containerd $(CONTAINERD_PKG)/cmd/containerd-shim-runc-v2 $(CONTAINERD_PKG)/cmd/ctr
	$(call check_version,$(CONTAINERD_BIN)/containerd --version,$(CONTAINERD_VERSION))
	$(call check_version,$(CONTAINERD_BIN)/ctr --version,$(CONTAINERD_VERSION))
	touch $@

# runc needs cgo (its nsenter is C) and libseccomp for the seccomp profiles
# pods run under (the kubelet's RuntimeDefault); linked statically as
# runc's own release is, so it runs wherever it is copied. The packages are
# installed in the recipe, not by a phony prerequisite, so that `make -q runc`
# says whether runc is built.
APT_RUNC := gcc libc6-dev libseccomp-dev pkg-config
$(BIN)/.runc-built-$(RUNC_VERSION): internal/runcbuild/go.mod internal/runcbuild/go.sum
	@$(call apt_install,$(APT_RUNC))
	$(call check_pin,github.com/opencontainers/runc,$(RUNC_VERSION),internal/runcbuild)
	@mkdir -p $(RUNC_BIN)
	cd internal/runcbuild && CGO_ENABLED=1 go build -trimpath -buildmode=pie -tags 'seccomp urfave_cli_no_docs netgo osusergo' \
	  -ldflags '-s -w -X main.version=$(RUNC_VERSION:v%=%) -linkmode external -extldflags -static-pie' \
	  -o $(CURDIR)/$(RUNC_BIN)/runc github.com/opencontainers/runc
	$(call check_version,$(RUNC_BIN)/runc --version,$(RUNC_VERSION:v%=%))
	@$(RUNC_BIN)/runc features | grep -q '"enabled": true' || { echo "runc built without seccomp"; exit 1; }
	touch $@
