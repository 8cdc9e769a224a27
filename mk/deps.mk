# Debian packages, installed only when missing (needs root; otherwise a note,
# and the tests that need them say so when they skip).
define apt_install
	missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "apt-get install:$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "not root: cannot install$$missing; tests needing them will skip"; fi; \
	fi
endef

# apt_install, with a policy-rc.d (exit 101) that keeps packages from
# starting their daemons, removed again if it was not there before.
define apt_install_nostart
	if [ "$$(id -u)" = 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then \
	  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && \
	  trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi; \
	$(call apt_install,$(1))
endef

# Every package a test uses; each mk file adds its own to APT_TEST.
APT_TEST := iproute2 iputils-ping

# etcd-server/etcd-client: the 3-member mutual-TLS etcd test; openssl:
# `openssl verify` of every certificate.
APT_TEST_PKI := etcd-server etcd-client openssl

.PHONY: deps-apt deps-apt-pki deps-go
deps-apt: deps-apt-pki
	@$(call apt_install,$(APT_TEST))

# Debian's etcd-server starts a system etcd when installed; the tests start
# their own, so a policy-rc.d (exit 101) keeps the package from starting one
# and is removed again if it was not there before.
deps-apt-pki:
	@$(call apt_install_nostart,$(APT_TEST_PKI))

deps-go:
	go mod download
