# The Go binaries and tests.
BIN      := bin
GO_PKGS  := ./...
FUZZTIME ?= 10s

.PHONY: build-kubesalt build-pod fmt-check vet go-unit go-test fuzz bench-net bench-routes-watch bench-pki pki-bench-tools clean

build-kubesalt: deps-go
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/kubesalt ./cmd/kubesalt

# kubesalt-pod: the pause and test images' only file. Static, so the images
# need nothing else; `kubesalt-pod image` writes the OCI tarballs.
APT_TEST += containerd runc util-linux
build-pod: deps-go
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $(BIN)/kubesalt-pod ./cmd/kubesalt-pod

fmt-check:
	@out=$$(gofmt -l cmd internal); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: deps-go deps-apt-virt-build
	go vet $(GO_PKGS)

# -short: every test that needs root, a daemon, Salt or a lab skips
# (internal/testenv).
go-unit: deps-go deps-apt-virt-build
	go test -short -count=1 $(GO_PKGS)

# Everything but the lab and the API server tests, which need the venv's Salt
# and the Kubernetes binaries (test-lab, test-apiserver, test-lab-k8s).
go-test: deps-go deps-apt deps-apt-virt-build
	env -u KUBESALT_LAB_SALT_BIN -u KUBESALT_K8S_BIN_DIR -u KUBESALT_ETCD_BIN_DIR go test -count=1 $(GO_PKGS)

# Brief fuzzing of the parsers that read outside input.
fuzz: deps-go
	go test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./internal/cluster
	go test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/nodes

# Pod CIDR planner vs kube-controller-manager's cidrset; route sync vs
# ip -batch and one `ip route add` per route (needs root).
bench-net: deps-apt deps-go
	go test -run '^$$' -bench . -benchtime 5x ./internal/cidr
	go test -run '^$$' -bench RoutesSync -benchtime 1x ./cmd/kubesalt

# `kubesalt routes watch` (needs root, about a minute): a deleted route's
# return beside flannel's 10 s re-add, idle CPU over 30 s, CPU through
# 1,000 route events beside one `routes sync` per event.
bench-routes-watch: deps-apt deps-go
	go test -run '^$$' -bench RoutesWatch -benchtime 1x ./cmd/kubesalt

# Certificate set with ECDSA and RSA vs the cfssl CLI run once per
# certificate, built for the baseline only (never committed).
PKI_CFSSL_BIN ?= /tmp/kubesalt-cfssl-v1.6.5
export KUBESALT_CFSSL_BIN := $(PKI_CFSSL_BIN)
bench-pki: deps-apt deps-go pki-bench-tools
	go test -run '^$$' -bench . -benchtime 3x ./internal/pki

pki-bench-tools:
	@test -x $(PKI_CFSSL_BIN)/cfssljson || { echo "building the cfssl CLI v1.6.5 for the benchmark baseline into $(PKI_CFSSL_BIN)"; \
	  GOBIN=$(PKI_CFSSL_BIN) go install github.com/cloudflare/cfssl/cmd/cfssl@v1.6.5 github.com/cloudflare/cfssl/cmd/cfssljson@v1.6.5; }

clean:
	rm -rf $(BIN)
