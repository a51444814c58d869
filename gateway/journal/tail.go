package journal

// After returns up to limit events the journal holds that were recorded
// after the event id after, oldest first: a reader that remembers the
// last id it saw follows new events without the journal keeping any
// state for it (the web console's live tail does). An after the journal
// no longer holds (forgotten, or never there) reads from the oldest
// event; an empty after reads the newest limit events.
//
// Events come in the order the journal first heard of them, which is
// about the order they arrived; an event still being handled is there
// with Status 0, and Get shows it again once it was answered.
func (j *Journal) After(after string, limit int) []Event {
	if j == nil || limit <= 0 {
		return nil
	}
	ids := j.idsAfter(after, limit)
	out := make([]Event, 0, len(ids))
	for _, id := range ids {
		// An event forgotten between the two locks is left out.
		if ev, ok := j.Get(id); ok {
			out = append(out, ev)
		}
	}
	return out
}

// idsAfter is the ids of After, read under one lock. Ring slots are
// taken in turn (j.next), so ring order from the slot after after's up
// to j.next is the order in which events were first recorded.
func (j *Journal) idsAfter(after string, limit int) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := len(j.ring)
	if limit > n {
		limit = n
	}
	// from is the first slot to read; count how many slots follow it up
	// to j.next, the slot the next new event takes.
	from, count := j.next, n // everything, oldest first
	if !j.ring[j.next].used {
		// The ring has not gone round yet: slots 0 to next-1 are used.
		from, count = 0, j.next
	}
	if after == "" {
		from, count = (j.next-limit+n)%n, limit
	} else if k, ok := keyOf([]byte(after)); ok {
		if i, ok := j.index.get(&k, j.index.hash(&k), j.ring); ok {
			from = (i + 1) % n
			count = (j.next - from + n) % n
		}
	}
	count = min(count, limit)
	ids := make([]string, 0, count)
	for c := 0; c < count; c++ {
		e := &j.ring[(from+c)%n]
		if e.used {
			ids = append(ids, string(e.id[:e.idLen]))
		}
	}
	return ids
}
