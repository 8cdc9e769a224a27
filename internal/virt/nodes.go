package virt

import (
	"fmt"
	"sort"
	"strings"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltio"
	"github.com/kubesalt/kubesalt/internal/saltkey"
)

// NodeChange is what happened (or, in test mode, would happen) to a node.
type NodeChange struct {
	// Created lists the objects made: disk, seed, domain, minion_key.
	Created []string `json:"created,omitempty"`
	// Fixed lists the repairs of existing objects: autostart, started,
	// minion_key (the master's accepted key restored).
	Fixed []string `json:"fixed,omitempty"`
	// Drift lists the settings of an existing domain that differ from the
	// definition; Updated says they were written (next boot applies them
	// to a running domain).
	Drift   map[string]Drift `json:"drift,omitempty"`
	Updated bool             `json:"updated,omitempty"`
	// Removed lists what node removal deleted.
	Removed []string `json:"removed,omitempty"`
}

func (c *NodeChange) empty() bool {
	return len(c.Created) == 0 && len(c.Fixed) == 0 && len(c.Drift) == 0 && len(c.Removed) == 0
}

// NodeState is a node's domain as found after the run.
type NodeState struct {
	State string `json:"state"`
	MAC   string `json:"mac"`
	IP    string `json:"ip"`
}

// NodesReport is the outcome of EnsureNodes or RemoveNodes.
type NodesReport struct {
	Changes map[string]*NodeChange
	Nodes   map[string]NodeState
	// Failure is set when a node could not be done; the nodes before it
	// are in Changes, what was created for it was rolled back (RolledBack)
	// or, if rollback failed too, is listed in Leftover.
	Failure    error
	FailedNode string
	RolledBack []string
	Leftover   []string
	Warnings   []string
	// Drifted is true when drift was found and left alone.
	Drifted bool
}

// domainInfo is an existing domain, parsed once.
type domainInfo struct {
	Name  string
	Def   libvirtxml.Domain
	Meta  nodeMetadata
	Ours  bool
	State libvirt.DomainState
	MACs  []string
}

func (h *Hypervisor) domains() (map[string]*domainInfo, error) {
	doms, err := h.conn.ListAllDomains(0)
	if err != nil {
		return nil, wrap(err, "listing domains on %s", h.URI)
	}
	defer func() {
		for i := range doms {
			doms[i].Free()
		}
	}()
	out := make(map[string]*domainInfo, len(doms))
	for i := range doms {
		di, err := inspect(&doms[i])
		if err != nil {
			return nil, err
		}
		out[di.Name] = di
	}
	return out, nil
}

func inspect(d *libvirt.Domain) (*domainInfo, error) {
	x, err := d.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE)
	if err != nil {
		return nil, wrap(err, "reading a domain's definition")
	}
	di := &domainInfo{}
	if err := di.Def.Unmarshal(x); err != nil {
		return nil, err
	}
	di.Name = di.Def.Name
	di.Meta, di.Ours = parseMetadata(di.Def.Metadata)
	di.MACs = domainMACs(&di.Def)
	st, _, err := d.GetState()
	if err != nil {
		return nil, wrap(err, "reading domain %s state", di.Name)
	}
	di.State = st
	return di, nil
}

// ours tells whether the domain was made by kubesalt-virt for this cluster.
func (di *domainInfo) ours(clusterName string) bool {
	return di.Ours && di.Meta.Cluster == clusterName
}

// StateName is libvirt's word for a domain state.
func StateName(s libvirt.DomainState) string {
	switch s {
	case libvirt.DOMAIN_RUNNING:
		return "running"
	case libvirt.DOMAIN_BLOCKED:
		return "blocked"
	case libvirt.DOMAIN_PAUSED:
		return "paused"
	case libvirt.DOMAIN_SHUTDOWN:
		return "shutdown"
	case libvirt.DOMAIN_SHUTOFF:
		return "shutoff"
	case libvirt.DOMAIN_CRASHED:
		return "crashed"
	case libvirt.DOMAIN_PMSUSPENDED:
		return "pmsuspended"
	}
	return "nostate"
}

