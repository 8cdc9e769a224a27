// Package status keeps what the Salt returner reports about every minion
// (last run, route sync outcome, pod CIDR, certificates, VM state) in one
// bbolt file on the master, and joins it with the current plan to show the
// cluster at a glance.
package status

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Buckets of the store. Every value is JSON.
var (
	bucketMinions = []byte("minions")      // minion id -> Minion
	bucketVMs     = []byte("vms")          // domain name -> VM
	bucketCerts   = []byte("certificates") // certificate name -> Certificate
)

// Store is the status database.
type Store struct{ db *bolt.DB }

// Open opens (creating) the store at path. A second writer waits up to
// ten seconds for the file lock: returners of many minions land at once.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening the status store %s: %w (another kubesalt status may hold it; retry)", path, err)
	}
	return &Store{db: db}, nil
}

// OpenReadOnly opens an existing store for reading; a missing file is an
// empty store (nil, nil).
func OpenReadOnly(path string) (*Store, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 10 * time.Second, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("opening the status store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error {
	if s == nil {
		return nil
	}
	return s.db.Close()
}

// Apply merges the facts of one job return into the store in a single
// transaction: either all of them land or none.
func (s *Store) Apply(f Facts) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		mb, err := tx.CreateBucketIfNotExists(bucketMinions)
		if err != nil {
			return err
		}
		var m Minion
		if err := get(mb, f.Minion, &m); err != nil {
			return err
		}
		m.merge(f)
		if err := put(mb, f.Minion, m); err != nil {
			return err
		}
		vb, err := tx.CreateBucketIfNotExists(bucketVMs)
		if err != nil {
			return err
		}
		for _, vm := range f.VMs {
			if err := put(vb, vm.Name, vm); err != nil {
				return err
			}
		}
		for _, name := range f.VMsRemoved {
			if err := vb.Delete([]byte(name)); err != nil {
				return err
			}
		}
		cb, err := tx.CreateBucketIfNotExists(bucketCerts)
		if err != nil {
			return err
		}
		for _, c := range f.Certificates {
			if err := put(cb, c.Name, c); err != nil {
				return err
			}
		}
		return nil
	})
}

// Snapshot is the whole store, read in one transaction.
type Snapshot struct {
	Minions      map[string]Minion
	VMs          map[string]VM
	Certificates map[string]Certificate
}

// Read returns a consistent snapshot of the store. A nil store is empty.
func (s *Store) Read() (Snapshot, error) {
	snap := Snapshot{Minions: map[string]Minion{}, VMs: map[string]VM{}, Certificates: map[string]Certificate{}}
	if s == nil {
		return snap, nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := each(tx.Bucket(bucketMinions), func(k string, v []byte) error {
			var m Minion
			err := json.Unmarshal(v, &m)
			snap.Minions[k] = m
			return err
		}); err != nil {
			return err
		}
		if err := each(tx.Bucket(bucketVMs), func(k string, v []byte) error {
			var vm VM
			err := json.Unmarshal(v, &vm)
			snap.VMs[k] = vm
			return err
		}); err != nil {
			return err
		}
		return each(tx.Bucket(bucketCerts), func(k string, v []byte) error {
			var c Certificate
			err := json.Unmarshal(v, &c)
			snap.Certificates[k] = c
			return err
		})
	})
	return snap, err
}

func get(b *bolt.Bucket, key string, v any) error {
	data := b.Get([]byte(key))
	if data == nil {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("status store: entry %q is corrupt: %w", key, err)
	}
	return nil
}

func put(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

func each(b *bolt.Bucket, fn func(k string, v []byte) error) error {
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}
