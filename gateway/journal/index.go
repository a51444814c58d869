package journal

import "hash/maphash"

// index maps event ids to ring slots: open addressing with linear probing
// over a table twice the ring's size, and backward-shift deletion, so it
// never allocates after New and never fills up with tombstones (a Go map
// under constant insert and delete rehashes now and then, which
// allocates on the request path).
//
// A table slot holds the id's 32-bit hash and the ring slot, 8 bytes,
// not the id: the default table (32,768 slots) is then 256 KiB, which
// stays in a core's cache, where with the ids it was 1.3 MiB, and every
// event's lookup, insert and delete went to memory at a random place
// (benchmarks/HISTORY.md, twentieth run). A slot whose hash matches is
// confirmed against the ring entry's id; with the table's low bits as
// the home, the rest of the hash keeps false matches to about one in
// 2^17 probes.
type index struct {
	seed  maphash.Seed
	slots []islot
	mask  int
	n     int
}

type islot struct {
	h uint32 // the id's hash (hash)
	r int32  // ring slot + 1; 0 is empty
}

func newIndex(size int) index {
	c := 1
	for c < 2*size {
		c <<= 1
	}
	return index{seed: maphash.MakeSeed(), slots: make([]islot, c), mask: c - 1}
}

func (x *index) hash(k *key) uint32 { return uint32(maphash.Bytes(x.seed, k[:])) }

func (x *index) home(h uint32) int { return int(h) & x.mask }

// get returns the ring slot holding k (whose hash is h), looked up in
// ring.
func (x *index) get(k *key, h uint32, ring []entry) (int, bool) {
	for i := x.home(h); x.slots[i].r != 0; i = (i + 1) & x.mask {
		if s := x.slots[i]; s.h == h && ring[s.r-1].id == *k {
			return int(s.r - 1), true
		}
	}
	return 0, false
}

// put adds ring slot r, whose id (not present) hashes to h.
func (x *index) put(h uint32, r int) {
	i := x.home(h)
	for x.slots[i].r != 0 {
		i = (i + 1) & x.mask
	}
	x.slots[i] = islot{h: h, r: int32(r + 1)}
	x.n++
}

// del removes ring slot r, whose id hashes to h, moving later entries of
// its probe run back so that every entry stays reachable from its home.
func (x *index) del(h uint32, r int) {
	i := x.home(h)
	for ; x.slots[i].r != int32(r+1); i = (i + 1) & x.mask {
		if x.slots[i].r == 0 {
			return // not there
		}
	}
	x.n--
	for j := (i + 1) & x.mask; x.slots[j].r != 0; j = (j + 1) & x.mask {
		h := x.home(x.slots[j].h)
		// Move j into the hole at i unless j's home lies cyclically in
		// (i, j]: then it must stay where it is.
		if (i < j && (h <= i || h > j)) || (i > j && h <= i && h > j) {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = islot{}
}
