package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

// waitFor polls cond for up to 10s; the bound is for a hung test, not a
// timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestGracefulShutdown(t *testing.T) {
	s := startSink(t, sink.Options{Delay: 300 * time.Millisecond})
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "slow", s.URL()+"/slow")},
		Routes:  []config.Route{syncRoute("r", "/r", "slow")},
	}
	released := make(chan struct{})
	deps := newDeps(t, cfg)
	deps.Release = func() { close(released) }
	g, base := startGateway(t, cfg, deps)

	const n = 5
	statuses := make(chan int, n)
	for range n {
		go func() {
			resp, err := http.Post(base+"/r", "application/json", strings.NewReader(`{}`))
			if err != nil {
				statuses <- -1
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	waitFor(t, "all requests to reach the slow target", func() bool { return s.Count() == n })
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range n {
		if st := <-statuses; st != 200 {
			t.Errorf("a request in flight at Shutdown got %d, want 200", st)
		}
	}
	select {
	case <-released:
	default:
		t.Error("Shutdown returned without releasing the deps")
	}
	if _, err := http.Post(base+"/r", "application/json", strings.NewReader(`{}`)); err == nil {
		t.Error("a request after Shutdown was accepted")
	}
}

func TestReload(t *testing.T) {
	s := startSink(t, sink.Options{})
	cfgA := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "t", s.URL()+"/t")},
		Routes:  []config.Route{syncRoute("a", "/a", "t")},
	}
	depsA := newDeps(t, cfgA)
	var releasedA atomic.Bool
	depsA.Release = func() { releasedA.Store(true) }
	g, base := startGateway(t, cfgA, depsA)

	if a := send(t, nil, "POST", base+"/a", "", "{}"); a.status != 200 {
		t.Fatalf("/a before reload: %d", a.status)
	}

	// A reload that cannot build keeps the running table.
	bad := &config.Config{Server: testServer(), Targets: cfgA.Targets, Routes: []config.Route{syncRoute("b", "/b", "missing")}}
	if err := g.Reload(bad, newDeps(t, cfgA)); err == nil || !strings.Contains(err.Error(), `target "missing"`) {
		t.Fatalf("bad reload error = %v", err)
	}
	if a := send(t, nil, "POST", base+"/a", "", "{}"); a.status != 200 {
		t.Fatalf("/a after a failed reload: %d, want the old table still serving", a.status)
	}

	cfgB := &config.Config{Server: testServer(), Targets: cfgA.Targets, Routes: []config.Route{syncRoute("b", "/b", "t")}}
	if err := g.Reload(cfgB, newDeps(t, cfgB)); err != nil {
		t.Fatal(err)
	}
	if a := send(t, nil, "POST", base+"/b", "", "{}"); a.status != 200 {
		t.Errorf("/b after reload: %d", a.status)
	}
	if a := send(t, nil, "POST", base+"/a", "", "{}"); a.status != 404 {
		t.Errorf("/a after reload: %d, want 404", a.status)
	}
	if g.Config() != cfgB {
		t.Error("Config() is not the reloaded config")
	}
	waitFor(t, "the old deps to be released", releasedA.Load)
}

func TestReloadInFlight(t *testing.T) {
	s := startSink(t, sink.Options{Delay: 2 * time.Second})
	cfgA := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "t", s.URL()+"/t")},
		Routes:  []config.Route{syncRoute("a", "/a", "t")},
	}
	depsA := newDeps(t, cfgA)
	var releasedA atomic.Bool
	depsA.Release = func() { releasedA.Store(true) }
	g, base := startGateway(t, cfgA, depsA)

	done := make(chan answer, 1)
	go func() { done <- send(t, nil, "POST", base+"/a", "", "{}") }()
	waitFor(t, "the request to reach the target", func() bool { return s.Count() == 1 })
	cfgB := &config.Config{Server: testServer(), Targets: cfgA.Targets, Routes: []config.Route{syncRoute("b", "/b", "t")}}
	if err := g.Reload(cfgB, newDeps(t, cfgB)); err != nil {
		t.Fatal(err)
	}
	if releasedA.Load() {
		t.Error("old deps released while a request still used them")
	}
	if a := <-done; a.status != 200 {
		t.Errorf("request in flight across the reload: %d, want 200", a.status)
	}
	waitFor(t, "the old deps to be released", releasedA.Load)
}

