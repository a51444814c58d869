package gateway

import (
	"sync/atomic"

	"github.com/hookgate/hookgate/gateway/metrics"
)

// routeStats counts one route's refusals (by code, the codes of
// metrics.CodeReasons) and duplicates: plain atomics, readable without
// Prometheus (Gateway.Counts).
type routeStats struct {
	refused    [len(metrics.CodeReasons)]atomic.Uint64
	duplicates atomic.Uint64
}

func (s *routeStats) refuse(code string) { s.refused[metrics.CodeIndex(code)].Add(1) }

func (s *routeStats) duplicate() { s.duplicates.Add(1) }

// RouteCounts is a snapshot of one route's counters.
type RouteCounts struct {
	Route      string            // "" for requests that matched no route
	Refused    map[string]uint64 // error code -> requests answered with it; codes never seen are absent
	Duplicates uint64            // repeats of an accepted event, answered with the first copy's event id
}

func (s *routeStats) snapshot(name string) RouteCounts {
	c := RouteCounts{Route: name, Refused: map[string]uint64{}, Duplicates: s.duplicates.Load()}
	for i := range s.refused {
		if n := s.refused[i].Load(); n > 0 {
			c.Refused[metrics.CodeReasons[i].Code] = n
		}
	}
	return c
}

// Counts returns the refusal and duplicate counters of every route in the
// current table, then of requests that matched no route. Counters carry
// on across reloads for routes that keep their name.
func (g *Gateway) Counts() []RouteCounts {
	t := g.tbl.Load()
	out := make([]RouteCounts, 0, len(t.routes)+1)
	for _, r := range t.routes {
		out = append(out, r.stats.snapshot(r.name))
	}
	return append(out, g.unrouted.snapshot(""))
}
