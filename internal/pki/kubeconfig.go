package pki

import (
	"bytes"
	"encoding/base64"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kubesalt/kubesalt/internal/workers"
)

// kubeconfig is the part of client-go's Config that kubesalt writes; the
// *-data fields hold base64 of the PEM, as client-go reads them.
type kubeconfig struct {
	APIVersion     string         `yaml:"apiVersion"`
	Kind           string         `yaml:"kind"`
	Clusters       []namedCluster `yaml:"clusters"`
	Users          []namedUser    `yaml:"users"`
	Contexts       []namedContext `yaml:"contexts"`
	CurrentContext string         `yaml:"current-context"`
}

type namedCluster struct {
	Name    string `yaml:"name"`
	Cluster struct {
		CertificateAuthorityData b64    `yaml:"certificate-authority-data"`
		Server                   string `yaml:"server"`
	} `yaml:"cluster"`
}

type namedUser struct {
	Name string `yaml:"name"`
	User struct {
		ClientCertificateData b64 `yaml:"client-certificate-data"`
		ClientKeyData         b64 `yaml:"client-key-data"`
	} `yaml:"user"`
}

type namedContext struct {
	Name    string `yaml:"name"`
	Context struct {
		Cluster string `yaml:"cluster"`
		User    string `yaml:"user"`
	} `yaml:"context"`
}

// b64 is bytes written as a base64 string, as client-go's []byte fields are.
type b64 []byte

func (b b64) MarshalYAML() (any, error) { return base64.StdEncoding.EncodeToString(b), nil }

func (b *b64) UnmarshalYAML(n *yaml.Node) error {
	raw, err := base64.StdEncoding.DecodeString(n.Value)
	*b = raw
	return err
}

// renderKubeconfig is the kubeconfig of one identity, certificates embedded.
// yaml.v3 lays out a skeleton with placeholders, and the base64 goes in
// after: the emitter's per-character scan of ~3 KB of base64 per file was
// most of a no-op run. Base64 of PEM is a plain scalar yaml.v3 never
// quotes or folds, so the result is what encoding the full struct gives
// (TestKubeconfigRendering holds that).
func renderKubeconfig(clusterName, server, user string, caPEM, certPEM, keyPEM []byte) []byte {
	skeleton := encodeKubeconfig(clusterName, server, user, []byte(placeholderCA), []byte(placeholderCert), []byte(placeholderKey))
	enc := base64.StdEncoding.EncodeToString
	return []byte(strings.NewReplacer(
		enc([]byte(placeholderCA)), enc(caPEM),
		enc([]byte(placeholderCert)), enc(certPEM),
		enc([]byte(placeholderKey)), enc(keyPEM),
	).Replace(string(skeleton)))
}

// Placeholders whose base64 cannot occur elsewhere in a kubeconfig.
const (
	placeholderCA   = "@@kubesalt-ca-data@@"
	placeholderCert = "@@kubesalt-cert-data@@"
	placeholderKey  = "@@kubesalt-key-data@@"
)

func encodeKubeconfig(clusterName, server, user string, caPEM, certPEM, keyPEM []byte) []byte {
	var c namedCluster
	c.Name = clusterName
	c.Cluster.CertificateAuthorityData = caPEM
	c.Cluster.Server = server
	var u namedUser
	u.Name = user
	u.User.ClientCertificateData = certPEM
	u.User.ClientKeyData = keyPEM
	var ctx namedContext
	ctx.Name = "default"
	ctx.Context.Cluster = clusterName
	ctx.Context.User = user
	kc := kubeconfig{
		APIVersion: "v1", Kind: "Config",
		Clusters: []namedCluster{c}, Users: []namedUser{u}, Contexts: []namedContext{ctx},
		CurrentContext: "default",
	}
	var buf bytes.Buffer
	e := yaml.NewEncoder(&buf)
	e.SetIndent(2)
	if err := e.Encode(kc); err != nil {
		panic(err) // plain structs always encode
	}
	e.Close()
	return buf.Bytes()
}

// parseKubeconfig reads a kubeconfig with exactly one cluster and user.
func parseKubeconfig(data []byte) (*kubeconfig, bool) {
	var kc kubeconfig
	if yaml.Unmarshal(data, &kc) != nil || kc.Kind != "Config" || len(kc.Clusters) != 1 || len(kc.Users) != 1 {
		return nil, false
	}
	return &kc, true
}

// kubeconfigFile is one kubeconfig of the set and what to do with it.
type kubeconfigFile struct {
	leaf   *leaf
	file   file
	reason string
}

func (kc *kubeconfigFile) render(clusterName string, caPEM []byte) []byte {
	s := kc.leaf.spec
	return renderKubeconfig(clusterName, s.kubeconfig.server, s.kubeconfig.user, caPEM, kc.leaf.certPEM, kc.leaf.keyPEM)
}

// inspectKubeconfigs decides which kubeconfigs to write: those whose
// certificate is reissued and those that differ from what the current
// material and definition give.
func (r *run) inspectKubeconfigs(leaves []*leaf, ca *authority) []*kubeconfigFile {
	var out []*kubeconfigFile
	for _, l := range leaves {
		if l.spec.kubeconfig != nil {
			out = append(out, &kubeconfigFile{leaf: l})
		}
	}
	workers.ForEach(len(out), ioWorkers, func(i int) { r.inspectKubeconfig(out[i], ca) })
	for _, kc := range out {
		if kc.reason != "" {
			r.result.Kubeconfigs[kc.leaf.spec.name] = kc.reason
		}
	}
	return out
}

func (r *run) inspectKubeconfig(kc *kubeconfigFile, ca *authority) {
	l := kc.leaf
	var err error
	if kc.file, err = readFile(r.o.Dir, kubeconfigPath(l.spec.name)); err != nil {
		r.problem("%v", err)
		return
	}
	switch {
	case !kc.file.exists:
		kc.reason = "new"
	case l.reason != "":
		kc.reason = "certificate reissued"
	case l.certPEM == nil:
		return // its certificate has a problem, already reported
	case !bytes.Equal(kc.file.data, kc.render(r.d.Name, ca.certPEM)):
		old, ok := parseKubeconfig(kc.file.data)
		switch {
		case !ok:
			r.problem("%s: not a kubeconfig kubesalt wrote; remove it or run with --reissue %s to replace it", kc.file.rel, l.spec.name)
		case old.Clusters[0].Cluster.Server != l.spec.kubeconfig.server:
			kc.reason = "server changed"
		case !bytes.Equal(old.Clusters[0].Cluster.CertificateAuthorityData, ca.certPEM):
			kc.reason = "ca changed"
		case !bytes.Equal(old.Users[0].User.ClientCertificateData, l.certPEM):
			kc.reason = "certificate changed"
		default:
			kc.reason = "content changed"
		}
	}
}
