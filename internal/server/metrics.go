package server

import (
	"github.com/hookgate/hookgate/gateway/dispatch"
	"github.com/hookgate/hookgate/gateway/metrics"
	"github.com/hookgate/hookgate/transforms"
)

// poolStats reads the plugin pools at scrape time, for
// hookgate_plugin_instances.
func poolStats(h *transforms.Host) func() map[string]metrics.PoolStat {
	return func() map[string]metrics.PoolStat {
		out := map[string]metrics.PoolStat{}
		for _, p := range h.Stats() {
			out[p.Name] = metrics.PoolStat{Busy: p.Busy, Idle: p.Idle}
		}
		return out
	}
}

// queueStats reads the queue and the breakers at scrape time, for the
// hookgate_target_* gauges: every configured target, and any target that
// still has deliveries in the queue.
func queueStats(d *dispatch.Dispatcher) func() map[string]metrics.QueueStat {
	return func() map[string]metrics.QueueStat {
		out := map[string]metrics.QueueStat{}
		for name, q := range d.Status() {
			out[name] = metrics.QueueStat{Depth: q.Depth, OldestPending: q.OldestAge, DeadLetters: q.Dead, Breaker: q.Breaker}
		}
		return out
	}
}
