package natsq

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/natstest"
)

// syncBuffer is a log destination safe for the engine's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

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

	logs := &syncBuffer{}
	opened := make(chan error, 1)
	var e *Engine
	go func() {
		var err error
		e, err = Open(config.NATS{URLs: c.URLs()[:1], Stream: "waits", Replicas: 3},
			Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
		opened <- err
	}()
	const retrying = "not ready for hookgate's streams yet; trying again"
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(logs.String(), retrying); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-opened:
			t.Fatalf("Open returned (%v) with two of three nodes down, before trying again", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retry logged in 60 s; logs:\n%s", logs)
		}
	}
	// Why, as the cluster answers: no answer (no leader), or a leader that
	// has not yet seen the nodes go and cannot place the replicas.
	if l := logs.String(); !strings.Contains(l, "majority of nodes is up") && !strings.Contains(l, "no suitable peers for placement") {
		t.Errorf("the retry does not say why; logs:\n%s", l)
	}
	c.Node(1).Restart()
	c.Node(2).Restart()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("Open after the nodes came back: %v", err)
		}
		e.Close()
	case <-time.After(2 * time.Minute):
		t.Fatal("Open still waiting 2 minutes after the nodes came back")
	}
}