func TestOverload(t *testing.T) {
	s := startSink(t, sink.Options{Delay: 2 * time.Second})
	srv := testServer()
	srv.MaxConcurrency = 1
	cfg := &config.Config{
		Server:  srv,
		Targets: []config.Target{targetAt(t, "t", s.URL())},
		Routes:  []config.Route{syncRoute("r", "/r", "t")},
	}
	_, base := startGateway(t, cfg, newDeps(t, cfg))
	first := make(chan answer, 1)
	go func() { first <- send(t, nil, "POST", base+"/r", "", "{}") }()
	waitFor(t, "the first request to be in flight", func() bool { return s.Count() == 1 })

	a := send(t, &http.Client{Transport: &http.Transport{}}, "POST", base+"/r", "", "{}")
	if a.status != 503 || a.errCode != "overloaded" || a.header.Get("Retry-After") != "1" {
		t.Errorf("second request: %d %s Retry-After=%q, want 503 overloaded with Retry-After 1", a.status, a.body, a.header.Get("Retry-After"))
	}
	if a := <-first; a.status != 200 {
		t.Errorf("first request: %d", a.status)
	}
}

// memQueue is an in-memory Queue: it copies what it is given, as the
// durable queue does, or refuses with err.
type memQueue struct {
	mu  sync.Mutex
	ds  []delivery.Delivery
	err error
}

func (q *memQueue) Enqueue(ds []delivery.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	for i := range ds {
		var c delivery.Delivery
		ds[i].CopyTo(&c)
		q.ds = append(q.ds, c)
	}
	return nil
}

func TestAsync(t *testing.T) {
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "a", unusedURL), targetAt(t, "b", unusedURL)},
		Routes: []config.Route{{Name: "q", Method: "POST", Path: "/q", Mode: config.ModeAsync, Targets: []string{"a", "b"},
			Delay: time.Hour}},
	}
	q := &memQueue{}
	deps := newDeps(t, cfg)
	deps.Queue = q
	_, base := startGateway(t, cfg, deps)

	before := time.Now()
	a := send(t, nil, "POST", base+"/q", "application/json", `{"n":1}`)
	id := a.header.Get("Hookgate-Event-Id")
	if a.status != 202 || a.body != `{"event_id":"`+id+`"}` {
		t.Fatalf("answer %d %s, want 202 with the event id %s", a.status, a.body, id)
	}
	if len(q.ds) != 2 {
		t.Fatalf("queued %d deliveries, want 2", len(q.ds))
	}
	for i, d := range q.ds {
		if string(d.ID) != fmt.Sprintf("%s.%d", id, i) || string(d.EventID) != id || d.Route != "q" || string(d.Body) != `{"n":1}` {
			t.Errorf("delivery %d: id %s event %s route %s body %s", i, d.ID, d.EventID, d.Route, d.Body)
		}
		if nb := time.Unix(0, d.NotBefore); nb.Before(before.Add(time.Hour)) || nb.After(time.Now().Add(time.Hour)) {
			t.Errorf("delivery %d not before %v, want an hour after ingest", i, nb)
		}
	}
	if q.ds[0].Target != "a" || q.ds[1].Target != "b" {
		t.Errorf("targets %s, %s", q.ds[0].Target, q.ds[1].Target)
	}

	q.err = fmt.Errorf("queue: over budget: %w", ErrQueueFull)
	a = send(t, nil, "POST", base+"/q", "application/json", `{}`)
	if a.status != 503 || a.errCode != "queue_full" || a.header.Get("Retry-After") == "" {
		t.Errorf("full queue: %d %s Retry-After=%q", a.status, a.body, a.header.Get("Retry-After"))
	}
	q.err = errors.New("disk on fire")
	a = send(t, nil, "POST", base+"/q", "application/json", `{}`)
	if a.status != 503 || a.errCode != "queue_unavailable" || strings.Contains(a.body, "fire") {
		t.Errorf("broken queue: %d %s", a.status, a.body)
	}
}

// testChain is a Chain that does what its fields say, to drive every
// outcome through ingest without a WASM host.
type testChain struct {
	err   error
	drop  string
	emit  []string // targets to emit to, each with body "emitted:<target>"
	delay bool     // give each emitted delivery a not-before time, as set_delay does
	// wait, when set, is an event-wide delay (set_delay on handle 0), which
	// the default deliveries take.
	wait    *time.Duration
	respond string
}

