package cluster

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Defaults of the kubernetes:etcd ports.
const (
	DefaultEtcdClientPort = 2379
	DefaultEtcdPeerPort   = 2380
)

// Etcd is where the masters' etcd members listen.
type Etcd struct {
	ClientPort int
	PeerPort   int
}

// rawEtcd is kubernetes:etcd. The formula's keys there (args) are left to it.
type rawEtcd struct {
	ClientPort int                  `yaml:"client_port"`
	PeerPort   int                  `yaml:"peer_port"`
	Other      map[string]yaml.Node `yaml:",inline"`
}

func (c *checker) etcd(r *rawEtcd, e *Etcd) {
	e.ClientPort, e.PeerPort = r.ClientPort, r.PeerPort
	if e.ClientPort == 0 {
		e.ClientPort = DefaultEtcdClientPort
	}
	if e.PeerPort == 0 {
		e.PeerPort = DefaultEtcdPeerPort
	}
	for _, p := range []struct {
		field     string
		port, def int
	}{{"client_port", e.ClientPort, DefaultEtcdClientPort}, {"peer_port", e.PeerPort, DefaultEtcdPeerPort}} {
		if p.port < 1 || p.port > 65535 {
			c.add("kubernetes:etcd:"+p.field, "%d is not a TCP port; use 1-65535 (default %d)", p.port, p.def)
		}
	}
	if e.ClientPort == e.PeerPort {
		c.add("kubernetes:etcd:peer_port", "%d is also the client port; etcd needs two ports (default %d and %d)", e.PeerPort, DefaultEtcdClientPort, DefaultEtcdPeerPort)
	}
}

// Facts are what the certificates, the kubeconfigs and the formula all
// derive from the definition, derived here once: `kubesalt cidr plan`
// prints them and the ext_pillar hands them to every minion
// (kubesalt:cluster), so the formula computes none of them itself.
type Facts struct {
	// APIHost is what clients outside the masters dial: the VIP, else the
	// load balancer's name, else the first master's first address; empty
	// when there is none of these.
	APIHost string `json:"api_host"`
	// APIURL is https://<APIHost>:<port>, IPv6 in brackets; empty with APIHost.
	APIURL string `json:"api_url"`
	// Masters in name order (the first one applies cluster-wide objects).
	Masters []Master `json:"masters"`
	// EtcdEndpoints are the members' client URLs, in the masters' order.
	EtcdEndpoints []string `json:"etcd_endpoints"`
	// EtcdInitialCluster is etcd's --initial-cluster: name=peer-url,...
	EtcdInitialCluster string `json:"etcd_initial_cluster"`
	// LocalAPIURL is the load balancer every node runs on loopback
	// (https://127.0.0.1:<api:local_port>), in front of every master's API
	// server: the kubelet and kube-proxy dial it, so a dead master costs
	// them nothing.
	LocalAPIURL  string `json:"local_api_url"`
	LocalAPIPort int    `json:"local_api_port"`
	// APIBackends are that load balancer's backends: every master's API
	// server, in the masters' order.
	APIBackends []APIBackend `json:"api_backends"`
	// APIVIP is the VIP with the node network's length (192.168.170.5/24),
	// as keepalived adds it to a master's interface; empty without one.
	APIVIP string `json:"api_vip"`
}

// APIBackend is one master's API server, host and port apart (haproxy's
// server line takes host:port, an IPv6 host unbracketed).
type APIBackend struct {
	Name string `json:"name"`
	Host string `json:"host"`
	Port int    `json:"port"`
}

// Master is one master and its etcd member's URLs (on its first address).
type Master struct {
	Name          string       `json:"name"`
	IPs           []netip.Addr `json:"ips"`
	EtcdClientURL string       `json:"etcd_client_url"`
	EtcdPeerURL   string       `json:"etcd_peer_url"`
}

// Facts derives the definition's facts.
func (d *Definition) Facts() Facts {
	f := Facts{Masters: []Master{}, EtcdEndpoints: []string{}, APIBackends: []APIBackend{},
		LocalAPIURL: HTTPSURL("127.0.0.1", d.API.LocalPort), LocalAPIPort: d.API.LocalPort}
	var initial []string
	for _, n := range d.Masters() {
		m := Master{
			Name:          n.Name,
			IPs:           n.IPs,
			EtcdClientURL: HTTPSURL(n.IPs[0].String(), d.Etcd.ClientPort),
			EtcdPeerURL:   HTTPSURL(n.IPs[0].String(), d.Etcd.PeerPort),
		}
		f.Masters = append(f.Masters, m)
		f.EtcdEndpoints = append(f.EtcdEndpoints, m.EtcdClientURL)
		f.APIBackends = append(f.APIBackends, APIBackend{Name: n.Name, Host: n.IPs[0].String(), Port: d.API.Port})
		initial = append(initial, m.Name+"="+m.EtcdPeerURL)
	}
	f.EtcdInitialCluster = strings.Join(initial, ",")
	if vip := d.API.VIP; vip.IsValid() {
		if net, ok := ofFamily(d.Network.NodeCIDRs, vip.Is4()); ok {
			f.APIVIP = netip.PrefixFrom(vip, net.Bits()).String()
		}
	}
	switch {
	case d.API.VIP.IsValid():
		f.APIHost = d.API.VIP.String()
	case d.API.Name != "":
		f.APIHost = d.API.Name
	case len(f.Masters) > 0:
		f.APIHost = f.Masters[0].IPs[0].String()
	}
	if f.APIHost != "" {
		f.APIURL = HTTPSURL(f.APIHost, d.API.Port)
	}
	return f
}

// HTTPSURL is https://host:port, an IPv6 host in brackets.
func HTTPSURL(host string, port int) string {
	return "https://" + net.JoinHostPort(host, strconv.Itoa(port))
}
