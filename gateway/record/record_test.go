package record

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/delivery"
)

// counter counts what it is told, per route and target name.
type counter struct{ calls []string }

func (c *counter) Route(name string) Route   { return counterRoute{c, name} }
func (c *counter) Target(name string) Target { return counterTarget{c, name} }

type counterRoute struct {
	c    *counter
	name string
}

func (r counterRoute) Chained(ev *delivery.Event, _ *delivery.Outcome, err error) {
	r.c.calls = append(r.c.calls, fmt.Sprintf("chained %s %s %v", r.name, ev.ID, err))
}

func (r counterRoute) Answered(a *Answer) {
	r.c.calls = append(r.c.calls, fmt.Sprintf("answered %s %s %d", r.name, a.EventID, a.Status))
}

type counterTarget struct {
	c    *counter
	name string
}

func (t counterTarget) Attempted(d *delivery.Delivery, n int, a *delivery.Attempt) {
	t.c.calls = append(t.c.calls, fmt.Sprintf("attempted %s %s %d %d", t.name, d.ID, n, a.Status))
}

// TestTee: every recorder is told everything, in order, under the name it
// was resolved with; nil recorders are left out, none at all is Nop.
func TestTee(t *testing.T) {
	a, b := &counter{}, &counter{}
	rec := Tee(a, nil, b)
	r := rec.Route("howxm")
	r.Chained(&delivery.Event{ID: []byte("e1")}, nil, nil)
	r.Answered(&Answer{EventID: []byte("e1"), Status: 202})
	rec.Target("crm").Attempted(&delivery.Delivery{ID: []byte("e1.0")}, 2, &delivery.Attempt{Status: 503})
	want := []string{"chained howxm e1 <nil>", "answered howxm e1 202", "attempted crm e1.0 2 503"}
	for _, c := range []*counter{a, b} {
		if strings.Join(c.calls, "|") != strings.Join(want, "|") {
			t.Errorf("told %q, want %q", c.calls, want)
		}
	}
	if got := Tee(a); got != Recorder(a) {
		t.Errorf("Tee of one = %T, want the recorder itself", got)
	}
	if _, ok := Tee(nil, nil).(Nop); !ok {
		t.Error("Tee of none is not Nop")
	}
}

type pluginErr struct{}

func (pluginErr) Error() string       { return `plugin "filter": timed out after 100ms` }
func (pluginErr) PluginName() string  { return "filter" }
func (pluginErr) FailureKind() string { return "timeout" }

// TestLogLines: a success logs nothing, each failure exactly one line with
// the fields the README lists, and the access line only when asked.
func TestLogLines(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	lines := func() []string {
		s := strings.TrimSpace(buf.String())
		buf.Reset()
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}
	rec := Log(log, false)
	r := rec.Route("howxm")
	ok := &Answer{EventID: []byte("e1"), Route: "howxm", Status: 202, Method: []byte("POST"), Path: []byte("/h")}
	r.Answered(ok)
	rec.Target("crm").Attempted(&delivery.Delivery{ID: []byte("e1.0"), Target: "crm"}, 1, &delivery.Attempt{Status: 200, Outcome: delivery.AttemptSuccess})
	r.Chained(&delivery.Event{ID: []byte("e1")}, &delivery.Outcome{}, nil)
	if l := lines(); l != nil {
		t.Fatalf("a success logged %q", l)
	}

	r.Answered(&Answer{EventID: []byte("e2"), Route: "howxm", Status: 401, Code: "bad_signature", Message: []byte("check the secret"),
		RemoteIP: netip.MustParseAddr("203.0.113.7"), Method: []byte("POST"), Path: []byte("/h")})
	r.Chained(&delivery.Event{ID: []byte("e3"), Route: "howxm"}, nil, fmt.Errorf("chain: %w", pluginErr{}))
	r.Chained(&delivery.Event{ID: []byte("e4"), Route: "howxm"}, nil, errors.New("no plugin said"))
	rec.Target("crm").Attempted(&delivery.Delivery{ID: []byte("e5.0"), Target: "crm", Route: "q"}, 3,
		&delivery.Attempt{Status: 503, Error: "status 503: will retry", Outcome: delivery.AttemptRetry})
	rec.Target("crm").Attempted(&delivery.Delivery{ID: []byte("e6.0"), Target: "crm", Route: "q"}, 5,
		&delivery.Attempt{Status: 400, Error: "status 400; max_attempts reached", Outcome: delivery.AttemptDead})
	r.Answered(&Answer{EventID: []byte("e7"), Route: "howxm", Status: 502, Code: "target_unreachable",
		Deliveries: []delivery.Delivery{{ID: []byte("e7.0"), Target: "crm"}, {ID: []byte("e7.1"), Target: "sms"}},
		Attempts:   []delivery.Attempt{{Outcome: delivery.AttemptError, Error: "connection refused"}, {Status: 500, Outcome: delivery.AttemptError}}})
	want := []string{
		`msg="ingest: refused" route=howxm code=bad_signature status=401 event_id=e2 remote_ip=203.0.113.7 method=POST path=/h message="check the secret"`,
		`msg="plugin error" plugin=filter kind=timeout event_id=e3 route=howxm`,
		`msg="plugin error" plugin="" kind=other event_id=e4`,
		`msg="dispatch: attempt failed; will retry" target=crm delivery_id=e5.0 route=q attempt=3 status=503`,
		`msg="dispatch: delivery dead; replay it from /admin/dead" target=crm delivery_id=e6.0 route=q attempt=5 status=400`,
		`msg="ingest: sync delivery failed" target=crm delivery_id=e7.0 route=howxm attempt=1 event_id=e7 error="connection refused"`,
		`msg="ingest: refused" route=howxm code=target_unreachable status=502 event_id=e7`,
	}
	got := lines()
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("line %d:\n%s\nwant it to hold\n%s", i, got[i], want[i])
		}
	}

	Log(log, true).Route("howxm").Answered(ok)
	if l := lines(); len(l) != 1 || !strings.Contains(l[0], `msg=request event_id=e1 method=POST path=/h route=howxm status=202`) {
		t.Errorf("access line = %q", l)
	}
}