func (c *testChain) Run(_ context.Context, ev *delivery.Event, out *delivery.Outcome) error {
	if c.err != nil {
		return c.err
	}
	if c.drop != "" {
		out.Dropped = true
		out.DropReason = append(out.DropReason, c.drop...)
		return nil
	}
	for _, name := range c.emit {
		d := out.Add()
		d.Target = name
		d.Body = append(d.Body, "emitted:"+name...)
		if c.delay {
			d.NotBefore = ev.ReceivedAt + int64(time.Hour)
		}
		out.Emitted = true
	}
	if c.wait != nil {
		out.NotBefore = ev.ReceivedAt + int64(*c.wait)
	}
	if c.respond != "" {
		out.Response.Set = true
		out.Response.Status = 200
		out.Response.Body = append(out.Response.Body, c.respond...)
		out.Response.Headers = delivery.Append(out.Response.Headers, []byte("Content-Type"), []byte("text/plain"))
	}
	ev.Body = append(ev.Body[:0], "changed"...)
	return nil
}

func durationOf(d time.Duration) *time.Duration { return &d }

type chainMap map[string]Chain

func (m chainMap) Build(r config.Route) (Chain, error) {
	c, ok := m[r.Name]
	if !ok {
		return nil, fmt.Errorf("no chain for %s", r.Name)
	}
	return c, nil
}

func TestChainOutcomes(t *testing.T) {
	s1 := startSink(t, sink.Options{Status: 201, Body: "one"})
	s2 := startSink(t, sink.Options{Status: 200, Body: "two"})
	q := &memQueue{}
	route := func(name string, mode string) config.Route {
		return config.Route{Name: name, Method: "POST", Path: "/" + name, Mode: mode, Targets: []string{"one"},
			Transforms: []config.Step{{Plugin: "p"}}}
	}
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "one", s1.URL()+"/one"), targetAt(t, "two", s2.URL()+"/two")},
		Routes: []config.Route{route("fail", config.ModeSync), route("drop", config.ModeSync), route("adrop", config.ModeAsync),
			route("emit", config.ModeSync), route("respond", config.ModeSync), route("modify", config.ModeSync), route("bad", config.ModeSync),
			route("delay", config.ModeSync), route("eventdelay", config.ModeSync), route("nodelay", config.ModeSync)},
	}
	deps := newDeps(t, cfg)
	deps.Queue = q
	deps.Chains = chainMap{
		"fail":    &testChain{err: errors.New(`plugin "filter": trap: unreachable`)},
		"drop":    &testChain{drop: "score above 6"},
		"adrop":   &testChain{drop: "not \"entry_submitted\""},
		"emit":    &testChain{emit: []string{"two", "one"}},
		"respond": &testChain{respond: "thanks"},
		"modify":  &testChain{},
		"bad":     &testChain{emit: []string{"nowhere"}},
		"delay":   &testChain{emit: []string{"one"}, delay: true},
		// set_delay(0, hour) and set_delay(0, 0) with nothing emitted: the
		// default deliveries take the event's delay, and a delay of 0 is
		// none.
		"eventdelay": &testChain{wait: durationOf(time.Hour)},
		"nodelay":    &testChain{wait: durationOf(0)},
	}
	_, base := startGateway(t, cfg, deps)

	tests := []struct {
		name, path string
		status     int
		body, code string
	}{
		{name: "plugin error", path: "/fail", status: 502, code: "plugin_failed",
			body: `{"error":{"code":"plugin_failed","message":"the transforms of route \"fail\" could not process this event, so it was not accepted: retry later; if it keeps failing, give the gateway's operator the event id"}}`},
		{name: "plugin delay on a sync route", path: "/delay", status: 502, code: "plugin_failed",
			body: `{"error":{"code":"plugin_failed","message":"a plugin on route \"delay\" asked to delay delivery, which a sync route cannot do: the sender waits for the answer; the operator must make the route async or remove the delay from the plugin"}}`},
		{name: "event-wide delay on a sync route", path: "/eventdelay", status: 502, code: "plugin_failed",
			body: `{"error":{"code":"plugin_failed","message":"a plugin on route \"eventdelay\" asked to delay delivery, which a sync route cannot do: the sender waits for the answer; the operator must make the route async or remove the delay from the plugin"}}`},
		{name: "a delay of 0 is no delay", path: "/nodelay", status: 201, body: "one"},
		{name: "sync drop", path: "/drop", status: 200, body: `{"dropped":"score above 6"}`},
		{name: "async drop", path: "/adrop", status: 202, body: `{"event_id":"ID","dropped":"not \"entry_submitted\""}`},
		{name: "emit answers with the first emitted target", path: "/emit", status: 200, body: "two"},
		{name: "plugin response wins", path: "/respond", status: 200, body: "thanks"},
		{name: "modified event to route targets", path: "/modify", status: 201, body: "one"},
		{name: "emit to unknown target", path: "/bad", status: 502, code: "unknown_target"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := send(t, nil, "POST", base+tc.path, "application/json", `{"x":1}`)
			want := strings.ReplaceAll(tc.body, "ID", a.header.Get("Hookgate-Event-Id"))
			// An error's body is checked whole too: the plugin's own error
			// text (a trap, here) must never reach the sender.
			if a.status != tc.status || a.errCode != tc.code || (tc.body != "" && a.body != want) {
				t.Errorf("got %d %s, want %d %s %s", a.status, a.body, tc.status, tc.code, want)
			}
		})
	}
	if len(q.ds) != 0 {
		t.Errorf("a dropped async event queued %d deliveries", len(q.ds))
	}
	// nodelay, respond and modify sent the changed event body to one; emit
	// sent "emitted:one" to one and "emitted:two" to two.
	r1, _ := s1.Wait(4, 5*time.Second)
	r2, _ := s2.Wait(1, 5*time.Second)
	var bodies1 []string
	for _, r := range r1 {
		bodies1 = append(bodies1, r.Body)
	}
	if len(r2) != 1 || r2[0].Body != "emitted:two" {
		t.Errorf("target two got %v", r2)
	}
	if got := strings.Join(bodies1, ","); got != "changed,emitted:one,changed,changed" {
		t.Errorf("target one got %s", got)
	}
}

