package gateway

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

// TestRefHoldsDeps: a Ref keeps a replaced table's deps until it is
// released, they are released exactly once, and nothing can be acquired
// after Shutdown.
func TestRefHoldsDeps(t *testing.T) {
	s := startSink(t, sink.Options{})
	cfgA := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "t", s.URL()+"/t")},
		Routes:  []config.Route{syncRoute("a", "/a", "t")},
	}
	depsA := newDeps(t, cfgA)
	var releasedA atomic.Int32
	depsA.Release = func() { releasedA.Add(1) }
	g, base := startGateway(t, cfgA, depsA)

	ref, ok := g.Acquire()
	if !ok {
		t.Fatal("Acquire on a running gateway failed")
	}
	cfgB := &config.Config{Server: testServer(), Targets: cfgA.Targets, Routes: []config.Route{syncRoute("b", "/b", "t")}}
	depsB := newDeps(t, cfgB)
	var releasedB atomic.Int32
	depsB.Release = func() { releasedB.Add(1) }
	if err := g.Reload(cfgB, depsB); err != nil {
		t.Fatal(err)
	}
	if releasedA.Load() != 0 {
		t.Fatal("deps released while a Ref held them")
	}
	ref.Release()
	if n := releasedA.Load(); n != 1 {
		t.Fatalf("deps released %d times after the last Ref, want 1", n)
	}
	// Serving for sure: a Shutdown before Serve starts leaves Serve running.
	if a := send(t, nil, "POST", base+"/b", "", "{}"); a.status != 200 {
		t.Fatalf("/b: %d", a.status)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Acquire(); ok {
		t.Error("Acquire after Shutdown succeeded")
	}
	if err := g.Reload(cfgA, newDeps(t, cfgA)); err == nil {
		t.Error("Reload after Shutdown succeeded")
	}
	if releasedA.Load() != 1 || releasedB.Load() != 1 {
		t.Errorf("released A %d, B %d times; want once each", releasedA.Load(), releasedB.Load())
	}
}
