package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reason is why ingest refused a request: the reason label of
// hookgate_route_rejected_total. The set is closed so the label stays
// bounded; a value outside it is counted as "other".
type Reason uint8

const (
	ReasonNotFound         Reason = iota // no route for the path (route="")
	ReasonMethodNotAllowed               // the path exists, not with this method (route="")
	ReasonBadRequest                     // unreadable HTTP: malformed, headers too large, read timeout (route="")
	ReasonOverloaded                     // server.max_concurrency reached before routing (route="")
	ReasonBodyTooLarge                   // over the route's max_body
	ReasonBadJSON                        // the route expects JSON and the body is not
	ReasonUnauthorized                   // signature, token or auth check failed
	ReasonDuplicate                      // another copy of the event is being handled right now (409)
	ReasonQueueFull                      // the durable queue is over its budget (503)
	ReasonQueueError                     // the queue failed to store the event (503)
	ReasonPluginError                    // the transform chain failed (502)
	ReasonUnknownTarget                  // a plugin emitted to a target that is not defined (502)
	ReasonTargetError                    // a sync route's target could not be reached (502/504)
	ReasonTargetDisabled                 // a sync route's target is disabled (disable_after) until an operator enables it (503)
	ReasonInternal                       // a bug: the handler panicked (500)
	ReasonOther                          // anything else; also what an out-of-range Reason counts as
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonNotFound:         "not_found",
	ReasonMethodNotAllowed: "method_not_allowed",
	ReasonBadRequest:       "bad_request",
	ReasonOverloaded:       "overloaded",
	ReasonBodyTooLarge:     "body_too_large",
	ReasonBadJSON:          "bad_json",
	ReasonUnauthorized:     "unauthorized",
	ReasonDuplicate:        "duplicate",
	ReasonQueueFull:        "queue_full",
	ReasonQueueError:       "queue_error",
	ReasonPluginError:      "plugin_error",
	ReasonUnknownTarget:    "unknown_target",
	ReasonTargetError:      "target_error",
	ReasonTargetDisabled:   "target_disabled",
	ReasonInternal:         "internal",
	ReasonOther:            "other",
}

// String is the reason's label value.
func (r Reason) String() string {
	if r >= numReasons {
		return reasonNames[ReasonOther]
	}
	return reasonNames[r]
}

// beforeRouting says whether a refusal happens before any route is known,
// so it is only ever counted with route="".
func beforeRouting(r Reason) bool {
	switch r {
	case ReasonNotFound, ReasonMethodNotAllowed, ReasonBadRequest, ReasonOverloaded:
		return true
	}
	return false
}

// RouteMetrics are one route's handles. Get them once per route with
// Registry.Route when the route table is built; every method is safe on a
// nil *RouteMetrics (it does nothing) and allocates nothing.
type RouteMetrics struct {
	name       string
	requests   prometheus.Counter
	duplicates prometheus.Counter
	dropped    prometheus.Counter
	duration   prometheus.Observer

	// rejected holds a child per reason. Those a route can meet start at
	// 0 when the handle is made, so an alert on a rate sees the first
	// refusal; the others (not_found on a named route, bad_json with
	// route="") are made on first use, which should be never, rather than
	// exported as zeros forever.
	rejectedVec *prometheus.CounterVec // curried with the route
	mu          sync.Mutex
	rejected    [numReasons]atomic.Pointer[counter]
}

// Route returns the handles of the route named name, creating them the
// first time. The same name always gives the same handle, so counters
// carry on across reloads. Use Unrouted for requests that matched no
// route.
func (r *Registry) Route(name string) *RouteMetrics {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.routes[name]; m != nil {
		return m
	}
	v := labelValue(name)
	m := &RouteMetrics{
		name:        name,
		requests:    r.routeRequests.WithLabelValues(v),
		duplicates:  r.routeDuplicates.WithLabelValues(v),
		dropped:     r.routeDropped.WithLabelValues(v),
		duration:    r.routeDuration.WithLabelValues(v),
		rejectedVec: r.routeRejected.MustCurryWith(prometheus.Labels{"route": v}),
	}
	for reason := range numReasons {
		expected := beforeRouting(reason) == (name == "") || reason == ReasonInternal || reason == ReasonOther
		if expected {
			m.resolveReject(reason)
		}
	}
	r.routes[name] = m
	return m
}

// Unrouted returns the handles for requests that matched no route, or were
// refused before routing (overloaded, unreadable): route="".
func (r *Registry) Unrouted() *RouteMetrics { return r.Route("") }

// Name is the route's name ("" for Unrouted).
func (m *RouteMetrics) Name() string {
	if m == nil {
		return ""
	}
	return m.name
}

// Request counts one request received on the route. Call it once per
// request, as soon as the route is known.
func (m *RouteMetrics) Request() {
	if m == nil {
		return
	}
	m.requests.Inc()
}

// Reject counts one refusal (an error answer) for reason.
func (m *RouteMetrics) Reject(reason Reason) {
	if m == nil {
		return
	}
	if reason >= numReasons {
		reason = ReasonOther
	}
	c := m.rejected[reason].Load()
	if c == nil {
		c = m.resolveReject(reason)
	}
	c.Inc()
}

func (m *RouteMetrics) resolveReject(reason Reason) *counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.rejected[reason].Load(); c != nil {
		return c
	}
	c := &counter{m.rejectedVec.WithLabelValues(reasonNames[reason])}
	m.rejected[reason].Store(c)
	return c
}

// Duplicate counts a repeat of an accepted event, answered as a success
// with the first copy's event id. (A copy refused with 409 because the first is still being
// handled is Reject(ReasonDuplicate) instead.)
func (m *RouteMetrics) Duplicate() {
	if m == nil {
		return
	}
	m.duplicates.Inc()
}

// Dropped counts an event a plugin dropped on purpose.
func (m *RouteMetrics) Dropped() {
	if m == nil {
		return
	}
	m.dropped.Inc()
}

// Observe records how long the request took, from receipt to answer. Call
// it once per request, refused ones included.
func (m *RouteMetrics) Observe(d time.Duration) {
	if m == nil {
		return
	}
	m.duration.Observe(d.Seconds())
}
