package cluster

import (
	"net/netip"
	"path"
	"strings"
)

// Defaults of the kubernetes:dns section: the cluster DNS add-on.
const (
	// DefaultDNSImage is CoreDNS's own image at the release make coredns
	// builds (a cluster without a registry imports an image of that name,
	// as the lab does).
	DefaultDNSImage    = "docker.io/coredns/coredns:1.14.7"
	DefaultDNSReplicas = 2
	// DefaultDNSForward: names outside the cluster go to the resolvers of
	// the node the CoreDNS pod runs on.
	DefaultDNSForward = "/etc/resolv.conf"
)

// DNS is the cluster DNS add-on (CoreDNS), served at Network.ClusterDNS.
type DNS struct {
	Enabled  bool
	Image    string
	Replicas int
	// Forward is where names outside the cluster domain go: resolver
	// addresses, or a resolv.conf path; empty: nowhere, for a cluster with
	// no resolver to ask (CoreDNS then answers only the cluster's names).
	Forward []string
}

// rawDNS is kubernetes:dns.
type rawDNS struct {
	Enabled  *bool       `yaml:"enabled"`
	Image    string      `yaml:"image"`
	Replicas *int        `yaml:"replicas"`
	Forward  *stringList `yaml:"forward"`
}

func init() {
	knownFields["rawDNS"] = "enabled, image, replicas, forward"
	sectionOf["rawDNS"] = "kubernetes:dns"
}

func (c *checker) dns(r *rawDNS, d *DNS) {
	const f = "kubernetes:dns:"
	d.Enabled = r.Enabled == nil || *r.Enabled
	d.Image = strings.TrimSpace(r.Image)
	if d.Image == "" {
		d.Image = DefaultDNSImage
	} else if strings.ContainsAny(d.Image, " \t\n\"'") || strings.HasSuffix(d.Image, ":") {
		c.add(f+"image", "%q is not an image reference; give e.g. %s", r.Image, DefaultDNSImage)
	}
	d.Replicas = DefaultDNSReplicas
	if r.Replicas != nil {
		d.Replicas = *r.Replicas
		if d.Replicas < 1 || d.Replicas > 100 {
			c.add(f+"replicas", "%d is not a replica count; give 1 to 100 (default %d, one per worker at most spreads them)", d.Replicas, DefaultDNSReplicas)
		}
	}
	d.Forward = []string{DefaultDNSForward}
	if r.Forward != nil {
		d.Forward = nil
		for _, s := range *r.Forward {
			s = strings.TrimSpace(s)
			if _, err := netip.ParseAddr(s); err == nil {
				d.Forward = append(d.Forward, s)
			} else if ap, err := netip.ParseAddrPort(s); err == nil {
				d.Forward = append(d.Forward, ap.String())
			} else if path.IsAbs(s) {
				d.Forward = append(d.Forward, path.Clean(s))
			} else {
				c.add(f+"forward", "%q is neither a resolver address (e.g. 192.168.170.1) nor a resolv.conf path (e.g. /etc/resolv.conf); give a list of those, or [] to forward nothing", s)
			}
		}
	}
}
