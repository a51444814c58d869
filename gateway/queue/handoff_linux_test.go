//go:build linux

package queue

import (
	"errors"
	"io/fs"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hookgate/hookgate/internal/handoff"
)

// TestRealDiskSyncsHandOff: a store on the real filesystem makes its log's
// fsyncs through internal/handoff (handoff_linux.go) when several commits
// wait for them on one P, and the usual way for a lone sender.
func TestRealDiskSyncsHandOff(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s, err := Open(Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	before := handoff.Calls.Load()
	for i := range 20 {
		ev := benchEvent()[:1]
		ev[0].ID = []byte("evt_lone_" + strconv.Itoa(i) + ".0")
		if err := s.Enqueue(ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := handoff.Calls.Load() - before; n != 0 {
		t.Fatalf("a lone sender's fsyncs went through internal/handoff %d times; it has nobody to hand the core to", n)
	}

	before = handoff.Calls.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 16*20)
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				ev := benchEvent()[:1]
				ev[0].ID = []byte("evt_" + strconv.Itoa(g) + "_" + strconv.Itoa(i) + ".0")
				if err := s.Enqueue(ev); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if handoff.Calls.Load() == before {
		t.Fatal("16 concurrent senders on one P: no fsync went through internal/handoff")
	}
}

// TestBackgroundSyncsHandOff: on one P, a sync no commit waits for hands
// the P off too. With sync = "batch" those are the log's fsync after
// writes (batchSyncEvery) and a memtable rotation's (its log's close, the
// flushed table, the MANIFEST): a rotation's log sync held the only P for
// 10-15 ms in the async harness while ingest requests waited to run. With
// two Ps they stay Pebble's own calls.
func TestBackgroundSyncsHandOff(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s, err := Open(Options{Path: t.TempDir(), Sync: SyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Enqueue(benchEvent()); err != nil {
		t.Fatal(err)
	}

	syncLog := func() {
		s.life.RLock()
		defer s.life.RUnlock()
		if err := s.syncLog(); err != nil {
			t.Fatal(err)
		}
	}
	before := handoff.Calls.Load()
	syncLog()
	if handoff.Calls.Load() == before {
		t.Fatal("one P: the periodic log sync did not go through internal/handoff")
	}
	before = handoff.Calls.Load()
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if handoff.Calls.Load() == before {
		t.Fatal("one P: a memtable rotation's syncs did not go through internal/handoff")
	}

	runtime.GOMAXPROCS(2)
	if err := s.Enqueue(benchEvent()); err != nil {
		t.Fatal(err)
	}
	before = handoff.Calls.Load()
	syncLog()
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := handoff.Calls.Load() - before; n != 0 {
		t.Fatalf("two Ps: %d syncs went through internal/handoff; the other P runs meanwhile anyway", n)
	}
}

// TestHandoffSyncErrorsNameTheFile: a failed fsync reads as os.File's
// does (a *fs.PathError with the file's name), and SyncData gives the
// errno as Pebble's own file does.
func TestHandoffSyncErrorsNameTheFile(t *testing.T) {
	// One P and two commits waiting: the syncs hand off.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	waiting := new(atomic.Int32)
	waiting.Store(2)
	dir := t.TempDir()
	f, err := diskFS(waiting).Create(filepath.Join(dir, "log"), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync of an open file: %v", err)
	}
	defer f.Close()
	// The same file with a descriptor no process can hold (far above any
	// open-file limit): its syncs fail with EBADF.
	bad := &handoffFile{File: f.(*handoffFile).File, fd: 1 << 30, waiting: waiting}
	var pe *fs.PathError
	if err := bad.Sync(); !errors.As(err, &pe) || pe.Op != "sync" || pe.Path != filepath.Join(dir, "log") || !errors.Is(err, syscall.EBADF) {
		t.Fatalf("sync of a closed descriptor: %#v, want a *fs.PathError sync %s: EBADF", err, filepath.Join(dir, "log"))
	}
	if err := bad.SyncData(); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("SyncData of a closed descriptor: %v, want EBADF", err)
	}
	before := handoff.Calls.Load()
	d, err := diskFS(waiting).OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SyncData(); err != nil {
		t.Fatalf("directory SyncData (an fsync): %v", err)
	}
	if handoff.Calls.Load() == before {
		t.Fatal("the directory's sync did not go through internal/handoff")
	}
}
