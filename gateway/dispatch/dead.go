package dispatch

import (
	"encoding/json"
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
	for _, l := range d.cur.Load().order {
		l.notify()
	}
}

// TargetStatus is one target's queue and breaker: a line of GET
// /admin/queue, the "queue" of a target in GET /admin/targets, and what
// the hookgate_target_* gauges read.
type TargetStatus struct {
	queue.TargetStats
	Breaker string // BreakerClosed, BreakerHalfOpen, BreakerOpen or BreakerDisabled; "" for a target no longer configured
	// FailingSince is when the target's current run of failures began
	// (disable_after counts from it); zero when its last attempt succeeded.
	FailingSince time.Time
}

// MarshalJSON writes the admin API's shape, with the oldest pending age
// in seconds as the hookgate_target_oldest_pending_seconds gauge has it:
//
//	{"depth":3,"leased":1,"bytes":2048,"oldest_pending_seconds":1.5,"dead":0,"breaker":"closed"}
//
// with "failing_since" (RFC 3339) while the target is failing.
func (s TargetStatus) MarshalJSON() ([]byte, error) {
	var since string
	if !s.FailingSince.IsZero() {
		since = s.FailingSince.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(struct {
		Depth         int     `json:"depth"`  // pending, being sent included
		Leased        int     `json:"leased"` // being sent now
		Bytes         int64   `json:"bytes"`
		OldestPending float64 `json:"oldest_pending_seconds"`
		Dead          int     `json:"dead"`
		Breaker       string  `json:"breaker,omitempty"`
		FailingSince  string  `json:"failing_since,omitempty"`
	}{s.Depth, s.Leased, s.Bytes, s.OldestAge.Seconds(), s.Dead, s.Breaker, since})
}

// Status reports every configured target, and any target that still has
// deliveries in the queue (or dead letters).
func (d *Dispatcher) Status() map[string]TargetStatus {
	stats := d.store.Stats()
	order := d.cur.Load().order
	out := make(map[string]TargetStatus, len(stats)+len(order))
	for _, l := range order {
		out[l.name] = TargetStatus{}
	}
	for name, st := range stats {
		out[name] = TargetStatus{TargetStats: st}
	}
	for name, q := range out {
		q.Breaker = d.BreakerState(name)
		q.FailingSince = d.FailingSince(name)
		out[name] = q
	}
	return out
}
