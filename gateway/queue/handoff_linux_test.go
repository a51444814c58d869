//go:build linux

package queue

import (
	"testing"

	"github.com/hookgate/hookgate/internal/handoff"
)

// TestRealDiskSyncsHandOff: a store on the real filesystem makes its log's
// fsyncs through internal/handoff (handoff_linux.go), so an Enqueue with
// sync "always" goes through it at least once.
func TestRealDiskSyncsHandOff(t *testing.T) {
	s, err := Open(Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := handoff.Calls.Load()
	if err := s.Enqueue(benchEvent()[:1]); err != nil {
		t.Fatal(err)
	}
	if handoff.Calls.Load() == before {
		t.Fatal("a synced Enqueue made no fsync through internal/handoff")
	}
}
