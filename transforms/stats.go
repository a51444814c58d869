package transforms

import (
	"sort"
	"sync/atomic"

	"github.com/hookgate/hookgate/plugins/abi"
)

// PluginStats are one plugin's counters since it was loaded, for the admin
// API and metrics.
type PluginStats struct {
	Name       string
	Calls      int64            // hookgate_handle calls, failed ones included
	Failures   map[string]int64 // by Kind; kinds with no failure are absent
	Created    int64            // instances created (the first one at Load included)
	Discarded  int64            // instances thrown away after a failure
	LogDropped int64            // log lines dropped by the rate limit
	Busy       int              // instances running a call now
	Idle       int              // instances ready for a call now
}

// counters are a plugin's live counters.
type counters struct {
	calls     atomic.Int64
	discarded atomic.Int64
	logDrops  atomic.Int64
	failures  [len(abi.Kinds)]atomic.Int64
}

func (c *counters) fail(kind string) {
	for i, k := range abi.Kinds {
		if k == kind {
			c.failures[i].Add(1)
			return
		}
	}
}

// Stats returns the counters of every loaded plugin, sorted by name.
func (h *Host) Stats() []PluginStats {
	h.mu.Lock()
	ps := make([]*plugin, 0, len(h.plugins))
	for _, p := range h.plugins {
		ps = append(ps, p)
	}
	h.mu.Unlock()
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	out := make([]PluginStats, len(ps))
	for i, p := range ps {
		s := PluginStats{
			Name:       p.name,
			Calls:      p.stats.calls.Load(),
			Failures:   map[string]int64{},
			Created:    int64(p.seq.Load()),
			Discarded:  p.stats.discarded.Load(),
			LogDropped: p.stats.logDrops.Load(),
			Idle:       len(p.ready),
			Busy:       p.spec.Instances - len(p.ready) - len(p.room),
		}
		for j, k := range abi.Kinds {
			if n := p.stats.failures[j].Load(); n > 0 {
				s.Failures[k] = n
			}
		}
		out[i] = s
	}
	return out
}
