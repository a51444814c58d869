//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package main

import "testing"

// TestPluginPathAllocs counts allocations per request of ingest + the
// howxm-nps plugin + forward, all goroutines included.
func TestPluginPathAllocs(t *testing.T) {
	p := newPluginPath(t)
	for range 50 {
		p.serve(t)
	}
	if n := testing.AllocsPerRun(200, func() { p.serve(t) }); n > pluginCallAllocs {
		t.Errorf("%v allocations per request, want at most %d", n, pluginCallAllocs)
	}
}

// TestObservedPathAllocs: metrics and the journal add no allocation to a
// sync request (logging adds none either: nothing is logged per success).
func TestObservedPathAllocs(t *testing.T) {
	tests := []struct {
		name   string
		plugin bool
		max    float64
	}{
		{name: "passthrough", plugin: false, max: 0},
		{name: "plugin", plugin: true, max: pluginCallAllocs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newOpsPath(t, tt.plugin, observed{metrics: true, journal: true, logs: true, journalSize: 16})
			for range 50 {
				p.serve(t)
			}
			if n := testing.AllocsPerRun(200, func() { p.serve(t) }); n > tt.max {
				t.Errorf("%v allocations per request, want at most %v", n, tt.max)
			}
		})
	}
}