// plan is what the preflight found, shared by the node steps.
type plan struct {
	def     *cluster.Definition
	pool    *libvirt.StoragePool
	base    baseImage
	domains map[string]*domainInfo
	domType string
	logDir  string
	pkiDir  string
}

func (p *plan) free() {
	if p.pool != nil {
		p.pool.Free()
	}
}

// preflight checks everything that can be known before acting and returns
// all problems at once, as bad input.
func (h *Hypervisor) preflight(d *cluster.Definition, specs []NodeSpec, pkiDir string) (*plan, error) {
	var problems []string
	p := &plan{def: d, pkiDir: pkiDir, domType: d.Libvirt.DomainType}
	if h.isTestDriver() {
		p.domType = "test"
	} else if h.driver == "QEMU" {
		p.logDir = "/var/log/libvirt/qemu"
	}
	if pkiDir != "" {
		if err := checkPKIDir(pkiDir); err != nil {
			problems = append(problems, err.Error())
		}
	}
	pool, err := h.lookupPool(d.Libvirt.Pool)
	if err != nil {
		return nil, saltio.BadInput(err)
	}
	p.pool = pool
	base, err := h.lookupBaseImage(pool, d.Libvirt.Pool, d.Libvirt.BaseImage)
	if err != nil {
		p.free()
		return nil, saltio.BadInput(err)
	}
	p.base = base
	if ok, active, err := h.networkState(d.Libvirt.Network.Name); err != nil {
		p.free()
		return nil, err
	} else if !ok || !active {
		problems = append(problems, fmt.Sprintf("kubernetes:libvirt:network:name: network %q does not exist or is not running on %s; run `kubesalt-virt network ensure` first", d.Libvirt.Network.Name, h.URI))
	}
	if p.domains, err = h.domains(); err != nil {
		p.free()
		return nil, err
	}
	macOwner := map[string]string{}
	for _, di := range p.domains {
		for _, m := range di.MACs {
			macOwner[m] = di.Name
		}
	}
	checkedRoles := map[string]bool{}
	for _, s := range specs {
		if di, ok := p.domains[s.Name]; ok && !di.ours(d.Name) {
			owner := "it has no kubesalt metadata"
			if di.Ours {
				owner = "it belongs to cluster " + di.Meta.Cluster
			}
			problems = append(problems, fmt.Sprintf("kubernetes:nodes:%s: a domain of that name already exists on %s and was not made for this cluster (%s); rename the node or remove that domain", s.Name, h.URI, owner))
		}
		if other, ok := macOwner[s.MAC]; ok && other != s.Name {
			problems = append(problems, fmt.Sprintf("kubernetes:nodes:%s: its MAC %s is already used by domain %s; rename the node (its MAC derives from the name) or change that domain", s.Name, s.MAC, other))
		}
		if m := s.Machine; uint64(m.DiskGiB)*gib < base.Capacity && !checkedRoles[s.Role] {
			checkedRoles[s.Role] = true
			problems = append(problems, fmt.Sprintf("kubernetes:libvirt:roles:%s:disk_gib: %d GiB is smaller than the base image (%.1f GiB); give at least %d", s.Role, m.DiskGiB, float64(base.Capacity)/gib, (base.Capacity+gib-1)/gib))
		}
	}
	if len(problems) > 0 {
		p.free()
		return nil, saltio.BadInputf("%s", strings.Join(problems, "\n"))
	}
	return p, nil
}

// EnsureNodes creates the named nodes' VMs (all nodes when names is
// empty) and starts them. Bad input is returned as an error before
// anything is done; a failure while acting is in the report, with the
// failing node's partial objects rolled back.
func (h *Hypervisor) EnsureNodes(d *cluster.Definition, names []string, pkiDir string, opts Options) (*NodesReport, error) {
	specs, err := Specs(d, names)
	if err != nil {
		return nil, saltio.BadInput(err)
	}
	p, err := h.preflight(d, specs, pkiDir)
	if err != nil {
		return nil, err
	}
	defer p.free()
	rep := &NodesReport{Changes: map[string]*NodeChange{}, Nodes: map[string]NodeState{}}
	for _, s := range specs {
		ch, st, err := h.ensureNode(p, s, opts, rep)
		if err != nil {
			rep.Failure, rep.FailedNode = err, s.Name
			break
		}
		if !ch.empty() {
			rep.Changes[s.Name] = ch
		}
		rep.Nodes[s.Name] = st
	}
	return rep, nil
}

