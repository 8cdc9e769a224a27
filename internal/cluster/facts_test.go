package cluster

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const threeMasters = `
kubernetes:
  network:
    node_cidr: 192.168.170.0/24
    cluster_cidr: 10.200.0.0/16
    service_cidr: 10.32.0.0/24
  nodes:
    master-2: {role: master, ip: 192.168.170.12}
    master-0: {role: master, ip: 192.168.170.10}
    worker-0: {role: worker, ip: 192.168.170.20}
    master-1: {role: master, ip: 192.168.170.11}
`

func TestFactsIPv4(t *testing.T) {
	f := mustLoad(t, threeMasters).Facts()
	want := Facts{
		APIHost: "192.168.170.10",
		APIURL:  "https://192.168.170.10:6443",
		EtcdEndpoints: []string{
			"https://192.168.170.10:2379", "https://192.168.170.11:2379", "https://192.168.170.12:2379",
		},
		EtcdInitialCluster: "master-0=https://192.168.170.10:2380,master-1=https://192.168.170.11:2380,master-2=https://192.168.170.12:2380",
		LocalAPIURL:        "https://127.0.0.1:6444",
		LocalAPIPort:       6444,
		APIBackends: []APIBackend{
			{"master-0", "192.168.170.10", 6443}, {"master-1", "192.168.170.11", 6443}, {"master-2", "192.168.170.12", 6443},
		},
	}
	if got := names(f.Masters); !reflect.DeepEqual(got, []string{"master-0", "master-1", "master-2"}) {
		t.Errorf("masters %v, want them in name order, workers left out", got)
	}
	if f.Masters[1].EtcdPeerURL != "https://192.168.170.11:2380" || f.Masters[1].EtcdClientURL != "https://192.168.170.11:2379" {
		t.Errorf("master-1's etcd URLs %+v", f.Masters[1])
	}
	f.Masters = nil
	if !reflect.DeepEqual(f, want) {
		t.Errorf("facts\n %+v\nwant\n %+v", f, want)
	}
}

func TestFactsIPv6InBrackets(t *testing.T) {
	d := mustLoad(t, `
kubernetes:
  network:
    node_cidr: fd00:170::/64
    cluster_cidr: fd00:10:200::/56
    service_cidr: fd00:10:32::/112
  api: {port: 7443}
  etcd: {client_port: 12379, peer_port: 12380, args: {snapshot-count: 1000}}
  nodes:
    master-0: {role: master, ip: fd00:170::10}
    master-1: {role: master, ip: fd00:170::11}
`)
	f := d.Facts()
	if f.APIHost != "fd00:170::10" || f.APIURL != "https://[fd00:170::10]:7443" {
		t.Errorf("api %q %q, want the first master in brackets on port 7443", f.APIHost, f.APIURL)
	}
	want := []string{"https://[fd00:170::10]:12379", "https://[fd00:170::11]:12379"}
	if !reflect.DeepEqual(f.EtcdEndpoints, want) {
		t.Errorf("etcd endpoints %v, want %v", f.EtcdEndpoints, want)
	}
	if f.EtcdInitialCluster != "master-0=https://[fd00:170::10]:12380,master-1=https://[fd00:170::11]:12380" {
		t.Errorf("initial cluster %q", f.EtcdInitialCluster)
	}

	// Dual-stack: a master is reached on its IPv4 address, its first.
	d = mustLoad(t, `
kubernetes:
  network:
    node_cidr: [fd00:170::/64, 192.168.170.0/24]
    cluster_cidr: [fd00:10:200::/56, 10.200.0.0/16]
    service_cidr: 10.32.0.0/24
  nodes:
    master-0: {role: master, ip: [fd00:170::10, 192.168.170.10]}
`)
	if f := d.Facts(); f.APIURL != "https://192.168.170.10:6443" || f.EtcdEndpoints[0] != "https://192.168.170.10:2379" {
		t.Errorf("dual-stack: %q %v, want the IPv4 address", f.APIURL, f.EtcdEndpoints)
	}

	d = mustLoad(t, `
kubernetes:
  network: {node_cidr: 'fd00:170::/64', cluster_cidr: 'fd00:10:200::/56', service_cidr: 'fd00:10:32::/112'}
  api: {vip: 'fd00:170::5'}
  nodes: {master-0: {role: master, ip: 'fd00:170::10'}}
`)
	f = d.Facts()
	if f.APIURL != "https://[fd00:170::5]:6443" || f.APIVIP != "fd00:170::5/64" {
		t.Errorf("IPv6 VIP: %q %q, want the URL in brackets and the VIP with the node network's /64", f.APIURL, f.APIVIP)
	}
	// haproxy's server line takes host:port with the IPv6 host bare; the
	// local endpoint is on 127.0.0.1 whatever the families.
	if want := []APIBackend{{"master-0", "fd00:170::10", 6443}}; !reflect.DeepEqual(f.APIBackends, want) || f.LocalAPIURL != "https://127.0.0.1:6444" {
		t.Errorf("IPv6 backends %+v local %q", f.APIBackends, f.LocalAPIURL)
	}
}

