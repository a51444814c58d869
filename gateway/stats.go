package gateway

import (
	"sync/atomic"

	"github.com/hookgate/hookgate/gateway/metrics"
	"github.com/hookgate/hookgate/gateway/verify"
)

// countedCodes are the error codes counted per route: every code ingest
// answers with, the verify reasons included, each with the reason label
// it counts under in hookgate_route_rejected_total. The set is closed so
// the counters are a fixed array; a code outside it counts as "other".
var countedCodes = [...]struct {
	code   string
	reason metrics.Reason
}{
	{codeRouteNotFound, metrics.ReasonNotFound},
	{codeMethodNotAllowed, metrics.ReasonMethodNotAllowed},
	{codeBodyTooLarge, metrics.ReasonBodyTooLarge},
	{codeInvalidJSON, metrics.ReasonBadJSON},
	{codeHeadersTooLarge, metrics.ReasonBadRequest},
	{codeRequestTimeout, metrics.ReasonBadRequest},
	{codeBadRequest, metrics.ReasonBadRequest},
	{codePluginFailed, metrics.ReasonPluginError},
	{codeUnknownTarget, metrics.ReasonUnknownTarget},
	{codeTargetUnreachable, metrics.ReasonTargetError},
	{codeQueueFull, metrics.ReasonQueueFull},
	{codeQueueUnavailable, metrics.ReasonQueueError},
	{codeOverloaded, metrics.ReasonOverloaded},
	{codeInternal, metrics.ReasonInternal},
	{codeInProgress, metrics.ReasonDuplicate},
	{verify.ReasonIPNotAllowed, metrics.ReasonUnauthorized},
	{verify.ReasonMissingSignature, metrics.ReasonUnauthorized},
	{verify.ReasonMissingCredentials, metrics.ReasonUnauthorized},
	{verify.ReasonMalformedHeader, metrics.ReasonUnauthorized},
	{verify.ReasonBadSignature, metrics.ReasonUnauthorized},
	{verify.ReasonBadCredentials, metrics.ReasonUnauthorized},
	{verify.ReasonTimestampTolerance, metrics.ReasonUnauthorized},
	{"other", metrics.ReasonOther},
}

// routeStats counts one route's refusals and duplicates. Plain atomics,
// readable without Prometheus (Gateway.Counts); each count is also passed
// to the route's metrics handle when Deps.Metrics is set.
type routeStats struct {
	refused    [len(countedCodes)]atomic.Uint64
	duplicates atomic.Uint64
}

func (s *routeStats) refuse(code string, m *metrics.RouteMetrics) {
	i := len(countedCodes) - 1
	for j := range countedCodes {
		if countedCodes[j].code == code {
			i = j
			break
		}
	}
	s.refused[i].Add(1)
	m.Reject(countedCodes[i].reason)
}

func (s *routeStats) duplicate(m *metrics.RouteMetrics) {
	s.duplicates.Add(1)
	m.Duplicate()
}

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
			c.Refused[countedCodes[i].code] = n
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