// undoLog remembers how to take back what one node's run created.
type undoLog struct {
	steps []struct {
		what string
		undo func() error
	}
}

func (u *undoLog) add(what string, undo func() error) {
	u.steps = append(u.steps, struct {
		what string
		undo func() error
	}{what, undo})
}

// rollback undoes in reverse order; it returns what was undone and what
// could not be.
func (u *undoLog) rollback() (done, left []string) {
	for i := len(u.steps) - 1; i >= 0; i-- {
		s := u.steps[i]
		if err := s.undo(); err != nil {
			left = append(left, fmt.Sprintf("%s (%v)", s.what, err))
		} else {
			done = append(done, s.what)
		}
	}
	return done, left
}

func (h *Hypervisor) ensureNode(p *plan, s NodeSpec, opts Options, rep *NodesReport) (ch *NodeChange, st NodeState, err error) {
	ch = &NodeChange{}
	st = NodeState{MAC: s.MAC, IP: s.IPv4().String(), State: "shutoff"}
	var undo undoLog
	defer func() {
		if err != nil {
			rep.RolledBack, rep.Leftover = undo.rollback()
		}
	}()
	pool := p.pool

	diskPath, err := volumePath(pool, s.DiskVolume())
	if err != nil {
		return nil, st, err
	}
	if diskPath == "" {
		ch.Created = append(ch.Created, "disk")
		if !opts.Test {
			if diskPath, err = createDisk(pool, s, p.base); err != nil {
				return nil, st, err
			}
			undo.add("disk "+s.DiskVolume(), func() error { _, err := deleteVolume(pool, s.DiskVolume(), false); return err })
		}
	}

	di, exists := p.domains[s.Name]
	seedPath, err := volumePath(pool, s.SeedVolume())
	if err != nil {
		return nil, st, err
	}
	pub := ""
	if exists {
		pub = di.Meta.MinionPublicKey
	}
	// A seed without its domain is a leftover whose key nobody knows:
	// replace it. A domain without its seed is drift.
	newSeed := !exists || (seedPath == "" && opts.Update)
	if newSeed {
		ch.Created = append(ch.Created, "seed")
		if !opts.Test {
			if seedPath != "" {
				if _, err := deleteVolume(pool, s.SeedVolume(), false); err != nil {
					return nil, st, err
				}
			}
			key, err := saltkey.New(saltkey.Bits)
			if err != nil {
				return nil, st, err
			}
			seed, err := SeedFor(s, p.def.Libvirt, key)
			if err != nil {
				return nil, st, err
			}
			iso, err := seed.ISO()
			if err != nil {
				return nil, st, err
			}
			path, uploaded, err := h.createSeed(pool, s, iso)
			if err != nil {
				return nil, st, err
			}
			undo.add("seed "+s.SeedVolume(), func() error { _, err := deleteVolume(pool, s.SeedVolume(), false); return err })
			if !uploaded {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: the %s driver cannot store volume contents; seed %s is empty", s.Name, h.driver, s.SeedVolume()))
			}
			seedPath, pub = path, key.PublicPEM
		}
	}

	want, err := DomainXML(s, domainInputs{Type: p.domType, Network: p.def.Libvirt.Network.Name, DiskPath: diskPath, SeedPath: seedPath, MinionPub: pub, LogDir: p.logDir})
	if err != nil {
		return nil, st, err
	}
	var dom *libvirt.Domain
	if !exists {
		ch.Created = append(ch.Created, "domain")
		if opts.Test {
			st.State = "running"
			if p.pkiDir != "" {
				ch.Created = append(ch.Created, "minion_key")
			}
			return ch, st, nil
		}
		// dom is freed before a rollback runs: look the domain up again.
		undo.add("domain "+s.Name, func() error {
			d, err := h.conn.LookupDomainByName(s.Name)
			if hasCode(err, libvirt.ERR_NO_DOMAIN) {
				return nil
			}
			if err != nil {
				return err
			}
			defer d.Free()
			return undefine(d)
		})
		if dom, err = h.defineDomain(want); err != nil {
			return nil, st, err
		}
		defer dom.Free()
	} else {
		if dom, err = h.conn.LookupDomainByName(s.Name); err != nil {
			return nil, st, wrap(err, "looking up domain %s", s.Name)
		}
		defer dom.Free()
		have := domainSettings(&di.Def)
		dr := diff(have, domainSettings(want))
		if seedPath == "" || newSeed {
			dr["seed"] = Drift{Have: "missing", Want: s.SeedVolume()}
		}
		if len(dr) > 0 {
			ch.Drift = dr
			if !opts.Update {
				rep.Drifted = true
			} else {
				ch.Updated = true
				if !opts.Test {
					want.UUID = di.Def.UUID
					x, err := want.Marshal()
					if err != nil {
						return nil, st, err
					}
					d2, err := h.conn.DomainDefineXML(x)
					if err != nil {
						return nil, st, wrap(err, "updating domain %s", s.Name)
					}
					d2.Free()
				}
			}
		}
		auto, err := dom.GetAutostart()
		if err != nil {
			return nil, st, wrap(err, "reading domain %s autostart", s.Name)
		}
		if !auto {
			ch.Fixed = append(ch.Fixed, "autostart")
			if !opts.Test {
				if err := dom.SetAutostart(true); err != nil {
					return nil, st, wrap(err, "marking domain %s autostart", s.Name)
				}
			}
		}
	}

	state, _, err := dom.GetState()
	if err != nil {
		return nil, st, wrap(err, "reading domain %s state", s.Name)
	}
	if state != libvirt.DOMAIN_RUNNING {
		if exists {
			ch.Fixed = append(ch.Fixed, "started")
		}
		if !opts.Test {
			if err := dom.Create(); err != nil {
				return nil, st, wrap(err, "starting domain %s", s.Name)
			}
			if state, _, err = dom.GetState(); err != nil {
				return nil, st, wrap(err, "reading domain %s state", s.Name)
			}
		} else {
			state = libvirt.DOMAIN_RUNNING
		}
	}
	st.State = StateName(state)

	if p.pkiDir != "" && pub != "" {
		present, same, err := saltkey.AcceptedState(p.pkiDir, s.Name, pub)
		if err != nil {
			return nil, st, err
		}
		if !same {
			if exists && !newSeed {
				ch.Fixed = append(ch.Fixed, "minion_key")
			} else {
				ch.Created = append(ch.Created, "minion_key")
			}
			if !opts.Test {
				if err := saltkey.Accept(p.pkiDir, s.Name, pub); err != nil {
					return nil, st, fmt.Errorf("accepting minion key of %s: %w", s.Name, err)
				}
				if !present {
					undo.add("minion key "+saltkey.AcceptedPath(p.pkiDir, s.Name), func() error { _, err := saltkey.Remove(p.pkiDir, s.Name, false); return err })
				}
			}
		}
	}
	return ch, st, nil
}

