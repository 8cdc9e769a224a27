package virt

import (
	"fmt"
	"strings"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"
)

const gib = 1 << 30

// baseImage is the cloud image every node disk is backed by.
type baseImage struct {
	Path     string
	Format   string
	Capacity uint64 // bytes
}

// lookupPool finds the storage pool; a missing or stopped pool is bad input.
func (h *Hypervisor) lookupPool(name string) (*libvirt.StoragePool, error) {
	p, err := h.conn.LookupStoragePoolByName(name)
	if hasCode(err, libvirt.ERR_NO_STORAGE_POOL) {
		return nil, fmt.Errorf("kubernetes:libvirt:pool: storage pool %q does not exist on %s; create it (virsh pool-define-as %s dir --target /var/lib/libvirt/images) or name an existing one (%s)", name, h.URI, name, strings.Join(h.poolNames(), ", "))
	}
	if err != nil {
		return nil, wrap(err, "looking up storage pool %s", name)
	}
	active, err := p.IsActive()
	if err != nil {
		p.Free()
		return nil, wrap(err, "reading storage pool %s", name)
	}
	if !active {
		p.Free()
		return nil, fmt.Errorf("kubernetes:libvirt:pool: storage pool %q is not running; start it (virsh pool-start %s; virsh pool-autostart %s)", name, name, name)
	}
	return p, nil
}

func (h *Hypervisor) poolNames() []string {
	pools, err := h.conn.ListAllStoragePools(0)
	if err != nil {
		return nil
	}
	var out []string
	for i := range pools {
		if n, err := pools[i].GetName(); err == nil {
			out = append(out, n)
		}
		pools[i].Free()
	}
	if len(out) == 0 {
		return []string{"none defined"}
	}
	return out
}

// lookupBaseImage finds the base image by volume name in the pool or by
// absolute path.
func (h *Hypervisor) lookupBaseImage(pool *libvirt.StoragePool, poolName, image string) (baseImage, error) {
	var vol *libvirt.StorageVol
	var err error
	if strings.HasPrefix(image, "/") {
		vol, err = h.conn.LookupStorageVolByPath(image)
	} else {
		vol, err = pool.LookupStorageVolByName(image)
	}
	if hasCode(err, libvirt.ERR_NO_STORAGE_VOL) {
		return baseImage{}, fmt.Errorf("kubernetes:libvirt:base_image: no volume %q in pool %s on %s; upload the cloud image (virsh vol-create-as %s %s 2G --format qcow2; virsh vol-upload --pool %s %s FILE) or fix the name (the pool has: %s)",
			image, poolName, h.URI, poolName, image, poolName, image, strings.Join(volumeNames(pool), ", "))
	}
	if err != nil {
		return baseImage{}, wrap(err, "looking up base image %s", image)
	}
	defer vol.Free()
	x, err := vol.GetXMLDesc(0)
	if err != nil {
		return baseImage{}, wrap(err, "reading base image %s", image)
	}
	var v libvirtxml.StorageVolume
	if err := v.Unmarshal(x); err != nil {
		return baseImage{}, err
	}
	b := baseImage{Format: "raw"}
	if v.Target != nil {
		b.Path = v.Target.Path
		if v.Target.Format != nil && v.Target.Format.Type != "" {
			b.Format = v.Target.Format.Type
		}
	}
	if v.Capacity != nil {
		b.Capacity = toBytes(v.Capacity.Value, v.Capacity.Unit)
	}
	return b, nil
}

func volumeNames(pool *libvirt.StoragePool) []string {
	vols, err := pool.ListAllStorageVolumes(0)
	if err != nil {
		return nil
	}
	var out []string
	for i := range vols {
		if n, err := vols[i].GetName(); err == nil {
			out = append(out, n)
		}
		vols[i].Free()
	}
	if len(out) == 0 {
		return []string{"no volumes"}
	}
	return out
}

