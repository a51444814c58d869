package dispatch

import (
	"encoding/json"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
)

// Operational webhooks ([operations]): hookgate tells a target of the
// operator's (a Slack relay, a pager) about trouble without anyone
// scraping metrics. Each event is an ordinary delivery to that target,
// stored in the same durable queue, retried, dead-lettered and signed
// with the target's own auth like any other (config requires it to have
// one), so a relay can tell hookgate's word from a forgery, and a gateway
// restart loses no event that was queued.
//
// The body is Standard Webhooks' suggested envelope:
//
//	{"type":"target.disabled","timestamp":"2026-11-21T15:02:11.3Z","data":{...}}
//
// data never holds an event's body, a target's answer, a URL or a
// credential: names, ids, times, counts, statuses and the attempt's error
// as the log line has it (see the *Data types).
//
// Loops. An event about the operations target itself (its deliveries
// dying, it being disabled or recovering) is never sent to it, and
// neither is one about an operational delivery, wherever it went: it is
// logged instead. Otherwise a failing operations target would report its
// own failure to itself, fail that too, and so on.
//
// Events are handed to one goroutine through a bounded buffer, so the
// worker that saw a delivery die never waits on an fsync for it, and a
// storm of dead letters costs a bounded amount of memory; it stores what
// arrived together in one Enqueue (one fsync). A full buffer drops events
// and says how many in the log.

// OperationsRoute is the route of operational deliveries, as dead letters
// and log lines show it. It is not a valid route name, so it never
// collides with one: GET /admin/dead?route=hookgate:operations.
const OperationsRoute = "hookgate:operations"

// opsBuffer is how many operational events wait at most for the store.
const opsBuffer = 1024

// operations is the dispatcher's operational-webhook sender.
type operations struct {
	cfg     atomic.Pointer[config.Operations] // nil: none configured
	ch      chan delivery.Delivery
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Int64
	high    bool // queue.high_water sent and not re-armed; runOps' own
}

func (o *operations) init() {
	o.ch = make(chan delivery.Delivery, opsBuffer)
	o.stop = make(chan struct{})
	o.done = make(chan struct{})
}

// SetOperations sets where operational events go, from [operations] of
// the config being served; internal/server calls it at start and on every
// reload.
func (d *Dispatcher) SetOperations(o config.Operations) {
	if o.Target == "" {
		d.ops.cfg.Store(nil)
		return
	}
	d.ops.cfg.Store(&o)
}

// opEvent is the body of an operational delivery.
type opEvent struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// deadData is delivery.dead's data: a delivery was given up on and is a
// dead letter, waiting for a replay.
type deadData struct {
	Target     string `json:"target"`
	Route      string `json:"route"`
	DeliveryID string `json:"delivery_id"`
	EventID    string `json:"event_id"`
	Attempts   int    `json:"attempts"`
	Status     int    `json:"status,omitempty"` // the last answer's status; absent when there was none
	Reason     string `json:"reason"`           // the last attempt's error and why retrying ended
	EnqueuedAt string `json:"enqueued_at"`
	Action     string `json:"action"`
}

// disabledData is target.disabled's data.
type disabledData struct {
	Target       string `json:"target"`
	FailingSince string `json:"failing_since"`
	DisableAfter string `json:"disable_after"`
	LastError    string `json:"last_error"`
	Action       string `json:"action"`
}

// recoveredData is target.recovered's data: a target whose breaker had
// opened, or that had been disabled and was enabled, delivered again.
type recoveredData struct {
	Target       string `json:"target"`
	FailingSince string `json:"failing_since,omitempty"`
	WasDisabled  bool   `json:"was_disabled"`
}

// highWaterData is queue.high_water's data.
type highWaterData struct {
	Depth         int     `json:"depth"`
	MaxDepth      int     `json:"max_depth"` // 0: unlimited
	Bytes         int64   `json:"bytes"`
	MaxBytes      int64   `json:"max_bytes"` // 0: unlimited
	HighWater     float64 `json:"high_water"`
	DeepestTarget string  `json:"deepest_target"` // the target with the most pending deliveries
	DeepestDepth  int     `json:"deepest_depth"`
}

