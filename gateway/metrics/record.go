package metrics

import (
	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/record"
)

// The registry records events (Recorder): a route's recorder is its
// RouteMetrics, a target's its TargetMetrics.

// CodeReasons are the error codes ingest answers with (the verify reasons
// included), each with the reason label it counts under in
// hookgate_route_rejected_total. The set is closed so the label stays
// bounded; a code outside it counts as "other", the last entry.
var CodeReasons = [...]struct {
	Code   string
	Reason Reason
}{
	{"route_not_found", ReasonNotFound},
	{"method_not_allowed", ReasonMethodNotAllowed},
	{"body_too_large", ReasonBodyTooLarge},
	{"invalid_json", ReasonBadJSON},
	{"headers_too_large", ReasonBadRequest},
	{"request_timeout", ReasonBadRequest},
	{"bad_request", ReasonBadRequest},
	{"http_version_not_supported", ReasonBadRequest},
	{"plugin_failed", ReasonPluginError},
	{"unknown_target", ReasonUnknownTarget},
	{"target_unreachable", ReasonTargetError},
	{"target_disabled", ReasonTargetDisabled},
	{"queue_full", ReasonQueueFull},
	{"queue_unavailable", ReasonQueueError},
	{"overloaded", ReasonOverloaded},
	{"internal_error", ReasonInternal},
	{"in_progress", ReasonDuplicate},
	{"ip_not_allowed", ReasonUnauthorized},
	{"missing_signature", ReasonUnauthorized},
	{"missing_credentials", ReasonUnauthorized},
	{"malformed_header", ReasonUnauthorized},
	{"bad_signature", ReasonUnauthorized},
	{"bad_credentials", ReasonUnauthorized},
	{"timestamp_out_of_tolerance", ReasonUnauthorized},
	{"other", ReasonOther},
}

// CodeIndex is code's index in CodeReasons; an unknown code is "other"'s.
func CodeIndex(code string) int {
	for i := range CodeReasons {
		if CodeReasons[i].Code == code {
			return i
		}
	}
	return len(CodeReasons) - 1
}

// Recorder is the registry as a record.Recorder; nil records nothing.
func (r *Registry) Recorder() record.Recorder {
	if r == nil {
		return nil
	}
	return recorder{r}
}

type recorder struct{ r *Registry }

func (x recorder) Route(name string) record.Route   { return x.r.Route(name) }
func (x recorder) Target(name string) record.Target { return x.r.Target(name) }

// Chained: plugin calls are counted by the host's observer, per plugin.
func (m *RouteMetrics) Chained(*delivery.Event, *delivery.Outcome, error) {}

// Answered counts a request: received, refused by reason, duplicate or
// dropped, and how long it took.
func (m *RouteMetrics) Answered(a *record.Answer) {
	if m == nil {
		return
	}
	m.Request()
	if a.Code != "" {
		m.Reject(CodeReasons[CodeIndex(a.Code)].Reason)
	}
	if a.Duplicate {
		m.Duplicate()
	}
	if a.Dropped {
		m.Dropped()
	}
	m.Observe(a.Took)
}

// Attempted counts an attempt by outcome and status class; one not sent
// for want of an OAuth2 token has class "token".
func (m *TargetMetrics) Attempted(_ *delivery.Delivery, _ int, a *delivery.Attempt) {
	if m == nil {
		return
	}
	cls := classOf(a.Status)
	if a.NoToken {
		cls = classToken
	}
	m.attempt(a.Outcome, cls, a.Duration)
}