func toBytes(v uint64, unit string) uint64 {
	switch strings.ToLower(unit) {
	case "", "b", "bytes":
		return v
	case "k", "kib":
		return v << 10
	case "m", "mib":
		return v << 20
	case "g", "gib":
		return v << 30
	case "t", "tib":
		return v << 40
	case "kb":
		return v * 1000
	case "mb":
		return v * 1000 * 1000
	case "gb":
		return v * 1000 * 1000 * 1000
	}
	return v
}

// volumePath returns the path of the named volume, or "" if it is missing.
func volumePath(pool *libvirt.StoragePool, name string) (string, error) {
	v, err := pool.LookupStorageVolByName(name)
	if hasCode(err, libvirt.ERR_NO_STORAGE_VOL) {
		return "", nil
	}
	if err != nil {
		return "", wrap(err, "looking up volume %s", name)
	}
	defer v.Free()
	p, err := v.GetPath()
	if err != nil {
		return "", wrap(err, "reading volume %s", name)
	}
	return p, nil
}

// createDisk creates node s's disk: a qcow2 overlay backed by the base
// image, grown to the role's disk size.
func createDisk(pool *libvirt.StoragePool, s NodeSpec, base baseImage) (string, error) {
	v := libvirtxml.StorageVolume{
		Name:     s.DiskVolume(),
		Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: uint64(s.Machine.DiskGiB) * gib},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
		BackingStore: &libvirtxml.StorageVolumeBackingStore{
			Path:   base.Path,
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: base.Format},
		},
	}
	x, err := v.Marshal()
	if err != nil {
		return "", err
	}
	vol, err := pool.StorageVolCreateXML(x, 0)
	if err != nil {
		return "", wrap(err, "creating disk %s", s.DiskVolume())
	}
	defer vol.Free()
	p, err := vol.GetPath()
	return p, wrap(err, "reading disk %s", s.DiskVolume())
}

// createSeed creates the seed volume and uploads the ISO into it. The test
// driver cannot store contents: uploaded reports false there.
func (h *Hypervisor) createSeed(pool *libvirt.StoragePool, s NodeSpec, iso []byte) (path string, uploaded bool, err error) {
	v := libvirtxml.StorageVolume{
		Name:     s.SeedVolume(),
		Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: uint64(len(iso))},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "raw"}},
	}
	x, err := v.Marshal()
	if err != nil {
		return "", false, err
	}
	vol, err := pool.StorageVolCreateXML(x, 0)
	if err != nil {
		return "", false, wrap(err, "creating seed %s", s.SeedVolume())
	}
	defer vol.Free()
	path, err = vol.GetPath()
	if err != nil {
		vol.Delete(0)
		return "", false, wrap(err, "reading seed %s", s.SeedVolume())
	}
	if err := h.upload(vol, iso); err != nil {
		if h.isTestDriver() && hasCode(err, libvirt.ERR_NO_SUPPORT) {
			return path, false, nil
		}
		vol.Delete(0)
		return "", false, wrap(err, "uploading seed %s", s.SeedVolume())
	}
	return path, true, nil
}

func (h *Hypervisor) upload(vol *libvirt.StorageVol, data []byte) error {
	st, err := h.conn.NewStream(0)
	if err != nil {
		return err
	}
	defer st.Free()
	if err := vol.Upload(st, 0, uint64(len(data)), 0); err != nil {
		return err
	}
	for len(data) > 0 {
		n, err := st.Send(data)
		if err != nil {
			st.Abort()
			return err
		}
		data = data[n:]
	}
	return st.Finish()
}

// deleteVolume deletes the named volume; it reports whether it existed.
func deleteVolume(pool *libvirt.StoragePool, name string, test bool) (bool, error) {
	v, err := pool.LookupStorageVolByName(name)
	if hasCode(err, libvirt.ERR_NO_STORAGE_VOL) {
		return false, nil
	}
	if err != nil {
		return false, wrap(err, "looking up volume %s", name)
	}
	defer v.Free()
	if test {
		return true, nil
	}
	return true, wrap(v.Delete(0), "deleting volume %s", name)
}