// defineDomain defines a new domain and marks it autostart.
func (h *Hypervisor) defineDomain(want *libvirtxml.Domain) (*libvirt.Domain, error) {
	x, err := want.Marshal()
	if err != nil {
		return nil, err
	}
	dom, err := h.conn.DomainDefineXML(x)
	if err != nil {
		return nil, wrap(err, "defining domain %s", want.Name)
	}
	if err := dom.SetAutostart(true); err != nil {
		dom.Free()
		return nil, wrap(err, "marking domain %s autostart", want.Name)
	}
	return dom, nil
}

// undefine stops and undefines a domain with everything libvirt keeps
// for it.
func undefine(dom *libvirt.Domain) error {
	if active, err := dom.IsActive(); err == nil && active {
		if err := dom.Destroy(); err != nil && !hasCode(err, libvirt.ERR_OPERATION_INVALID) {
			return err
		}
	}
	err := dom.UndefineFlags(libvirt.DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.DOMAIN_UNDEFINE_NVRAM)
	if hasCode(err, libvirt.ERR_NO_SUPPORT) || hasCode(err, libvirt.ERR_INVALID_ARG) {
		err = dom.Undefine()
	}
	return err
}

// RemoveNodes destroys and undefines the named nodes' domains, deletes
// their disks and seeds and removes their keys from the master. The nodes
// need not be in the definition any more; a domain not made by kubesalt
// for this cluster is refused before anything is removed.
func (h *Hypervisor) RemoveNodes(d *cluster.Definition, names []string, pkiDir string, test bool) (*NodesReport, error) {
	if d.Libvirt == nil {
		return nil, saltio.BadInputf("kubernetes:libvirt: missing; add the section that says where the VMs are (see pillar.example)")
	}
	if len(names) == 0 {
		return nil, saltio.BadInputf("--node: give the node to remove")
	}
	if pkiDir != "" {
		if err := checkPKIDir(pkiDir); err != nil {
			return nil, saltio.BadInput(err)
		}
	}
	pool, err := h.lookupPool(d.Libvirt.Pool)
	if err != nil {
		return nil, saltio.BadInput(err)
	}
	defer pool.Free()
	doms, err := h.domains()
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, n := range names {
		if di, ok := doms[n]; ok && !di.ours(d.Name) {
			problems = append(problems, fmt.Sprintf("--node %s: domain %s on %s was not made by kubesalt-virt for cluster %s; refusing to remove it", n, n, h.URI, d.Name))
		}
	}
	if len(problems) > 0 {
		return nil, saltio.BadInputf("%s", strings.Join(problems, "\n"))
	}
	rep := &NodesReport{Changes: map[string]*NodeChange{}, Nodes: map[string]NodeState{}}
	sort.Strings(names)
	for _, n := range names {
		ch := &NodeChange{}
		if err := h.removeNode(pool, n, doms[n] != nil, pkiDir, test, ch); err != nil {
			rep.Failure, rep.FailedNode = err, n
			if !ch.empty() {
				rep.Changes[n] = ch
			}
			break
		}
		if !ch.empty() {
			rep.Changes[n] = ch
		}
	}
	return rep, nil
}

