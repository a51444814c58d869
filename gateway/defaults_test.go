package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
)

// delayChain does what a plugin calling set_delay on the event (and,
// with query, set_query) without emitting does to the outcome.
type delayChain struct{ query string }

func (c delayChain) Run(_ context.Context, ev *delivery.Event, out *delivery.Outcome) error {
	out.NotBefore = ev.ReceivedAt + int64(time.Hour)
	if c.query != "" {
		ev.Query = append(ev.Query[:0], c.query...)
	}
	return nil
}

// TestEventDelayKeepsForwardedHeaders: an event-wide delay with no emit
// delays the default deliveries, which keep every forwarded header, and
// carry the query only where a plugin changed it.
func TestEventDelayKeepsForwardedHeaders(t *testing.T) {
	route := func(name string) config.Route {
		return config.Route{Name: name, Method: "POST", Path: "/" + name, Mode: config.ModeAsync, Targets: []string{"a", "b"},
			Transforms: []config.Step{{Plugin: "p"}}}
	}
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "a", unusedURL), targetAt(t, "b", unusedURL)},
		Routes:  []config.Route{route("delay"), route("requery")},
	}
	q := &memQueue{}
	deps := newDeps(t, cfg)
	deps.Queue = q
	deps.Chains = chainMap{"delay": delayChain{}, "requery": delayChain{query: "email=a+b%40c&z=1"}}
	_, base := startGateway(t, cfg, deps)

	tests := []struct{ path, wantQuery string }{
		{path: "/delay?k=v", wantQuery: ""},
		{path: "/requery?k=v", wantQuery: "email=a b@c;z=1;"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			q.ds = nil
			req, _ := http.NewRequest("POST", base+tt.path, strings.NewReader(`{"n":1}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Trace", "7")
			req.Header.Set("Authorization", "Bearer sender-secret")
			before := time.Now()
			if a := do(t, nil, req); a.status != 202 {
				t.Fatalf("answer %d %s, want 202", a.status, a.body)
			}
			if len(q.ds) != 2 {
				t.Fatalf("queued %d deliveries, want one per target", len(q.ds))
			}
			for i, d := range q.ds {
				ct, _ := delivery.Lookup(d.Headers, []byte("Content-Type"))
				trace, _ := delivery.Lookup(d.Headers, []byte("X-Trace"))
				_, auth := delivery.Lookup(d.Headers, []byte("Authorization"))
				var query string
				for _, kv := range d.Query {
					query += string(kv.Key) + "=" + string(kv.Value) + ";"
				}
				if string(ct) != "application/json" || string(trace) != "7" || auth || query != tt.wantQuery || len(d.Method) != 0 || len(d.Path) != 0 {
					t.Errorf("delivery %d to %s: headers %q, query %q, method %q, path %q; want the forwarded headers, query %q, the target's method and path",
						i, d.Target, d.Headers, query, d.Method, d.Path, tt.wantQuery)
				}
				if nb := time.Unix(0, d.NotBefore); nb.Before(before.Add(time.Hour)) || nb.After(time.Now().Add(time.Hour)) {
					t.Errorf("delivery %d not before %v, want an hour after ingest", i, nb)
				}
			}
		})
	}
}
