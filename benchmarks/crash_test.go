package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/internal/natstest"
)

// TestAsyncKill9LosesNothing is the harness's async scenarios with a crash
// in the middle of the load, on both queue backends: the real hookgate
// binary with the scenario's config (async: the embedded Pebble queue with
// [queue] sync = "always"; async-nats: a JetStream stream on a real
// nats-server, run in the test process, that keeps running while the
// gateway dies), 16 senders posting back to back, and kill -9 once at
// least 300 events were acknowledged. The target lets the first 100
// deliveries through and then holds every delivery until after the kill,
// so the kill always leaves acknowledged events undelivered, some of them
// in flight: the test fails if it does not. After a restart on the same
// queue, every event that was answered 202 reaches the target, whatever
// was in flight when the process died. Some may arrive twice (at least
// once): they are counted and logged.
func TestAsyncKill9LosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hookgate and runs it under load")
	}
	dir := t.TempDir()
	bin, why := buildHookgate(dir, CoreSplit{})
	if bin == "" {
		t.Fatalf("hookgate did not build: %s", why)
	}
	payload, err := os.ReadFile(filepath.Join("..", "testdata", "howxm_entry_submitted.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, sc string
		pipeline int
	}{
		{scAsync, scAsync, 0},
		{scAsyncNATS, scAsyncNATS, 0},
		// Pipelined deliveries, as the benchmarks' --pipeline 8 runs them:
		// a killed gateway leaves several unanswered on each connection.
		{scAsync + "-pipelined", scAsync, 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := *scenarioPlan(t, c.sc)
			natsURL := ""
			if p.backend == "nats" {
				natsURL = natstest.Start(t).URL()
			}
			asyncKill9(t, bin, t.TempDir(), payload, p, natsURL, c.pipeline)
		})
	}
}

// passFirst is how many deliveries the target of asyncKill9 answers
// before it holds them until the kill: some events are delivered before
// the crash, some are in flight at it, the rest still queued.
const passFirst = 100

