# Kubernetes binaries, built from the Go module proxy, one directory per
# release: `make k8s-binaries K8S_VERSION=v1.35.4` builds into bin/k8s/v1.35.4.
# internal/k8sbuild/<minor> is a module of its own per minor that replaces
# k8s.io/kubernetes' staging modules with their published versions (its go.sum
# pins them; its require names the one patch release it builds). A release is
# rebuilt only when its build module changes.
K8S_VERSION    ?= v1.36.3
K8S_MAJOR      := $(patsubst v%,%,$(word 1,$(subst ., ,$(K8S_VERSION))))
K8S_MINOR      := $(word 2,$(subst ., ,$(K8S_VERSION)))
K8S_BUILD      := internal/k8sbuild/v$(K8S_MAJOR).$(K8S_MINOR)
K8S_BIN        := $(BIN)/k8s/$(K8S_VERSION)
K8S_COMPONENTS := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
# Stamp the release, or `/version` says v0.0.0-master.
K8S_VERSION_VARS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(p).gitVersion=$(K8S_VERSION) -X $(p).gitMajor=$(K8S_MAJOR) -X $(p).gitMinor=$(K8S_MINOR) -X $(p).gitTreeState=clean)

.PHONY: k8s-binaries test-apiserver
k8s-binaries: $(BIN)/.k8s-built-$(K8S_VERSION)

$(BIN)/.k8s-built-$(K8S_VERSION): $(wildcard $(K8S_BUILD)/go.mod $(K8S_BUILD)/go.sum)
	@grep -qx 'require k8s.io/kubernetes $(K8S_VERSION)' $(K8S_BUILD)/go.mod 2>/dev/null || { \
	  echo "K8S_VERSION=$(K8S_VERSION): no build module $(K8S_BUILD) requiring k8s.io/kubernetes $(K8S_VERSION);" \
	       "built releases: $$(sed -n 's/^require k8s.io\/kubernetes //p' internal/k8sbuild/*/go.mod | tr '\n' ' ')"; exit 1; }
	@mkdir -p $(K8S_BIN)
	cd $(K8S_BUILD) && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w $(K8S_VERSION_VARS)' \
	  -o $(CURDIR)/$(K8S_BIN)/ $(addprefix k8s.io/kubernetes/cmd/,$(K8S_COMPONENTS))
	@for c in $(K8S_COMPONENTS); do v=$$($(K8S_BIN)/$$c $$([ $$c = kubectl ] && echo version --client || echo --version) 2>&1 | sed -n 1p); \
	  case "$$v" in *$(K8S_VERSION)*) echo "$$c: $$v";; *) echo "$$c reports '$$v', not $(K8S_VERSION)"; exit 1;; esac; done
	touch $@

# The tests that need a real kube-apiserver (over `make etcd`'s etcd): setting
# Node.spec.podCIDRs through the API, and the add-ons applied with kubectl.
test-apiserver: build k8s-binaries etcd
	KUBESALT_K8S_BIN_DIR=$(CURDIR)/$(K8S_BIN) KUBESALT_ETCD_BIN_DIR=$(CURDIR)/$(ETCD_BIN) go test -count=1 -run '^(TestNodesSetCIDRs|TestAddonsApply)' ./cmd/kubesalt

# CoreDNS, the cluster DNS add-on, built the same way: internal/corednsbuild
# is a module of its own (a small main with the add-on's plugins), pinned by
# its go.sum; rebuilt only when that module or this recipe changes.
COREDNS_VERSION := v1.14.7
COREDNS_BUILD   := internal/corednsbuild
# Beside the releases, not in one: any Kubernetes release runs this CoreDNS.
COREDNS_BIN     := $(BIN)/k8s

.PHONY: coredns
coredns: $(BIN)/.coredns-built-$(COREDNS_VERSION)

$(BIN)/.coredns-built-$(COREDNS_VERSION): $(COREDNS_BUILD)/go.mod $(COREDNS_BUILD)/go.sum $(COREDNS_BUILD)/main.go
	@mkdir -p $(COREDNS_BIN)
	cd $(COREDNS_BUILD) && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w -X github.com/coredns/coredns/coremain.GitCommit=$(COREDNS_VERSION)' \
	  -o $(CURDIR)/$(COREDNS_BIN)/coredns .
	@v=$$($(COREDNS_BIN)/coredns -version | sed -n 1p); case "$$v" in *$(COREDNS_VERSION:v%=%)*) echo "coredns: $$v";; \
	  *) echo "coredns reports '$$v', not $(COREDNS_VERSION)"; exit 1;; esac
	@plugins=$$($(COREDNS_BIN)/coredns -plugins | tr -d ' ' | sort | tr '\n' ' '); echo "coredns plugins: $$plugins"
	touch $@
