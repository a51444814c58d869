package dispatch

import (
	"time"

	"github.com/hookgate/hookgate/gateway/queue"
)

// The dead letters and the queue, as the admin API (internal/server) and
// `hookgate replay` see them. These are plain methods: dispatch knows
// nothing of HTTP.

// DeadList returns up to limit dead letters matching f, oldest first,
// starting after cursor (""; the first page); next is the cursor of the
// following page, "" after the last. A cursor that is not one DeadList
// returned fails with queue.ErrBadCursor.
func (d *Dispatcher) DeadList(f queue.Filter, cursor string, limit int) (dead []queue.DeadLetter, next string, err error) {
	return d.store.DeadList(f, cursor, limit)
}

// Replay queues dead letter id again, as a new delivery with the same
// id, and wakes its target's workers. An unknown id is queue.ErrNotFound.
func (d *Dispatcher) Replay(id string) error {
	if err := d.store.Replay(id); err != nil {
		return err
	}
	d.notifyAll()
	return nil
}

// ReplayAll replays up to limit (0: every) dead letters matching f and
// reports how many were replayed and how many matching ones remain. On an
// error, replayed still counts those replayed before it.
func (d *Dispatcher) ReplayAll(f queue.Filter, limit int) (replayed, remaining int, err error) {
	replayed, err = d.store.ReplayAll(f, limit, nil)
	d.notifyAll()
	if err != nil {
		return replayed, 0, err
	}
	remaining, err = d.store.DeadCount(f)
	return replayed, remaining, err
}

func (d *Dispatcher) notifyAll() {
	for _, l := range d.gen.Load().order {
		l.notify()
	}
}

// TargetQueue is one target's line in GET /admin/queue.
type TargetQueue struct {
	Depth     int    `json:"depth"`
	Leased    int    `json:"leased"`
	Bytes     int64  `json:"bytes"`
	OldestAge string `json:"oldest_age"`
	Dead      int    `json:"dead"`
	Breaker   string `json:"breaker,omitempty"` // "" for a target no longer configured
}

// QueueStats is what GET /admin/queue shows: every configured target, and
// any target that still has deliveries in the queue.
func (d *Dispatcher) QueueStats() map[string]TargetQueue {
	stats := d.store.Stats()
	order := d.gen.Load().order
	out := make(map[string]TargetQueue, len(stats)+len(order))
	for _, l := range order {
		out[l.name] = TargetQueue{OldestAge: "0s"}
	}
	for name, st := range stats {
		out[name] = TargetQueue{Depth: st.Depth, Leased: st.Leased, Bytes: st.Bytes, OldestAge: st.OldestAge.Round(time.Millisecond).String(), Dead: st.Dead}
	}
	for name, q := range out {
		q.Breaker = d.BreakerState(name)
		out[name] = q
	}
	return out
}
