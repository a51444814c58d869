package queue

// entryHeap orders ready entries by due time, then sequence.
type entryHeap []*entry

func (h entryHeap) less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].seq < h[j].seq
}

func (h entryHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (h *entryHeap) push(e *entry) {
	e.heapIdx = len(*h)
	*h = append(*h, e)
	h.up(e.heapIdx)
}

func (h *entryHeap) pop() *entry {
	old := *h
	e := old[0]
	h.remove(e)
	return e
}

func (h *entryHeap) remove(e *entry) {
	old := *h
	i, last := e.heapIdx, len(old)-1
	if i != last {
		old.swap(i, last)
	}
	old[last] = nil
	*h = old[:last]
	if i != last {
		h.fix2(i)
	}
	e.heapIdx = -1
}

func (h *entryHeap) fix(e *entry) { h.fix2(e.heapIdx) }

func (h *entryHeap) fix2(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h entryHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h entryHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
