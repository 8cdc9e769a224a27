package pki

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strings"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// usage is what a certificate authenticates: the extended key usages.
type usage int

const (
	usageClient usage = iota
	usageServer
	usageClientServer
)

// profile is the cfssl signing profile of the usage.
func (u usage) profile() string {
	return [...]string{"client", "server", "client-server"}[u]
}

func (u usage) extKeyUsages() []x509.ExtKeyUsage {
	switch u {
	case usageClient:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case usageServer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
}

// certSpec is one leaf certificate the definition asks for.
type certSpec struct {
	name  string // "admin", "worker-0/kubelet"
	cn    string
	orgs  []string
	dns   []string
	ips   []netip.Addr
	usage usage
	// kubeconfig, when set, is the kubeconfig that embeds this certificate.
	kubeconfig *kubeconfigSpec
}

type kubeconfigSpec struct {
	user   string
	server string
}

// hosts are the SANs in the form cfssl takes them.
func (s *certSpec) hosts() []string {
	if len(s.dns)+len(s.ips) == 0 {
		return nil
	}
	h := append([]string{}, s.dns...)
	for _, ip := range s.ips {
		h = append(h, ip.String())
	}
	return h
}

// Per-node material lives under nodes/<node>/; its name is "<node>/<what>".
func nodeName(node, what string) string { return node + "/" + what }

// relPath is where name's file with suffix lives, relative to the directory.
func relPath(name, suffix string) string {
	if strings.Contains(name, "/") {
		return path.Join(nodesDir, name+suffix)
	}
	return name + suffix
}

func certPath(name string) string       { return relPath(name, ".pem") }
func keyPath(name string) string        { return relPath(name, "-key.pem") }
func kubeconfigPath(name string) string { return relPath(name, ".kubeconfig") }

// Identities of the cluster-wide certificates.
const (
	nameAdmin             = "admin"
	nameControllerManager = "kube-controller-manager"
	nameScheduler         = "kube-scheduler"
	nameProxy             = "kube-proxy"
	nameAPIServer         = "kube-apiserver"
	nameAPIKubeletClient  = "kube-apiserver-kubelet-client"
	nameAPIEtcdClient     = "kube-apiserver-etcd-client"
	// nameFrontProxyClient is the API server's identity when it proxies a
	// request to an aggregated API server (--proxy-client-cert-file); only
	// this name is trusted to pass on the user (requestheader-allowed-names).
	nameFrontProxyClient = "front-proxy-client"
	whatKubelet          = "kubelet"
	whatEtcdServer       = "etcd-server"
	whatEtcdPeer         = "etcd-peer"
)

// APIServer is the URL clients outside the masters use (cluster.Facts:
// the VIP, else the load balancer's name, else the first master).
func APIServer(d *cluster.Definition) (string, error) {
	if u := d.Facts().APIURL; u != "" {
		return u, nil
	}
	return "", fmt.Errorf("kubernetes:nodes: no node has role master, so there is no API server to put in certificates and kubeconfigs; add a master or set kubernetes:api:vip")
}

// certificateSet is every leaf certificate the definition asks for, sorted
// by name.
func certificateSet(d *cluster.Definition) ([]certSpec, error) {
	server, err := APIServer(d)
	if err != nil {
		return nil, err
	}
	// The controller manager and the scheduler run beside an API server
	// and use it, as kubeadm's do: when it dies, their leases move to
	// another master's, whose own API server is up.
	local := cluster.HTTPSURL("127.0.0.1", d.API.Port)
	// The kubelet and kube-proxy use the node's own load balancer, in
	// front of every master's API server.
	nodeLocal := d.Facts().LocalAPIURL

	client := func(name, cn, org, kcServer string) certSpec {
		s := certSpec{name: name, cn: cn, orgs: []string{org}, usage: usageClient}
		if kcServer != "" {
			s.kubeconfig = &kubeconfigSpec{user: cn, server: kcServer}
		}
		return s
	}
	set := []certSpec{
		client(nameAdmin, "admin", "system:masters", server),
		client(nameControllerManager, "system:kube-controller-manager", "system:kube-controller-manager", local),
		client(nameScheduler, "system:kube-scheduler", "system:kube-scheduler", local),
		client(nameProxy, "system:kube-proxy", "system:node-proxier", nodeLocal),
		client(nameAPIKubeletClient, "kube-apiserver-kubelet-client", "system:masters", ""),
		client(nameAPIEtcdClient, "kube-apiserver-etcd-client", "system:masters", ""),
		{name: nameFrontProxyClient, cn: nameFrontProxyClient, usage: usageClient},
		apiServerSpec(d),
	}
	for _, n := range d.Nodes {
		set = append(set, certSpec{
			name:       nodeName(n.Name, whatKubelet),
			cn:         "system:node:" + n.Name,
			orgs:       []string{"system:nodes"},
			dns:        []string{n.Name},
			ips:        n.IPs,
			usage:      usageClientServer,
			kubeconfig: &kubeconfigSpec{user: "system:node:" + n.Name, server: nodeLocal},
		})
		if n.Role != cluster.RoleMaster {
			continue
		}
		// etcd's gRPC gateway dials the member with its own server
		// certificate, so the server one needs client auth too. The server
		// certificate also names the loopback addresses, as kubeadm's does:
		// etcd listens there, and local clients (etcdctl on the master, an
		// API server beside it) connect there.
		for _, what := range []string{whatEtcdServer, whatEtcdPeer} {
			spec := certSpec{
				name:  nodeName(n.Name, what),
				cn:    n.Name,
				orgs:  []string{"etcd"},
				dns:   []string{n.Name},
				ips:   n.IPs,
				usage: usageClientServer,
			}
			if what == whatEtcdServer {
				spec.dns = []string{n.Name, "localhost"}
				spec.ips = append(append([]netip.Addr{}, n.IPs...), netip.IPv6Loopback(), netip.MustParseAddr("127.0.0.1"))
			}
			set = append(set, spec)
		}
	}
	sort.Slice(set, func(i, j int) bool { return set[i].name < set[j].name })
	return set, nil
}

func apiServerSpec(d *cluster.Definition) certSpec {
	s := certSpec{
		name:  nameAPIServer,
		cn:    "kubernetes",
		orgs:  []string{"kubernetes"},
		usage: usageServer,
		dns: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc." + d.Domain},
	}
	if d.API.Name != "" {
		s.dns = append(s.dns, d.API.Name)
	}
	// The `kubernetes` Service gets the first address of the service CIDR.
	for _, svc := range d.Network.ServiceCIDRs {
		s.ips = append(s.ips, svc.Addr().Next())
	}
	s.ips = append(s.ips, netip.MustParseAddr("127.0.0.1"))
	for _, m := range d.Facts().Masters {
		s.ips = append(s.ips, m.IPs...)
	}
	if d.API.VIP.IsValid() {
		s.ips = append(s.ips, d.API.VIP)
	}
	s.ips = uniqueAddrs(s.ips)
	return s
}

func uniqueAddrs(in []netip.Addr) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, a := range in {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
