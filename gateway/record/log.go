package record

import (
	"errors"
	"log/slog"

	"github.com/hookgate/hookgate/delivery"
)

// Log is the recorder of log lines: something that went wrong gets
// exactly one line at warn, a success none (with access, one "request"
// line per request). The lines never hold an event's content, a query
// or a credential: the message of a refusal is the one the sender got,
// built without secrets.
func Log(log *slog.Logger, access bool) Recorder {
	if log == nil {
		log = slog.Default()
	}
	return logRecorder{log: log, access: access}
}

type logRecorder struct {
	log    *slog.Logger
	access bool
}

func (r logRecorder) Route(string) Route   { return r }
func (r logRecorder) Target(string) Target { return r }

// PluginFailure is what a chain's error says of the plugin that failed
// (transforms.PluginError is one).
type PluginFailure interface {
	error
	PluginName() string
	FailureKind() string
}

func (r logRecorder) Chained(ev *delivery.Event, _ *delivery.Outcome, err error) {
	if err == nil {
		return
	}
	plugin, kind := "", "other"
	var pf PluginFailure
	if errors.As(err, &pf) {
		plugin, kind = pf.PluginName(), pf.FailureKind()
	}
	// What the plugin said goes in error; the event's content never does
	// (it may hold personal data).
	r.log.Warn("plugin error", "plugin", plugin, "kind", kind, "event_id", string(ev.ID), "route", ev.Route, "error", err.Error())
}

func (r logRecorder) Answered(a *Answer) {
	// A sync delivery that got no answer: its own line (the sender hears
	// of the first delivery only, in the refusal below).
	for i := range a.Attempts {
		if at := &a.Attempts[i]; at.Outcome == delivery.AttemptError && at.Status == 0 {
			d := &a.Deliveries[i]
			r.log.Warn("ingest: sync delivery failed", "target", d.Target, "delivery_id", string(d.ID), "route", a.Route, "attempt", 1,
				"event_id", string(a.EventID), "error", at.Error)
		}
	}
	if a.Code != "" {
		r.log.Warn("ingest: refused", "route", a.Route, "code", a.Code, "status", a.Status,
			"event_id", string(a.EventID), "remote_ip", a.RemoteIP.String(),
			"method", string(a.Method), "path", string(a.Path), "message", string(a.Message))
	}
	if r.access {
		r.log.Info("request", "event_id", string(a.EventID), "method", string(a.Method), "path", string(a.Path),
			"route", a.Route, "status", a.Status)
	}
}

func (r logRecorder) Attempted(d *delivery.Delivery, n int, a *delivery.Attempt) {
	var msg string
	switch a.Outcome {
	case delivery.AttemptSuccess, delivery.AttemptError:
		// A success logs nothing; a sync route's attempt is in its
		// answer's lines.
		return
	case delivery.AttemptDead:
		msg = "dispatch: delivery dead; replay it from /admin/dead"
	default:
		msg = "dispatch: attempt failed; will retry"
	}
	r.log.Warn(msg, "target", d.Target, "delivery_id", string(d.ID), "route", d.Route,
		"attempt", n, "status", a.Status, "error", a.Error, "duration", a.Duration)
}
