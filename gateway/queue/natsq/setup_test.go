package natsq

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/natstest"
)

// A gateway opened while its cluster cannot serve it (no majority: the
// nodes start after the gateway, or a moment of "no suitable peers for
// placement" after an election, which CI met) waits, tries again, and
// opens once the cluster is back. Before, Open failed at the first
// refusal, or after one long timeout.
func TestOpenWaitsForTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster: not in -short")
	}
	c := natstest.Cluster(t, 3)
	c.Node(1).Shutdown()
	c.Node(2).Shutdown() // one node of three: no meta leader

	logPath := filepath.Join(t.TempDir(), "open.log")
	logf, err := os.Create(logPath) // a file takes the engine's concurrent writes
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	logs := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	type result struct {
		e   *Engine
		err error
	}
	opened := make(chan result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// A wait longer than this test's own bounds: a slow machine
		// restarting nodes must not make Open give up first.
		e, err := OpenContext(ctx, config.NATS{URLs: c.URLs()[:1], Stream: "waits", Replicas: 3},
			Options{Logger: slog.New(slog.NewTextHandler(logf, nil)), SetupWait: 5 * time.Minute})
		opened <- result{e, err}
	}()
	t.Cleanup(func() { // also when the test failed before Open returned
		cancel()
		if r := <-opened; r.e != nil {
			r.e.Close()
		}
	})
	const retrying = "not ready for hookgate's streams yet; trying again"
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(logs(), retrying); time.Sleep(20 * time.Millisecond) {
		select {
		case r := <-opened:
			opened <- r
			t.Fatalf("Open returned (%v) with two of three nodes down, before trying again", r.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retry logged in 60 s; logs:\n%s", logs())
		}
	}
	// Why, as the cluster answers: no answer (no leader), or a leader that
	// has not yet seen the nodes go and cannot place the replicas.
	if l := logs(); !strings.Contains(l, "majority of nodes is up") && !strings.Contains(l, "no suitable peers for placement, peer offline") {
		t.Errorf("the retry does not say why; logs:\n%s", l)
	}
	c.Node(1).Restart()
	c.Node(2).Restart()
	select {
	case r := <-opened:
		opened <- r // for the cleanup, which closes it
		if r.err != nil {
			t.Fatalf("Open after the nodes came back: %v", r.err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Open still waiting 2 minutes after the nodes came back")
	}
}
