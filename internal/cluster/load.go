package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// raw is the definition as written in pillar, before validation.
type raw struct {
	ClusterName   string             `yaml:"cluster_name"`
	ClusterDomain string             `yaml:"cluster_domain"`
	Mode          string             `yaml:"mode"`
	Network       rawNetwork         `yaml:"network"`
	API           rawAPI             `yaml:"api"`
	Nodes         map[string]rawNode `yaml:"nodes"`
	PKI           rawPKI             `yaml:"pki"`
	Etcd          rawEtcd            `yaml:"etcd"`
	Libvirt       *rawLibvirt        `yaml:"libvirt"`
	DNS           rawDNS             `yaml:"dns"`
	Reconcile     rawReconcile       `yaml:"reconcile"`
	// Sections owned by the Salt formula (versions, binaries, ...) are
	// accepted here and left to it; the sections above are checked strictly.
	Other map[string]yaml.Node `yaml:",inline"`
}

type rawNetwork struct {
	NodeCIDR    stringList `yaml:"node_cidr"`
	ClusterCIDR stringList `yaml:"cluster_cidr"`
	ServiceCIDR stringList `yaml:"service_cidr"`
	NodeMaskV4  *int       `yaml:"node_cidr_mask_size_ipv4"`
	NodeMaskV6  *int       `yaml:"node_cidr_mask_size_ipv6"`
	ClusterDNS  string     `yaml:"cluster_dns"`
}

type rawAPI struct {
	Port      int    `yaml:"port"`
	VIP       string `yaml:"vip"`
	Name      string `yaml:"name"`
	LocalPort int    `yaml:"local_port"`
}

type rawNode struct {
	Role       string     `yaml:"role"`
	IP         stringList `yaml:"ip"`
	PodCIDR    stringList `yaml:"pod_cidr"`
	Hypervisor string     `yaml:"hypervisor"`
}

// stringList accepts one string or a list of strings (dual-stack).
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*s = nil
			return nil
		}
		*s = stringList{n.Value}
		return nil
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		*s = l
		return nil
	}
	return fmt.Errorf("line %d: want a string or a list of strings", n.Line)
}

// Load reads a definition from YAML or JSON. The document is either the
// `kubernetes:` tree itself or a pillar that holds it under `kubernetes`.
// Every problem found is returned at once, as a *ValidationError.
func Load(data []byte) (*Definition, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ValidationError{Problems: []Problem{{Field: "kubernetes", Message: "cannot parse the definition: " + err.Error() + "; fix the YAML/JSON syntax"}}}
	}
	tree := &doc
	if tree.Kind == yaml.DocumentNode && len(tree.Content) == 1 {
		tree = tree.Content[0]
	}
	if tree.Kind != yaml.MappingNode {
		return nil, &ValidationError{Problems: []Problem{{Field: "kubernetes", Message: "the definition is empty or not a mapping; give the kubernetes: tree (see pillar.example)"}}}
	}
	for i := 0; i+1 < len(tree.Content); i += 2 {
		if tree.Content[i].Value == "kubernetes" && tree.Content[i+1].Kind == yaml.MappingNode {
			tree = tree.Content[i+1]
			break
		}
	}
	// Re-encode the tree so the strict decoder sees only it.
	sub, err := yaml.Marshal(tree)
	if err != nil {
		return nil, err
	}
	var r raw
	dec := yaml.NewDecoder(bytes.NewReader(sub))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return nil, &ValidationError{Problems: decodeProblems(err)}
	}
	return r.validate()
}

var unknownField = regexp.MustCompile(`^line \d+: field (\S+) not found in type cluster\.(\w+)$`)

var knownFields = map[string]string{
	"rawNetwork": "node_cidr, cluster_cidr, service_cidr, node_cidr_mask_size_ipv4, node_cidr_mask_size_ipv6, cluster_dns",
	"rawAPI":     "port, vip, name, local_port",
	"rawNode":    "role, ip, pod_cidr, hypervisor",
}

var sectionOf = map[string]string{
	"rawNetwork": "kubernetes:network",
	"rawAPI":     "kubernetes:api",
	"rawNode":    "kubernetes:nodes:<node>",
}

func decodeProblems(err error) []Problem {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []Problem{{Field: "kubernetes", Message: err.Error()}}
	}
	var out []Problem
	for _, e := range te.Errors {
		if m := unknownField.FindStringSubmatch(e); m != nil {
			out = append(out, Problem{
				Field:   sectionOf[m[2]] + ":" + m[1],
				Message: fmt.Sprintf("unknown field %q; correct its spelling or remove it (known: %s)", m[1], knownFields[m[2]]),
			})
			continue
		}
		out = append(out, Problem{Field: "kubernetes", Message: e + "; fix the value's type"})
	}
	return out
}

// Problem is one thing wrong with a definition: the field, in Salt's
// pillar path notation, and what is wrong with how to fix it.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem of a definition.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Field + ": " + p.Message
	}
	if len(lines) == 1 {
		return "invalid cluster definition: " + lines[0]
	}
	return fmt.Sprintf("invalid cluster definition (%d problems):\n  %s", len(lines), strings.Join(lines, "\n  "))
}