// stamp writes unix nanoseconds as the events' timestamps are written; ""
// for 0.
func stamp(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// emit queues event (about target about; "" for none) for the operations
// target, if one is configured and wants it. It never blocks.
func (d *Dispatcher) emit(event, about string, data any) {
	o := d.ops.cfg.Load()
	if o == nil || !o.Sends(event) {
		return
	}
	if about == o.Target {
		d.log.Warn("operations: not sent: the event is about the operations target itself", "event", event, "target", about)
		return
	}
	now := time.Now()
	body, err := json.Marshal(opEvent{Type: event, Timestamp: stamp(now.UnixNano()), Data: data})
	if err != nil { // only plain strings and numbers: cannot happen
		d.log.Error("operations: cannot encode the event", "event", event, "err", err)
		return
	}
	id := opsID(now)
	dl := delivery.Delivery{ID: id, EventID: id, Route: OperationsRoute, Target: o.Target,
		Headers: []delivery.KV{{Key: []byte("Content-Type"), Value: []byte("application/json")}}, Body: body}
	select {
	case d.ops.ch <- dl:
	default:
		if d.ops.dropped.Add(1) == 1 {
			d.log.Warn("operations: too many events at once; dropping them until the queue has stored the others", "event", event)
		}
	}
}

// dead reports a delivery given up on (n attempts, the last one a).
func (l *lane) dead(dl *delivery.Delivery, n int, a *delivery.Attempt, enqueued int64) {
	if dl.Route == OperationsRoute {
		// An operational event that died: reporting it would be another
		// operational event, which could die too.
		return
	}
	l.d.emit(config.EventDeliveryDead, l.name, deadData{
		Target: l.name, Route: dl.Route, DeliveryID: string(dl.ID), EventID: string(dl.EventID),
		Attempts: n, Status: a.Status, Reason: a.Error, EnqueuedAt: stamp(enqueued),
		Action: "replay it with POST /admin/dead/" + string(dl.ID) + "/replay once the target is fixed",
	})
}

// startOps starts the goroutine that stores operational events and
// watches the queue's high-water mark.
func (d *Dispatcher) startOps() { go d.runOps() }

// stopOps stores what is buffered and stops; call it after the lanes
// stopped and before the store closes. Only after startOps.
func (d *Dispatcher) stopOps() {
	d.ops.once.Do(func() { close(d.ops.stop) })
	<-d.ops.done
}

func (d *Dispatcher) runOps() {
	defer close(d.ops.done)
	tick := time.NewTicker(d.poll)
	defer tick.Stop()
	batch := make([]delivery.Delivery, 0, 64)
	for {
		select {
		case dl := <-d.ops.ch:
			d.storeOps(append(batch[:0], dl))
		case <-tick.C:
			d.checkHighWater()
		case <-d.ops.stop:
			// Store everything buffered, not just one batch of it.
			for len(d.ops.ch) > 0 {
				d.storeOps(batch[:0])
			}
			return
		}
	}
}

// storeOps adds whatever else is buffered to batch and enqueues it all
// at once.
func (d *Dispatcher) storeOps(batch []delivery.Delivery) {
	for len(batch) < cap(batch) {
		select {
		case dl := <-d.ops.ch:
			batch = append(batch, dl)
			continue
		default:
		}
		break
	}
	if len(batch) == 0 {
		return
	}
	if err := d.Enqueue(batch); err != nil {
		d.log.Error("operations: events not stored; they are lost", "events", len(batch), "err", err)
	}
	if n := d.ops.dropped.Swap(0); n > 0 {
		d.log.Warn("operations: events were dropped: too many at once", "dropped", n)
	}
}

// checkHighWater sends queue.high_water once the queue passes the mark,
// and re-arms once it is back under half of it, so a queue hovering at
// the line does not page anyone every second.
func (d *Dispatcher) checkHighWater() {
	o := d.ops.cfg.Load()
	if o == nil || !o.Sends(config.EventQueueHighWater) {
		d.ops.high = false
		return
	}
	f := d.store.Fill()
	ratio := 0.0
	if f.MaxDepth > 0 {
		ratio = float64(f.Depth) / float64(f.MaxDepth)
	}
	if f.MaxBytes > 0 {
		ratio = max(ratio, float64(f.Bytes)/float64(f.MaxBytes))
	}
	switch {
	case !d.ops.high && ratio >= o.HighWater:
		d.ops.high = true
		data := highWaterData{Depth: f.Depth, MaxDepth: f.MaxDepth, Bytes: f.Bytes, MaxBytes: f.MaxBytes, HighWater: o.HighWater}
		for name, st := range d.store.Stats() {
			if st.Depth > data.DeepestDepth {
				data.DeepestTarget, data.DeepestDepth = name, st.Depth
			}
		}
		d.log.Warn("queue: past its high-water mark; ingest answers 503 once it is full", "depth", f.Depth, "max_depth", f.MaxDepth,
			"bytes", f.Bytes, "max_bytes", f.MaxBytes, "deepest_target", data.DeepestTarget)
		d.emit(config.EventQueueHighWater, "", data)
	case d.ops.high && ratio < o.HighWater/2:
		d.ops.high = false
	}
}

// opsID is a new operational delivery id: "op_" and 26 Crockford base32
// characters of 48 bits of Unix milliseconds and 80 random bits, so ids
// sort by time and never repeat in practice.
func opsID(now time.Time) []byte {
	const crockford = "0123456789abcdefghjkmnpqrstvwxyz"
	hi := uint64(now.UnixMilli())&(1<<48-1)<<16 | rand.Uint64()&(1<<16-1)
	lo := rand.Uint64()
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return append([]byte("op_"), out[:]...)
}
