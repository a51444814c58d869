package journal

import "hash/maphash"

// index maps event ids to ring slots: open addressing with linear probing
// over a table twice the ring's size, and backward-shift deletion, so it
// never allocates after New and never fills up with tombstones (a Go map
// under constant insert and delete rehashes now and then, which
// allocates on the request path). Keys are kept in the table, so a probe
// does not touch the ring.
type index struct {
	seed  maphash.Seed
	slots []islot
	mask  int
	n     int
}

type islot struct {
	k key
	r int32 // ring slot + 1; 0 is empty
}

func newIndex(size int) index {
	c := 1
	for c < 2*size {
		c <<= 1
	}
	return index{seed: maphash.MakeSeed(), slots: make([]islot, c), mask: c - 1}
}

func (x *index) home(k *key) int { return int(maphash.Bytes(x.seed, k[:])) & x.mask }

// find returns the table position holding k, or -1.
func (x *index) find(k *key) int {
	for i := x.home(k); x.slots[i].r != 0; i = (i + 1) & x.mask {
		if x.slots[i].k == *k {
			return i
		}
	}
	return -1
}

func (x *index) get(k *key) (int, bool) {
	i := x.find(k)
	if i < 0 {
		return 0, false
	}
	return int(x.slots[i].r - 1), true
}

// put adds k (not present) at ring slot r.
func (x *index) put(k *key, r int) {
	i := x.home(k)
	for x.slots[i].r != 0 {
		i = (i + 1) & x.mask
	}
	x.slots[i] = islot{k: *k, r: int32(r + 1)}
	x.n++
}

// del removes k, moving later entries of its probe run back so that
// every entry stays reachable from its home position.
func (x *index) del(k *key) {
	i := x.find(k)
	if i < 0 {
		return
	}
	x.n--
	for j := (i + 1) & x.mask; x.slots[j].r != 0; j = (j + 1) & x.mask {
		h := x.home(&x.slots[j].k)
		// Move j into the hole at i unless j's home lies cyclically in
		// (i, j]: then it must stay where it is.
		if (i < j && (h <= i || h > j)) || (i > j && h <= i && h > j) {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = islot{}
}
