//go:build linux

package queue

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

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

// TestHandoffSyncErrorsNameTheFile: a failed fsync reads as os.File's
// does (a *fs.PathError with the file's name), and SyncData gives the
// errno as Pebble's own file does.
func TestHandoffSyncErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	f, err := diskFS().Create(filepath.Join(dir, "log"), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync of an open file: %v", err)
	}
	defer f.Close()
	// The same file with a descriptor no process can hold (far above any
	// open-file limit): its syncs fail with EBADF.
	bad := &handoffFile{File: f.(*handoffFile).File, fd: 1 << 30}
	var pe *fs.PathError
	if err := bad.Sync(); !errors.As(err, &pe) || pe.Op != "sync" || pe.Path != filepath.Join(dir, "log") || !errors.Is(err, syscall.EBADF) {
		t.Fatalf("sync of a closed descriptor: %#v, want a *fs.PathError sync %s: EBADF", err, filepath.Join(dir, "log"))
	}
	if err := bad.SyncData(); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("SyncData of a closed descriptor: %v, want EBADF", err)
	}
	d, err := diskFS().OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SyncData(); err != nil {
		t.Fatalf("directory SyncData (an fsync): %v", err)
	}
}