func TestConnectionLimit(t *testing.T) {
	s := startSink(t, sink.Options{})
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "t", s.URL())},
		Routes:  []config.Route{syncRoute("r", "/r", "t")},
	}
	g, err := New(cfg, newDeps(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	g.maxConns = 2
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	defer g.Shutdown(context.Background())
	addr := ln.Addr().String()

	// Two keep-alive connections, each having served a request, stay open
	// (from two addresses: one address may hold half the connections).
	for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
		c, err := dialFrom(from, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("keep-alive request: %v %v", resp, err)
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 503") || !strings.Contains(string(b), `"code":"overloaded"`) || !strings.Contains(string(b), "Retry-After: 1") {
		t.Errorf("third connection got %q, want our JSON 503", b)
	}
}

// TestReloadUnderLoad reloads again and again while senders post without
// pause: not one request may fail.
func TestReloadUnderLoad(t *testing.T) {
	s := startSink(t, sink.Options{Discard: true})
	mk := func(routeName string) *config.Config {
		return &config.Config{
			Server:  testServer(),
			Targets: []config.Target{targetAt(t, "t", s.URL())},
			Routes:  []config.Route{syncRoute(routeName, "/r", "t")},
		}
	}
	cfg := mk("r0")
	g, base := startGateway(t, cfg, newDeps(t, cfg))

	stop := make(chan struct{})
	type tally struct{ ok, failed int }
	results := make(chan tally, 4)
	for range 4 {
		go func() {
			var n tally
			c := &http.Client{Transport: &http.Transport{}}
			for {
				select {
				case <-stop:
					results <- n
					return
				default:
				}
				resp, err := c.Post(base+"/r", "application/json", strings.NewReader(`{}`))
				if err != nil || resp.StatusCode != 200 {
					n.failed++
				} else {
					n.ok++
				}
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	for i := range 20 {
		next := mk(fmt.Sprintf("r%d", i+1))
		if err := g.Reload(next, newDeps(t, next)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	var total tally
	for range 4 {
		n := <-results
		total.ok += n.ok
		total.failed += n.failed
	}
	if total.failed != 0 || total.ok == 0 {
		t.Errorf("%d requests failed, %d succeeded across 20 reloads; want none failed", total.failed, total.ok)
	}
	if got := g.Config().Routes[0].Name; got != "r20" {
		t.Errorf("serving route %s after the reloads, want r20", got)
	}
}
