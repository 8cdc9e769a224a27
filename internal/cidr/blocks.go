package cidr

import (
	"math/bits"
	"net/netip"
)

// blocks is the set of node-sized blocks of one cluster CIDR: a two-level
// bitmap, so finding the lowest free block reads one summary word per 4,096
// blocks instead of scanning every block (kube-controller-manager's cidrset
// scans from a cursor, O(n) per allocation in the worst case).
type blocks struct {
	cluster netip.Prefix
	mask    int // prefix length of one block
	count   int
	used    []uint64 // bit set: block taken
	full    []uint64 // bit set: the used word of that index is all ones
	free    int
}

func newBlocks(cluster netip.Prefix, mask int) *blocks {
	n := 1 << (mask - cluster.Bits())
	words := (n + 63) / 64
	b := &blocks{cluster: cluster, mask: mask, count: n, used: make([]uint64, words), full: make([]uint64, (words+63)/64), free: n}
	// The tail of the last word does not exist: mark it taken.
	if tail := n % 64; tail != 0 {
		b.used[words-1] = ^uint64(0) << tail
	}
	return b
}

// index returns the block number of p, if p is exactly one block of the set.
func (b *blocks) index(p netip.Prefix) (int, bool) {
	if p.Bits() != b.mask || !b.cluster.Contains(p.Addr()) || p.Addr().Is4() != b.cluster.Addr().Is4() {
		return 0, false
	}
	return int(offset(b.cluster.Addr(), p.Addr()).rsh(p.Addr().BitLen() - b.mask).lo), true
}

// block returns block number i.
func (b *blocks) block(i int) netip.Prefix {
	shift := b.cluster.Addr().BitLen() - b.mask
	return netip.PrefixFrom(add(b.cluster.Addr(), uint64(i), shift), b.mask)
}

// taken returns how many blocks are taken.
func (b *blocks) taken() int { return b.count - b.free }

// take marks block i used; it reports false when it already was.
func (b *blocks) take(i int) bool {
	w, bit := i/64, uint64(1)<<(i%64)
	if b.used[w]&bit != 0 {
		return false
	}
	b.used[w] |= bit
	b.free--
	if b.used[w] == ^uint64(0) {
		b.full[w/64] |= 1 << (w % 64)
	}
	return true
}

// lowestFree returns the lowest free block number.
func (b *blocks) lowestFree() (int, bool) {
	for s, sw := range b.full {
		if sw == ^uint64(0) {
			continue
		}
		w := s*64 + bits.TrailingZeros64(^sw)
		if w >= len(b.used) {
			return 0, false
		}
		return w*64 + bits.TrailingZeros64(^b.used[w]), true
	}
	return 0, false
}

// reserve takes every block that overlaps r (the service or node network).
func (b *blocks) reserve(r netip.Prefix) {
	if !r.Overlaps(b.cluster) {
		return
	}
	if r.Bits() <= b.cluster.Bits() {
		for i := 0; i < b.count; i++ {
			b.take(i)
		}
		return
	}
	if r.Bits() >= b.mask {
		i, _ := b.index(netip.PrefixFrom(r.Addr(), b.mask).Masked())
		b.take(i)
		return
	}
	first, _ := b.index(netip.PrefixFrom(r.Addr(), b.mask))
	for i := first; i < first+1<<(b.mask-r.Bits()); i++ {
		b.take(i)
	}
}

// offset returns a-base as an integer; callers ensure it fits the low bits
// that a block number and its shift span.
func offset(base, a netip.Addr) uint128 {
	return u128(a).sub(u128(base))
}

// add returns base + i<<shift.
func add(base netip.Addr, i uint64, shift int) netip.Addr {
	v := u128(base).add(uint128{lo: i}.lsh(shift))
	if base.Is4() {
		return netip.AddrFrom4([4]byte{byte(v.lo >> 24), byte(v.lo >> 16), byte(v.lo >> 8), byte(v.lo)})
	}
	var b [16]byte
	for k := 0; k < 8; k++ {
		b[k] = byte(v.hi >> (56 - 8*k))
		b[8+k] = byte(v.lo >> (56 - 8*k))
	}
	return netip.AddrFrom16(b)
}

type uint128 struct{ hi, lo uint64 }

func u128(a netip.Addr) uint128 {
	if a.Is4() {
		b := a.As4()
		return uint128{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var v uint128
	for k := 0; k < 8; k++ {
		v.hi = v.hi<<8 | uint64(b[k])
		v.lo = v.lo<<8 | uint64(b[8+k])
	}
	return v
}

func (x uint128) add(y uint128) uint128 {
	lo, carry := bits.Add64(x.lo, y.lo, 0)
	hi, _ := bits.Add64(x.hi, y.hi, carry)
	return uint128{hi, lo}
}

func (x uint128) sub(y uint128) uint128 {
	lo, borrow := bits.Sub64(x.lo, y.lo, 0)
	hi, _ := bits.Sub64(x.hi, y.hi, borrow)
	return uint128{hi, lo}
}

func (x uint128) lsh(n int) uint128 {
	switch {
	case n >= 128:
		return uint128{}
	case n >= 64:
		return uint128{hi: x.lo << (n - 64)}
	case n == 0:
		return x
	}
	return uint128{hi: x.hi<<n | x.lo>>(64-n), lo: x.lo << n}
}

func (x uint128) rsh(n int) uint128 {
	switch {
	case n >= 128:
		return uint128{}
	case n >= 64:
		return uint128{lo: x.hi >> (n - 64)}
	case n == 0:
		return x
	}
	return uint128{hi: x.hi >> n, lo: x.lo>>n | x.hi<<(64-n)}
}
