# kubesalt-virt: the hypervisor's binary (cgo, libvirt). Build: libvirt's
# headers. Tests: the real libvirtd + qemu (TCG) test, the seed ISO checked
# by isoinfo/xorriso and Debian's cloud-init, virsh for the benchmark's
# baseline. cloud-init is only used as a checker here (without systemd it
# never runs at boot).
APT_VIRT_BUILD := libvirt-dev pkg-config gcc libc6-dev
APT_VIRT_TEST  := libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils \
                  dnsmasq-base iptables genisoimage xorriso cloud-init openssl util-linux
# The node image (internal/nodeimage): a Debian tree, a FAT boot partition
# with syslinux, the ext4 root, written into an MBR disk without a mount.
APT_VIRT_E2E   := debootstrap e2fsprogs iputils-ping dosfstools mtools syslinux syslinux-common fdisk
APT_TEST       += $(APT_VIRT_BUILD) $(APT_VIRT_TEST)
E2E_TIMEOUT    ?= 45m

.PHONY: build-virt deps-apt-virt-build deps-apt-virt-lab e2e-vm bench-vm bench-virt

# The lab's VMs: libvirtd, qemu and virsh, and what the node image is made with.
deps-apt-virt-lab:
	@$(call apt_install,$(APT_VIRT_TEST) $(APT_VIRT_E2E))

deps-apt-virt-build:
	@$(call apt_install,$(APT_VIRT_BUILD))

build-virt: deps-go deps-apt-virt-build
	CGO_ENABLED=1 go build -trimpath -o $(BIN)/kubesalt-virt ./cmd/kubesalt-virt

# 50 domains defined and started on test:///default vs virsh, one process
# per domain.
bench-virt: deps-apt deps-go
	go test -run '^$$' -bench . -benchtime 3x ./internal/virt

# Opt-in: builds the node image (bin/node-image/, kept while its inputs do
# not change: Debian 12 from the apt sources this machine uses, syslinux,
# cloud-init, Salt $(SALT_VERSION) and saltext-kubesalt from the venv's
# wheels) and boots it under qemu TCG in domains kubesalt-virt defines:
# first against a bare salt-master (the static IP, the minion answering
# with its pre-accepted key, node remove leaving nothing), then in a
# 1-master, 1-worker lab (make lab-add-vm's path: a routed node, pods
# reaching a namespace worker's without NAT, removed, nothing left).
VM_ENV = KUBESALT_E2E_VM=1 KUBESALT_NODEIMAGE_CACHE=$(CURDIR)/$(BIN)/node-image KUBESALT_PIP=$(CURDIR)/$(VENV)/bin/pip \
	  KUBESALT_SALT_BIN=$(CURDIR)/$(VENV)/bin KUBESALT_SALT_VERSION=$(SALT_VERSION) KUBESALT_LAB_SALT_BIN=$(CURDIR)/$(VENV)/bin
e2e-vm: deps-apt deps-go venv build etcd deps-apt-virt-lab deps-apt-lab
	$(VM_ENV) go test -count=1 -v -timeout $(E2E_TIMEOUT) -run '^TestE2EVM' ./internal/virt
	$(VM_ENV) go test -count=1 -v -timeout $(E2E_TIMEOUT) -run '^TestLabVM$$' ./internal/lab

# A VM's times from node ensure (running, static IP, minion, routed,
# pod-to-pod) beside a namespace node's in the same lab.
bench-vm: deps-apt deps-go venv build etcd deps-apt-virt-lab deps-apt-lab
	$(VM_ENV) go test -count=1 -run '^$$' -bench '^BenchmarkLabVM$$' -benchtime 1x -timeout $(E2E_TIMEOUT) ./internal/lab
