// The build module for etcd (make etcd): etcd, etcdctl and etcdutl, each a
// module of its own, at one release; its go.sum pins them.
module github.com/kubesalt/kubesalt/internal/etcdbuild

go 1.26.0

require (
	go.etcd.io/etcd/etcdctl/v3 v3.6.16
	go.etcd.io/etcd/etcdutl/v3 v3.6.16
	go.etcd.io/etcd/server/v3 v3.6.16
)
