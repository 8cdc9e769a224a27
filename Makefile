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

.PHONY: all build test deps-apt deps-go fmt-check vet go-test fuzz bench clean

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

go-test: deps-go
	go test -count=1 $(GO_PKGS)

fuzz: deps-go
	go test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./internal/cluster

test: deps-apt deps-go fmt-check vet go-test fuzz

bench: deps-apt deps-go
	go test -run '^$$' -bench . -benchtime 3x $(GO_PKGS)

clean:
	rm -rf $(BIN)

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

.PHONY: build-virt deps-apt-virt-build e2e-vm

deps-apt-virt-build:
	@$(call apt_install,$(APT_VIRT_BUILD))

build-virt: deps-go deps-apt-virt-build
	CGO_ENABLED=1 go build -trimpath -o $(BIN)/kubesalt-virt ./cmd/kubesalt-virt

# Opt-in: debootstraps a small Debian guest with cloud-init (from the apt
# sources this machine uses), boots it under qemu TCG from a kubesalt seed
# and checks the static IP answers ping (inside the test's network
# namespace) and the hostname shows on the serial console.
e2e-vm: deps-apt deps-go
	@$(call apt_install,$(APT_VIRT_E2E))
	KUBESALT_E2E_VM=1 go test -count=1 -v -timeout $(E2E_TIMEOUT) -run '^TestE2EBootDebianGuest$$' ./internal/virt
