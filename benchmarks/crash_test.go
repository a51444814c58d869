package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestAsyncKill9LosesNothing is the harness's async scenario with a crash
// in the middle of the load: the real hookgate binary with the scenario's
// config ([queue] sync = "always"), 16 senders posting back to back, and
// kill -9 once at least 300 events were acknowledged. After a restart on
// the same queue, every event that was answered 202 reaches the target
// (some may arrive twice: at-least-once), whatever was in flight when the
// process died.
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

	// The target records every delivery id it receives.
	var mu sync.Mutex
	received := map[string]int{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		id := string(ctx.Request.Header.Peek("Idempotency-Key"))
		mu.Lock()
		received[id]++
		mu.Unlock()
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"ok":true}`)
	}}
	go target.Serve(ln)
	defer target.Shutdown()

	const senders = 16
	env := &Env{Dir: dir, Conns: senders, Payload: payload, QueueSync: "always", Hookgate: bin}
	listen, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "async.toml")
	err = os.WriteFile(conf, []byte(hookgateConfig(env, plan{mode: "async", targets: 1}, nil, listen, ln.Addr().String(), filepath.Join(dir, "queue"))), 0o644)
	if err != nil {
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
	deadline := time.Now().Add(60 * time.Second) // a failure timeout, not a measurement
	for nAcked.Load() < 300 {
		if time.Now().After(deadline) || hg.Exited() {
			close(stop)
			wg.Wait()
			hg.Stop(time.Second)
			t.Fatalf("only %d events acknowledged before the deadline: %s", nAcked.Load(), hg.lastLines())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := hg.Cmd.Process.Kill(); err != nil { // kill -9, with the load running
		t.Fatal(err)
	}
	<-hg.done
	close(stop)
	wg.Wait()

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
	t.Logf("%d events acknowledged before kill -9; all delivered after the restart", len(ids))
}
