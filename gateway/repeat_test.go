package gateway

import (
	"strings"
	"testing"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

// TestRepeatAnswer pins what a repeat (a dedupe hit on an accepted event)
// is answered, on every kind of route and first outcome: a success of
// the route's kind (202 async, 200 sync) carrying the first copy's event
// id, in the header and as {"event_id":...,"duplicate":true}, and
// nothing else. It never replays the first answer's content: not a
// target's body (a sync route), not a plugin's drop reason. A dedupe key
// is not a credential (a serial number in the body, a header anyone can
// set), so replaying content would hand the first sender's answer to
// whoever sends the same key.
func TestRepeatAnswer(t *testing.T) {
	crm := startSink(t, sink.Options{Status: 201, Body: `{"ticket":"T-1","customer":"alice@example.com"}`})
	route := func(name, mode string, transforms bool) config.Route {
		r := config.Route{Name: name, Method: "POST", Path: "/" + name, Mode: mode, Targets: []string{"crm"},
			Dedupe: &config.Dedupe{Header: "Idempotency-Key"}}
		if transforms {
			r.Transforms = []config.Step{{Plugin: "p"}}
		}
		return r
	}
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "crm", crm.URL())},
		Routes: []config.Route{route("async", config.ModeAsync, false), route("adrop", config.ModeAsync, true),
			route("sync", config.ModeSync, false), route("sdrop", config.ModeSync, true)},
	}
	q := &memQueue{}
	deps := newDeps(t, cfg)
	deps.Queue = q
	deps.Chains = chainMap{"adrop": &testChain{drop: "score 10 above max_score 6"}, "sdrop": &testChain{drop: "score 10 above max_score 6"}}
	_, base := startGateway(t, cfg, deps)

	tests := []struct {
		path        string
		firstStatus int
		firstBody   string // ID stands for the first event id
		status      int
	}{
		{"/async", 202, `{"event_id":"ID"}`, 202},
		{"/adrop", 202, `{"event_id":"ID","dropped":"score 10 above max_score 6"}`, 202},
		{"/sync", 201, `{"ticket":"T-1","customer":"alice@example.com"}`, 200},
		{"/sdrop", 200, `{"dropped":"score 10 above max_score 6"}`, 200},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			key := map[string]string{"Idempotency-Key": "k" + tc.path}
			first := post(t, base+tc.path, `{"n":1}`, key)
			id := first.header.Get("Hookgate-Event-Id")
			if first.status != tc.firstStatus || first.body != strings.ReplaceAll(tc.firstBody, "ID", id) {
				t.Fatalf("first copy: %d %s, want %d %s", first.status, first.body, tc.firstStatus, tc.firstBody)
			}
			for range 2 {
				a := post(t, base+tc.path, `{"n":1}`, key)
				want := `{"event_id":"` + id + `","duplicate":true}`
				if a.status != tc.status || a.body != want || a.header.Get("Hookgate-Event-Id") != id || a.header.Get("Content-Type") != "application/json" {
					t.Errorf("repeat: %d %s (event %s), want %d %s", a.status, a.body, a.header.Get("Hookgate-Event-Id"), tc.status, want)
				}
			}
		})
	}
	if n := crm.Count(); n != 1 {
		t.Errorf("the target got %d requests, want 1 (the first sync copy)", n)
	}
	if len(q.ds) != 1 {
		t.Errorf("queued %d deliveries, want 1 (the first async copy)", len(q.ds))
	}
}
