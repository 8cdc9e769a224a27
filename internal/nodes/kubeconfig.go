package nodes

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// APIConfig is what talking to the API server takes from a kubeconfig: the
// server's URL, the CA that signs its certificate, and the client's
// certificate (or a bearer token).
type APIConfig struct {
	Server string
	TLS    *tls.Config
	Token  string
}

// kubeconfigDoc is the part of client-go's Config this package reads.
type kubeconfigDoc struct {
	Kind     string `yaml:"kind"`
	Clusters []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server                   string `yaml:"server"`
			CertificateAuthority     string `yaml:"certificate-authority"`
			CertificateAuthorityData string `yaml:"certificate-authority-data"`
			TLSServerName            string `yaml:"tls-server-name"`
			InsecureSkipTLSVerify    bool   `yaml:"insecure-skip-tls-verify"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			ClientCertificate     string         `yaml:"client-certificate"`
			ClientCertificateData string         `yaml:"client-certificate-data"`
			ClientKey             string         `yaml:"client-key"`
			ClientKeyData         string         `yaml:"client-key-data"`
			Token                 string         `yaml:"token"`
			TokenFile             string         `yaml:"tokenFile"`
			Exec                  map[string]any `yaml:"exec"`
			AuthProvider          map[string]any `yaml:"auth-provider"`
		} `yaml:"user"`
	} `yaml:"users"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster string `yaml:"cluster"`
			User    string `yaml:"user"`
		} `yaml:"context"`
	} `yaml:"contexts"`
	CurrentContext string `yaml:"current-context"`
}

// LoadKubeconfig reads the kubeconfig at path; relative file names in it
// are relative to its directory, as kubectl takes them.
func LoadKubeconfig(path string) (*APIConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %v; give --kubeconfig the admin kubeconfig (e.g. /var/lib/kubesalt/pki/admin.kubeconfig)", err)
	}
	c, err := ParseKubeconfig(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return c, nil
}

// ParseKubeconfig reads a kubeconfig's current context: its cluster's
// server and CA, its user's client certificate or token. Every error names
// the field to fix. dir resolves relative file names.
func ParseKubeconfig(data []byte, dir string) (*APIConfig, error) {
	var doc kubeconfigDoc
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not YAML: %v", err)
	}
	if doc.Kind != "Config" {
		return nil, fmt.Errorf("kind is %q, not Config; is this a kubeconfig?", doc.Kind)
	}
	ctxName := doc.CurrentContext
	if ctxName == "" {
		if len(doc.Contexts) != 1 {
			return nil, fmt.Errorf("current-context is empty and there are %d contexts; set current-context", len(doc.Contexts))
		}
		ctxName = doc.Contexts[0].Name
	}
	ci := lastNamed(len(doc.Contexts), func(i int) string { return doc.Contexts[i].Name }, ctxName)
	if ci < 0 {
		return nil, fmt.Errorf("current-context %q: no such entry in contexts", ctxName)
	}
	ctx := doc.Contexts[ci].Context

	cl := lastNamed(len(doc.Clusters), func(i int) string { return doc.Clusters[i].Name }, ctx.Cluster)
	if cl < 0 {
		return nil, fmt.Errorf("contexts[%s].context.cluster %q: no such entry in clusters", ctxName, ctx.Cluster)
	}
	cluster := doc.Clusters[cl].Cluster
	field := fmt.Sprintf("clusters[%s].cluster.", ctx.Cluster)
	u, err := url.Parse(cluster.Server)
	switch {
	case cluster.Server == "":
		return nil, fmt.Errorf("%sserver is empty; set it to https://<host>:<port>", field)
	case err != nil || u.Scheme != "https" || u.Host == "":
		return nil, fmt.Errorf("%sserver %q: give an https://<host>:<port> URL", field, cluster.Server)
	case cluster.InsecureSkipTLSVerify:
		return nil, fmt.Errorf("%sinsecure-skip-tls-verify is set; kubesalt verifies the API server: remove it and give certificate-authority(-data)", field)
	}
	caPEM, err := material(cluster.CertificateAuthorityData, cluster.CertificateAuthority, field+"certificate-authority", dir)
	if err != nil {
		return nil, err
	}
	if caPEM == nil {
		return nil, fmt.Errorf("%scertificate-authority-data and certificate-authority are both empty; give the cluster CA (ca.pem)", field)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%scertificate-authority(-data) holds no PEM certificate", field)
	}
	tc := &tls.Config{RootCAs: pool, ServerName: cluster.TLSServerName, MinVersion: tls.VersionTLS12}
	out := &APIConfig{Server: strings.TrimRight(cluster.Server, "/"), TLS: tc}

	ui := lastNamed(len(doc.Users), func(i int) string { return doc.Users[i].Name }, ctx.User)
	if ui < 0 {
		return nil, fmt.Errorf("contexts[%s].context.user %q: no such entry in users", ctxName, ctx.User)
	}
	user := doc.Users[ui].User
	field = fmt.Sprintf("users[%s].user.", ctx.User)
	switch {
	case user.Exec != nil || user.AuthProvider != nil:
		return nil, fmt.Errorf("%sexec and auth-provider are not supported; use a client certificate (client-certificate-data, client-key-data) or a token", field)
	case user.TokenFile != "":
		return nil, fmt.Errorf("%stokenFile is not supported; use a client certificate or put the token in token", field)
	}
	certPEM, err := material(user.ClientCertificateData, user.ClientCertificate, field+"client-certificate", dir)
	if err != nil {
		return nil, err
	}
	keyPEM, err := material(user.ClientKeyData, user.ClientKey, field+"client-key", dir)
	if err != nil {
		return nil, err
	}
	switch {
	case certPEM != nil && keyPEM != nil:
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%sclient-certificate(-data) and client-key(-data): %v", field, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	case certPEM != nil || keyPEM != nil:
		return nil, fmt.Errorf("%s: a client certificate needs both client-certificate(-data) and client-key(-data)", strings.TrimSuffix(field, "."))
	case user.Token != "":
		out.Token = user.Token
	default:
		return nil, fmt.Errorf("%s has no credentials; give client-certificate-data and client-key-data (or token)", strings.TrimSuffix(field, "."))
	}
	return out, nil
}

// material is the PEM of a kubeconfig's <field>-data (base64) or, else,
// of the file <field> names; nil when neither is set.
func material(data, file, field, dir string) ([]byte, error) {
	if data != "" {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(data))
		if err != nil {
			return nil, fmt.Errorf("%s-data is not base64: %v", field, err)
		}
		return b, nil
	}
	if file == "" {
		return nil, nil
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", field, err)
	}
	return b, nil
}

// lastNamed is the index of the last of n entries called want (a later
// entry wins, as when client-go merges a kubeconfig's lists by name), or -1.
func lastNamed(n int, name func(i int) string, want string) int {
	for i := n - 1; i >= 0; i-- {
		if name(i) == want {
			return i
		}
	}
	return -1
}
