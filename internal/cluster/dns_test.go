package cluster

import (
	"slices"
	"testing"
)

func TestDNSDefaults(t *testing.T) {
	d, err := Load([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if !d.DNS.Enabled || d.DNS.Image != DefaultDNSImage || d.DNS.Replicas != 2 || !slices.Equal(d.DNS.Forward, []string{"/etc/resolv.conf"}) {
		t.Errorf("dns = %+v", d.DNS)
	}
}

func TestDNSSection(t *testing.T) {
	d, err := Load([]byte(base + "  dns: {image: kubesalt.local/coredns:v1.14.7, replicas: 3, forward: [192.168.170.1, '[fd00::1]:53']}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d.DNS.Image != "kubesalt.local/coredns:v1.14.7" || d.DNS.Replicas != 3 || !slices.Equal(d.DNS.Forward, []string{"192.168.170.1", "[fd00::1]:53"}) {
		t.Errorf("dns = %+v", d.DNS)
	}
	if d, err = Load([]byte(base + "  dns: {forward: [], enabled: false}\n")); err != nil || d.DNS.Forward != nil || d.DNS.Enabled {
		t.Errorf("forward: [] = %+v, %v; want no forwarding, disabled", d.DNS, err)
	}
}

func TestDNSBadInputNamesFieldAndFix(t *testing.T) {
	_, err := Load([]byte(base + "  dns: {replicas: 0, forward: [resolv.conf], image: 'a b'}\n"))
	wantProblems(t, err,
		"kubernetes:dns:replicas: 0 is not a replica count; give 1 to 100",
		`kubernetes:dns:forward: "resolv.conf" is neither a resolver address`,
		`kubernetes:dns:image: "a b" is not an image reference`)
	_, err = Load([]byte(base + "  dns: {replica: 2}\n"))
	wantProblems(t, err, "kubernetes:dns", "replica")
}
