package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// serviceAccount is the key pair the API server signs and verifies
// service-account tokens with. It is made once and kept: a new one
// invalidates every token.
type serviceAccount struct {
	key, pub file
	reason   string
	priv     crypto.Signer // the existing key, when only the public half is rewritten
}

func (r *run) inspectServiceAccount() *serviceAccount {
	sa := &serviceAccount{}
	var err1, err2 error
	sa.key, err1 = readFile(r.o.Dir, saKeyFile)
	sa.pub, err2 = readFile(r.o.Dir, saPubFile)
	if err1 != nil || err2 != nil {
		r.problem("reading the service-account key pair: %v %v", err1, err2)
		return sa
	}
	defer func() {
		if sa.reason != "" {
			r.result.Issued[NameServiceAccount] = sa.reason
		}
	}()
	fix := "remove it or run with --reissue " + NameServiceAccount + " to replace the pair (every service-account token is then invalid)"
	switch {
	case r.requested[NameServiceAccount]:
		sa.reason = "requested"
		return sa
	case !sa.key.exists && !sa.pub.exists:
		sa.reason = "new"
		return sa
	case !sa.key.exists:
		r.problem("%s is there but %s is missing; restore it from a backup, or %s", saPubFile, saKeyFile, fix)
		return sa
	}
	key, err := parseKeyPEM(sa.key.data)
	if err != nil {
		r.problem("%s: %v; %s", saKeyFile, err, fix)
		return sa
	}
	if !sa.pub.exists {
		sa.reason, sa.priv = "public key missing", key
		return sa
	}
	pub, err := parsePublicKeyPEM(sa.pub.data)
	if err != nil {
		r.problem("%s: %v; %s", saPubFile, err, fix)
		return sa
	}
	if !publicKeysEqual(pub, key.Public()) {
		r.problem("%s does not belong to %s; %s", saPubFile, saKeyFile, fix)
	}
	return sa
}

// material is the files of the pair: a new pair, or the public half of the
// existing key.
func (sa *serviceAccount) material(alg string) ([]write, error) {
	var out []write
	key := sa.priv
	if key == nil {
		k, err := keyRequest(alg).Generate()
		if err != nil {
			return nil, fmt.Errorf("making the service-account key: %w", err)
		}
		key = k.(crypto.Signer)
		keyPEM, err := marshalKeyPEM(key)
		if err != nil {
			return nil, err
		}
		out = append(out, write{saKeyFile, keyPEM, modeSecret})
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	return append(out, write{saPubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), modePublic}), nil
}

func marshalKeyPEM(key crypto.Signer) ([]byte, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}

func parsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("not a PEM public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("corrupt public key: %v", err)
	}
	return pub, nil
}

// The encryption config of Secrets at rest (kube-apiserver
// --encryption-provider-config): aescbc with a random 32-byte key, identity
// as fallback so Secrets written before it stay readable.
type encryptionConfig struct {
	Kind       string               `yaml:"kind"`
	APIVersion string               `yaml:"apiVersion"`
	Resources  []encryptionResource `yaml:"resources"`
}

type encryptionResource struct {
	Resources []string             `yaml:"resources"`
	Providers []encryptionProvider `yaml:"providers"`
}

type encryptionProvider struct {
	AESCBC   *aesProvider `yaml:"aescbc,omitempty"`
	Identity *struct{}    `yaml:"identity,omitempty"`
}

type aesProvider struct {
	Keys []aesKey `yaml:"keys"`
}

type aesKey struct {
	Name   string `yaml:"name"`
	Secret string `yaml:"secret"`
}

// encryption is the config as found; it is created once and kept.
type encryption struct {
	file   file
	reason string
	keys   []aesKey // existing keys, kept after a new one on rotation
}

func (r *run) inspectEncryption() *encryption {
	e := &encryption{}
	var err error
	if e.file, err = readFile(r.o.Dir, encryptionFile); err != nil {
		r.problem("%v", err)
		return e
	}
	defer func() {
		if e.reason != "" {
			r.result.Issued[NameEncryptionConfig] = e.reason
		}
	}()
	if !e.file.exists {
		e.reason = "new"
		return e
	}
	keys, err := parseEncryptionConfig(e.file.data)
	if err != nil {
		r.problem("%s: %v; remove it only if no Secret was ever encrypted with it (they would be lost), or fix it", encryptionFile, err)
		return e
	}
	if r.requested[NameEncryptionConfig] {
		// Rotation: the new key encrypts, the old ones still decrypt.
		e.reason, e.keys = "requested (new key first, old keys kept to decrypt)", keys
	}
	return e
}

func parseEncryptionConfig(data []byte) ([]aesKey, error) {
	var c encryptionConfig
	if err := yaml.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("not YAML: %v", err)
	}
	if c.Kind != "EncryptionConfiguration" {
		return nil, fmt.Errorf("kind is %q, not EncryptionConfiguration", c.Kind)
	}
	for _, res := range c.Resources {
		for _, p := range res.Providers {
			if p.AESCBC == nil {
				continue
			}
			for _, k := range p.AESCBC.Keys {
				raw, err := base64.StdEncoding.DecodeString(k.Secret)
				if err != nil || len(raw) != 32 {
					return nil, fmt.Errorf("aescbc key %q is not 32 base64-encoded bytes", k.Name)
				}
			}
			if len(p.AESCBC.Keys) > 0 {
				return p.AESCBC.Keys, nil
			}
		}
	}
	return nil, fmt.Errorf("has no aescbc key")
}

// next renders the config with a new random key before the kept ones.
func (e *encryption) next() ([]byte, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	n := 1
	for _, k := range e.keys {
		if i, err := strconv.Atoi(strings.TrimPrefix(k.Name, "key")); err == nil && i >= n {
			n = i + 1
		}
	}
	keys := append([]aesKey{{Name: "key" + strconv.Itoa(n), Secret: base64.StdEncoding.EncodeToString(secret)}}, e.keys...)
	c := encryptionConfig{
		Kind:       "EncryptionConfiguration",
		APIVersion: "apiserver.config.k8s.io/v1",
		Resources: []encryptionResource{{
			Resources: []string{"secrets"},
			Providers: []encryptionProvider{{AESCBC: &aesProvider{Keys: keys}}, {Identity: &struct{}{}}},
		}},
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}
