// Package saltkey makes and places Salt minion keys: a key pair in the
// formats Salt writes, accepted on the master before the minion first
// starts (as salt-cloud does), and removed from the master with its node.
package saltkey

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
)

// Bits is Salt's default key size (the `keysize` option).
const Bits = 2048

// Pair is a Salt minion's RSA key pair in the files' formats Salt
// itself writes (salt/crypt.py gen_keys): minion.pem is PKCS#1
// ("RSA PRIVATE KEY"), minion.pub is SubjectPublicKeyInfo ("PUBLIC KEY").
type Pair struct {
	PrivatePEM string
	PublicPEM  string
}

// New generates a key pair, so that the minion boots with a key
// the master has already accepted (as salt-cloud does).
func New(bits int) (Pair, error) {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return Pair{}, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return Pair{}, err
	}
	return Pair{
		PrivatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})),
		PublicPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
	}, nil
}

// Key directories of a Salt master's pki_dir; an accepted key lives in
// minions/<id>, and a removed node must be in none of them.
var masterKeyDirs = []string{"minions", "minions_pre", "minions_rejected", "minions_denied"}

// AcceptedPath is where the master keeps minion id's accepted key.
func AcceptedPath(pkiDir, id string) string {
	return filepath.Join(pkiDir, "minions", id)
}

// AcceptedState tells whether the master's accepted key for id is pub.
func AcceptedState(pkiDir, id, pub string) (present, same bool, err error) {
	b, err := os.ReadFile(AcceptedPath(pkiDir, id))
	if errors.Is(err, os.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return true, strings.TrimSpace(string(b)) == strings.TrimSpace(pub), nil
}

// Accept writes pub as minion id's accepted key (0644, as the master
// writes it), atomically.
func Accept(pkiDir, id, pub string) error {
	dir := filepath.Join(pkiDir, "minions")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, id), []byte(pub), 0o644)
}

// Remove deletes minion id's key from every key directory of the
// master; it returns the directories it removed it from.
func Remove(pkiDir, id string, test bool) ([]string, error) {
	var removed []string
	for _, d := range masterKeyDirs {
		p := filepath.Join(pkiDir, d, id)
		if _, err := os.Lstat(p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return removed, err
		}
		if !test {
			if err := os.Remove(p); err != nil {
				return removed, fmt.Errorf("removing minion key %s: %w", p, err)
			}
		}
		removed = append(removed, d)
	}
	return removed, nil
}
