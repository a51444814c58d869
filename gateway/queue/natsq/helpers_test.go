package natsq

import (
	"fmt"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
)

// engineWait bounds every wait in these tests: a failure timeout for a
// noisy 2-core machine, never an expectation of speed.
const engineWait = 30 * time.Second

func openEngine(t testing.TB, urls []string, opts Options) *Engine {
	t.Helper()
	return openStream(t, urls, "hookgate", 1, opts)
}

func openStream(t testing.TB, urls []string, stream string, replicas int, opts Options) *Engine {
	t.Helper()
	e, err := Open(config.NATS{URLs: urls, Stream: stream, Replicas: replicas}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func dlv(id, target, route, body string) delivery.Delivery {
	return delivery.Delivery{
		ID: []byte(id), EventID: []byte("evt_" + id), Route: route, Target: target,
		Method: []byte("POST"), Path: []byte("/hook"),
		Headers: []delivery.KV{{Key: []byte("Content-Type"), Value: []byte("application/json")}},
		Body:    []byte(body),
	}
}

// claimWait claims from target until it gets at least one delivery.
func claimWait(t testing.TB, e *Engine, target string, max int, leaseFor time.Duration) []queue.Leased {
	t.Helper()
	deadline := time.Now().Add(engineWait)
	for {
		got, err := e.Claim(nil, target, time.Now(), max, leaseFor)
		if err != nil {
			t.Fatalf("claim %q: %v", target, err)
		}
		if len(got) > 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing to claim for %q after %s", target, engineWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// claimNone asserts there is nothing ready for target right now.
func claimNone(t testing.TB, e *Engine, target string) {
	t.Helper()
	got, err := e.Claim(nil, target, time.Now(), 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 0 {
		t.Fatalf("claimed %d deliveries of %q (first %s), want none", len(got), target, got[0].Delivery.ID)
	}
}

func ids(ls []queue.Leased) string {
	s := ""
	for i := range ls {
		s += fmt.Sprintf("%s ", ls[i].Delivery.ID)
	}
	return s
}
