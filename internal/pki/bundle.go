package pki

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

// BundleFile is one file for a node, as the ext_pillar delivers it.
type BundleFile struct {
	Contents string `json:"contents"`
	Mode     string `json:"mode"`
}

// Bundle is exactly the material one node needs, keyed by the file name
// it has on the node.
type Bundle struct {
	Node  string                `json:"node"`
	Role  string                `json:"role"`
	Files map[string]BundleFile `json:"files"`
}

// bundleSource maps a file on the node to the directory's file.
type bundleSource struct {
	onNode, inDir string
	mode          os.FileMode
}

// bundleFiles lists what a node gets. The CA key is in no list; the
// control plane's keys only in a master's.
func bundleFiles(node cluster.Node) []bundleSource {
	kubelet := nodeName(node.Name, whatKubelet)
	out := []bundleSource{
		{"ca.pem", caCertFile, modePublic},
		{"kubelet.pem", certPath(kubelet), modePublic},
		{"kubelet-key.pem", keyPath(kubelet), modeSecret},
		{"kubelet.kubeconfig", kubeconfigPath(kubelet), modeSecret},
		{"kube-proxy.kubeconfig", kubeconfigPath(nameProxy), modeSecret},
	}
	if node.Role != cluster.RoleMaster {
		return out
	}
	for _, name := range []string{nameAPIServer, nameAPIKubeletClient, nameAPIEtcdClient, nameFrontProxyClient} {
		out = append(out, bundleSource{name + ".pem", certPath(name), modePublic}, bundleSource{name + "-key.pem", keyPath(name), modeSecret})
	}
	for _, what := range []string{whatEtcdServer, whatEtcdPeer} {
		name := nodeName(node.Name, what)
		out = append(out, bundleSource{what + ".pem", certPath(name), modePublic}, bundleSource{what + "-key.pem", keyPath(name), modeSecret})
	}
	out = append(out,
		bundleSource{saKeyFile, saKeyFile, modeSecret},
		bundleSource{saPubFile, saPubFile, modePublic},
		bundleSource{encryptionFile, encryptionFile, modeSecret},
	)
	for _, name := range []string{nameAdmin, nameControllerManager, nameScheduler} {
		out = append(out, bundleSource{name + ".kubeconfig", kubeconfigPath(name), modeSecret})
	}
	return out
}

// MakeBundle reads node's material from dir. Every file must be there and
// every key must belong to its certificate: a node never gets half a set.
func MakeBundle(d *cluster.Definition, dir, nodeName string) (*Bundle, error) {
	node, ok := d.Node(nodeName)
	if !ok {
		return nil, saltio.BadInputf("--node %q: no such node under kubernetes:nodes; give one of the definition's node names", nodeName)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, saltio.BadInputf("--dir %s: no such PKI directory; create it with `kubesalt pki issue`", dir)
	}
	unlock, err := atomicfile.Lock(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, err
	}
	defer unlock()

	b := &Bundle{Node: node.Name, Role: node.Role, Files: map[string]BundleFile{}}
	var problems []string
	for _, src := range bundleFiles(node) {
		f, err := readFile(dir, src.inDir)
		switch {
		case err != nil:
			problems = append(problems, err.Error())
			continue
		case !f.exists:
			problems = append(problems, src.inDir+" is missing; run `kubesalt pki issue` first")
			continue
		}
		b.Files[src.onNode] = BundleFile{Contents: string(f.data), Mode: fmt.Sprintf("%04o", src.mode)}
	}
	for _, pair := range [][2]string{{"kubelet.pem", "kubelet-key.pem"}, {"kube-apiserver.pem", "kube-apiserver-key.pem"},
		{"kube-apiserver-kubelet-client.pem", "kube-apiserver-kubelet-client-key.pem"},
		{"kube-apiserver-etcd-client.pem", "kube-apiserver-etcd-client-key.pem"},
		{"front-proxy-client.pem", "front-proxy-client-key.pem"},
		{"etcd-server.pem", "etcd-server-key.pem"}, {"etcd-peer.pem", "etcd-peer-key.pem"}} {
		c, okc := b.Files[pair[0]]
		k, okk := b.Files[pair[1]]
		if !okc || !okk {
			continue
		}
		if err := matchingPair([]byte(c.Contents), []byte(k.Contents)); err != nil {
			problems = append(problems, fmt.Sprintf("%s and %s: %v; run `kubesalt pki issue --reissue <name>`", pair[0], pair[1], err))
		}
	}
	if len(problems) > 0 {
		return nil, &StateError{Dir: dir, Problems: problems}
	}
	return b, nil
}

func matchingPair(certPEM, keyPEM []byte) error {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return err
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return fmt.Errorf("the key does not belong to the certificate")
	}
	return nil
}
