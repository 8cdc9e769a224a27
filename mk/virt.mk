# kubesalt-virt: the hypervisor's binary (cgo, libvirt). Build: libvirt's
# headers. Tests: the real libvirtd + qemu (TCG) test, the seed ISO checked
# by isoinfo/xorriso and Debian's cloud-init, virsh for the benchmark's
# baseline. cloud-init is only used as a checker here (without systemd it
# never runs at boot).
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
