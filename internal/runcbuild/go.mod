// The build module for runc (make runc), at the version its go.sum pins.
module github.com/kubesalt/kubesalt/internal/runcbuild

go 1.24.0

require github.com/opencontainers/runc v1.4.4