func (h *Hypervisor) removeNode(pool *libvirt.StoragePool, name string, exists bool, pkiDir string, test bool, ch *NodeChange) error {
	if exists {
		ch.Removed = append(ch.Removed, "domain")
		if !test {
			dom, err := h.conn.LookupDomainByName(name)
			if err != nil {
				return wrap(err, "looking up domain %s", name)
			}
			err = undefine(dom)
			dom.Free()
			if err != nil {
				return wrap(err, "removing domain %s", name)
			}
		}
	}
	s := NodeSpec{Name: name}
	for _, v := range []struct{ what, vol string }{{"disk", s.DiskVolume()}, {"seed", s.SeedVolume()}} {
		found, err := deleteVolume(pool, v.vol, test)
		if err != nil {
			return err
		}
		if found {
			ch.Removed = append(ch.Removed, v.what)
		}
	}
	if pkiDir != "" {
		dirs, err := saltkey.Remove(pkiDir, name, test)
		if err != nil {
			return err
		}
		if len(dirs) > 0 {
			ch.Removed = append(ch.Removed, "minion_key")
		}
	}
	return nil
}

// DomainSummary is one line of List.
type DomainSummary struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	MAC       string `json:"mac"`
	VCPU      int    `json:"vcpu"`
	MemoryMiB int    `json:"memory_mib"`
	Cluster   string `json:"cluster"`
	Role      string `json:"role"`
}

// List returns the domains kubesalt-virt made, of any cluster, by name.
func (h *Hypervisor) List() ([]DomainSummary, error) {
	doms, err := h.domains()
	if err != nil {
		return nil, err
	}
	out := []DomainSummary{}
	for _, di := range doms {
		if !di.Ours {
			continue
		}
		set := domainSettings(&di.Def)
		ds := DomainSummary{Name: di.Name, State: StateName(di.State), VCPU: set["vcpu"].(int), MemoryMiB: set["memory_mib"].(int), Cluster: di.Meta.Cluster, Role: di.Meta.Role}
		if len(di.MACs) > 0 {
			ds.MAC = di.MACs[0]
		}
		out = append(out, ds)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
