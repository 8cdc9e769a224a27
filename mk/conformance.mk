# The upstream conformance suite against the lab. internal/e2ebuild/<minor> is
# the build module of e2e.test, the ginkgo runner and the images' programs
# (agnhost, nonewprivs, sample-apiserver), pinned by its go.sum like
# internal/k8sbuild; `make e2e-binaries` builds them into bin/e2e/<version>,
# with the image files the Kubernetes module holds (porter's certificate,
# the kitten and nautilus pages). `make conformance` (against a running
# `make lab K8S=1`) builds the images the suite lists on a Debian tree
# (debootstrap, kept in bin/e2e/rootfs), has every worker import them, and
# runs the [Conformance] specs: FOCUS=<regexp> narrows them, SERIAL=1 adds
# the [Serial] and [Disruptive] ones. The report: .lab/conformance.
E2E_BUILD := internal/e2ebuild/v$(K8S_MAJOR).$(K8S_MINOR)
E2E_BIN   := $(BIN)/e2e/$(K8S_VERSION)
E2E_PROGRAMS := github.com/onsi/ginkgo/v2/ginkgo k8s.io/kubernetes/test/images/agnhost \
  k8s.io/kubernetes/test/images/nonewprivs k8s.io/sample-apiserver
APT_CONFORMANCE := debootstrap
# The CI's subset: Services, DNS and the network's pod checks, Pods, and the
# ConfigMap and Secret volumes (about 60 specs).
CONFORMANCE_CI_FOCUS := \[sig-network\] (Services|DNS|Networking)|\[sig-node\] (Pods|ConfigMap|Secrets)|\[sig-storage\] (ConfigMap|Secrets)

.PHONY: e2e-binaries conformance conformance-ci deps-apt-conformance
e2e-binaries: $(BIN)/.e2e-built-$(K8S_VERSION)

deps-apt-conformance:
	@$(call apt_install,$(APT_CONFORMANCE))

$(BIN)/.e2e-built-$(K8S_VERSION): $(wildcard $(E2E_BUILD)/go.mod $(E2E_BUILD)/go.sum)
	@grep -qE '^(require)?[[:space:]]+k8s.io/kubernetes $(K8S_VERSION)$$' $(E2E_BUILD)/go.mod 2>/dev/null || { \
	  echo "K8S_VERSION=$(K8S_VERSION): no build module $(E2E_BUILD) requiring k8s.io/kubernetes $(K8S_VERSION)"; exit 1; }
	@mkdir -p $(E2E_BIN)
	cd $(E2E_BUILD) && CGO_ENABLED=0 go test -c -vet=off -trimpath -ldflags '-s -w $(K8S_VERSION_VARS)' \
	  -o $(CURDIR)/$(E2E_BIN)/e2e.test k8s.io/kubernetes/test/e2e
	cd $(E2E_BUILD) && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w $(K8S_VERSION_VARS)' -o $(CURDIR)/$(E2E_BIN)/ $(E2E_PROGRAMS)
	@src=$$(cd $(E2E_BUILD) && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/test/images; \
	  install -D -m 0644 -t $(E2E_BIN)/porter $$src/agnhost/porter/localhost.crt $$src/agnhost/porter/localhost.key; \
	  for p in kitten nautilus; do install -D -m 0644 -t $(E2E_BIN)/$$p $$src/$$p/html/*; done
	@v=$$($(E2E_BIN)/e2e.test --version); case "$$v" in *$(K8S_VERSION)*) echo "e2e.test: $$v";; \
	  *) echo "e2e.test reports '$$v', not $(K8S_VERSION)"; exit 1;; esac
	touch $@

conformance: build build-lab deps-apt-conformance etcd e2e-binaries
	$(LAB) conformance $(if $(FOCUS),--focus '$(FOCUS)') $(if $(filter 1 yes true,$(SERIAL)),--serial)