// The node-local load balancer: its port from api:local_port, every
// master (and no worker) a backend on the API port, the VIP with the
// node network's length.
func TestFactsLoadBalancer(t *testing.T) {
	f := mustLoad(t, threeMasters+"  api: {port: 7443, local_port: 16443, vip: 192.168.170.5}\n").Facts()
	if f.LocalAPIURL != "https://127.0.0.1:16443" || f.LocalAPIPort != 16443 {
		t.Errorf("local endpoint %q %d, want port 16443", f.LocalAPIURL, f.LocalAPIPort)
	}
	want := []APIBackend{{"master-0", "192.168.170.10", 7443}, {"master-1", "192.168.170.11", 7443}, {"master-2", "192.168.170.12", 7443}}
	if !reflect.DeepEqual(f.APIBackends, want) {
		t.Errorf("backends %+v, want %+v", f.APIBackends, want)
	}
	if f.APIVIP != "192.168.170.5/24" || f.APIURL != "https://192.168.170.5:7443" {
		t.Errorf("VIP %q, API URL %q: want 192.168.170.5/24 and the VIP's URL", f.APIVIP, f.APIURL)
	}
	js, _ := json.Marshal(f)
	for _, key := range []string{`"local_api_url":"https://127.0.0.1:16443"`, `"api_backends":[{"name":"master-0","host":"192.168.170.10","port":7443}`, `"api_vip":"192.168.170.5/24"`} {
		if !strings.Contains(string(js), key) {
			t.Errorf("facts JSON lacks %s: %s", key, js)
		}
	}
}

func TestAPIValidation(t *testing.T) {
	cases := []struct{ api, want string }{
		{"{vip: 10.9.9.9}", "kubernetes:api:vip: 10.9.9.9 is outside the node network 192.168.170.0/24"},
		{"{vip: 192.168.170.11}", "kubernetes:api:vip: 192.168.170.11 is node master-1's address"},
		{"{vip: nope}", `kubernetes:api:vip: "nope" is not an IP address`},
		{"{local_port: 6443}", "kubernetes:api:local_port: 6443 is also kubernetes:api:port"},
		{"{local_port: 2379}", "kubernetes:api:local_port: 2379 is also kubernetes:etcd:client_port"},
		{"{local_port: 70000}", "kubernetes:api:local_port: 70000 is not a TCP port"},
		{"{locl_port: 1}", `kubernetes:api:locl_port: unknown field "locl_port"; correct its spelling or remove it (known: port, vip, name, local_port)`},
	}
	for _, c := range cases {
		_, err := Load([]byte(threeMasters + "  api: " + c.api + "\n"))
		wantProblems(t, err, c.want)
	}
}

func TestFactsAPIPrecedence(t *testing.T) {
	cases := []struct{ api, host string }{
		{"{vip: 192.168.170.100, name: api.lab.example}", "192.168.170.100"},
		{"{name: api.lab.example}", "api.lab.example"},
		{"{}", "192.168.170.10"},
	}
	for _, c := range cases {
		f := mustLoad(t, threeMasters+"  api: "+c.api+"\n").Facts()
		if f.APIHost != c.host || f.APIURL != "https://"+c.host+":6443" {
			t.Errorf("api %s: host %q url %q, want %q", c.api, f.APIHost, f.APIURL, c.host)
		}
	}
	// No master and no load balancer: no API endpoint, and empty lists
	// (JSON [], never null) rather than a guess.
	f := mustLoad(t, `
kubernetes:
  network: {node_cidr: 192.168.170.0/24, cluster_cidr: 10.200.0.0/16, service_cidr: 10.32.0.0/24}
  nodes: {worker-0: {role: worker, ip: 192.168.170.20}}
`).Facts()
	js, _ := json.Marshal(f)
	if want := `{"api_host":"","api_url":"","masters":[],"etcd_endpoints":[],"etcd_initial_cluster":"",` +
		`"local_api_url":"https://127.0.0.1:6444","local_api_port":6444,"api_backends":[],"api_vip":""}`; string(js) != want {
		t.Errorf("no master: %s, want %s", js, want)
	}
}

func TestEtcdPortValidation(t *testing.T) {
	_, err := Load([]byte(base + "  etcd: {client_port: 70000, peer_port: 70000}\n"))
	wantProblems(t, err,
		"kubernetes:etcd:client_port: 70000 is not a TCP port; use 1-65535 (default 2379)",
		"kubernetes:etcd:peer_port: 70000 is also the client port")
}

func mustLoad(t *testing.T, def string) *Definition {
	t.Helper()
	d, err := Load([]byte(def))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func names(ms []Master) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}