// asyncKill9 is one backend's run of TestAsyncKill9LosesNothing.
func asyncKill9(t *testing.T, bin, dir string, payload []byte, p plan, natsURL string, pipeline int) {

	// The target records the delivery id of every delivery it answers
	// 200. A delivery of the killed gateway that it answers after the kill
	// (one it held, or one read off a dead connection) gets a 503 and is
	// not recorded: that gateway never learned of it, so the restart must
	// send it again.
	var (
		mu       sync.Mutex
		received = map[string]int{}
		passed   atomic.Int64
		held     atomic.Int64
		killed   = make(chan struct{}) // closed once the first gateway is dead
		killedAt time.Time             // written before killed is closed
	)
	release := sync.OnceFunc(func() {
		killedAt = time.Now()
		close(killed)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		select {
		case <-killed:
			if ctx.ConnTime().Before(killedAt) {
				ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
				return
			}
		default:
			if passed.Add(1) > passFirst {
				held.Add(1)
				<-killed
				ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
				return
			}
		}
		id := string(ctx.Request.Header.Peek("Idempotency-Key"))
		mu.Lock()
		received[id]++
		mu.Unlock()
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"ok":true}`)
	}}
	go target.Serve(ln)
	defer target.Shutdown()
	defer release() // before Shutdown, which waits for the held handlers

	const senders = 16
	env := &Env{Dir: dir, Conns: senders, Payload: payload, QueueSync: "always", Pipeline: pipeline, Hookgate: bin}
	listen, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	text := hookgateConfig(env, p, nil, listen, "", ln.Addr().String(), filepath.Join(dir, "queue"), natsURL)
	if pipeline > 0 && !strings.Contains(text, fmt.Sprintf("pipeline = %d\n", pipeline)) {
		t.Fatalf("no pipeline = %d in the harness's config:\n%s", pipeline, text)
	}
	if p.backend == "nats" {
		// The deliveries the killed gateway held come back when their
		// lease runs out: the default 30s would be most of the test.
		const key = "replicas = 1\n"
		if !strings.Contains(text, key) {
			t.Fatalf("no %q in the harness's NATS config:\n%s", key, text)
		}
		text = strings.Replace(text, key, key+"lease = \"3s\"\n", 1)
	}
	conf := filepath.Join(dir, "async.toml")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func(name string) *Child {
		t.Helper()
		c, err := startChild(CoreSplit{}, dir, name, nil, bin, "serve", "--config", conf)
		if err != nil {
			t.Fatal(err)
		}
		if err := waitReady(c, listen, 30*time.Second); err != nil {
			c.Stop(time.Second)
			t.Fatal(err)
		}
		return c
	}

	hg := start("hookgate-1")
	var (
		ackedMu sync.Mutex
		acked   []string // delivery ids promised by a 202
		nAcked  atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &fasthttp.HostClient{Addr: listen, MaxConns: 1}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for {
				select {
				case <-stop:
					return
				default:
				}
				req.Reset()
				req.SetRequestURI("http://" + listen + "/hooks/bench")
				req.Header.SetMethod(fasthttp.MethodPost)
				req.Header.SetContentType("application/json")
				req.SetBody(payload)
				if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
					// The process is gone (or going): nothing was promised.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if resp.StatusCode() != fasthttp.StatusAccepted {
					continue
				}
				ev := string(resp.Header.Peek("Hookgate-Event-Id"))
				ackedMu.Lock()
				acked = append(acked, ev+".0")
				ackedMu.Unlock()
				nAcked.Add(1)
			}
		}()
	}
	// Kill once enough is acknowledged and the target holds a delivery.
	deadline := time.Now().Add(60 * time.Second) // a failure timeout, not a measurement
	for nAcked.Load() < 300 || held.Load() == 0 {
		if time.Now().After(deadline) || hg.Exited() {
			close(stop)
			wg.Wait()
			hg.Stop(time.Second)
			t.Fatalf("%d events acknowledged, %d deliveries answered and %d held before the deadline; want 300 acknowledged and one held: %s",
				nAcked.Load(), passed.Load()-held.Load(), held.Load(), hg.lastLines())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// What the target has at the kill.
	ackedMu.Lock()
	ackedAtKill := append([]string(nil), acked...)
	ackedMu.Unlock()
	mu.Lock()
	deliveredAtKill, pending := len(received), 0
	for _, id := range ackedAtKill {
		if received[id] == 0 {
			pending++
		}
	}
	mu.Unlock()
	heldAtKill := held.Load()
	if err := hg.Cmd.Process.Kill(); err != nil { // kill -9, with the load running
		t.Fatal(err)
	}
	<-hg.done
	close(stop)
	wg.Wait()
	if ws, ok := hg.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("hookgate-1 ended with %v; want killed by SIGKILL: %s", hg.Cmd.ProcessState, hg.lastLines())
	}
	if pending == 0 {
		t.Fatalf("at the kill the target had every one of the %d acknowledged events (%d deliveries, %d held): the restart has nothing to recover",
			len(ackedAtKill), deliveredAtKill, heldAtKill)
	}
	release()

	hg2 := start("hookgate-2")
	defer hg2.Stop(5 * time.Second)
	ackedMu.Lock()
	ids := append([]string(nil), acked...)
	ackedMu.Unlock()
	for _, id := range ids {
		if !strings.HasPrefix(id, "evt_") {
			t.Fatalf("a 202 without an event id: %q", id)
		}
	}
	// A failure timeout, not a measurement: on NATS a delivery the killed
	// gateway had taken comes back once its lease runs out.
	deadline = time.Now().Add(90 * time.Second)
	var missing []string
	for {
		missing = missing[:0]
		mu.Lock()
		for _, id := range ids {
			if received[id] == 0 {
				missing = append(missing, id)
			}
		}
		mu.Unlock()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) || hg2.Exited() {
			t.Fatalf("%d of %d acknowledged events never delivered after kill -9 and restart (first %s): %s", len(missing), len(ids), missing[0], hg2.lastLines())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Duplicates: deliveries the first process sent (or had in flight)
	// but had not recorded as done when it died.
	mu.Lock()
	duplicates, extra := 0, 0
	promised := make(map[string]bool, len(ids))
	for _, id := range ids {
		promised[id] = true
	}
	for id, n := range received {
		duplicates += n - 1
		if !promised[id] {
			extra++ // stored, but the 202 died with the first process
		}
	}
	mu.Unlock()
	t.Logf("at kill -9: %d events acknowledged, %d delivered, %d held in flight, %d acknowledged but not delivered", len(ackedAtKill), deliveredAtKill, heldAtKill, pending)
	t.Logf("%d events acknowledged in all; all delivered after the restart; %d duplicates, %d delivered but never acknowledged",
		len(ids), duplicates, extra)
}
