# kubesalt. The four targets people run are declared here, each once, with
# everything it runs; the recipes live in mk/*.mk, one file per component.
# `make test` and `make lab` install what they need themselves (Debian
# packages as root, Go modules, the Python venv with Salt).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false

.PHONY: all build unit test bench
all: build

# The binaries, into bin/.
build: build-kubesalt build-virt build-lab build-pod

# The fast tier, without root, daemons or a lab (under 2 minutes on 2 cores
# once the Go and venv caches are warm): run it before every commit.
unit: fmt-check vet go-unit saltext-lint saltext-unit formula-lint formula-unit

# The full gate CI runs: every test, with real namespaces, etcd, containerd,
# libvirtd, a Salt master and minions, and Kubernetes in the lab.
test: deps-apt fmt-check vet go-test fuzz saltext-lint saltext-test formula-lint test-formula \
      test-lab test-apiserver test-lab-k8s

# Benchmarks print each measurement beside its baseline, with the ratio.
# The lab's (bench-lab, bench-lab-k8s) take minutes and run on their own.
bench: bench-net bench-routes-watch bench-pki bench-virt bench-saltext

include mk/deps.mk mk/go.mk mk/virt.mk mk/salt.mk mk/k8s.mk mk/runtime.mk mk/lab.mk mk/conformance.mk
