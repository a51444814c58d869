package queue

import (
	"crypto/sha256"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// syncCountFS is Pebble's in-memory filesystem counting the syncs of the
// write-ahead log: a disk whose fsync is instant, where how many fsyncs
// the store asks for is decided by the store alone.
type syncCountFS struct {
	vfs.FS
	syncs atomic.Int64
}

func (f *syncCountFS) wrap(name string, file vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return file, err
	}
	return &syncCountFile{File: file, fs: f}, nil
}

func (f *syncCountFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.Create(name, c)
	return f.wrap(name, file, err)
}

func (f *syncCountFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.ReuseForWrite(oldname, newname, c)
	return f.wrap(newname, file, err)
}

type syncCountFile struct {
	vfs.File
	fs *syncCountFS
}

func (w *syncCountFile) Sync() error {
	w.fs.syncs.Add(1)
	return w.File.Sync()
}

func (w *syncCountFile) SyncData() error {
	w.fs.syncs.Add(1)
	return w.File.SyncData()
}

func (w *syncCountFile) SyncTo(length int64) (bool, error) {
	w.fs.syncs.Add(1)
	return w.File.SyncTo(length)
}

// openCounted opens a store with sync "always" on a fresh syncCountFS.
func openCounted(t *testing.T) (*Store, *syncCountFS) {
	t.Helper()
	fs := &syncCountFS{FS: vfs.NewMem()}
	dir := t.TempDir() // Open makes it on the real disk too; Pebble's files are in memory
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return openTest(t, dir, Options{Sync: SyncAlways, FS: fs}), fs
}

// ingestWork stands in for what ingest does with a request before its
// Enqueue (read, route, verify, build the deliveries): a fixed amount of
// CPU, so that on a busy core the senders reach their commits one after
// another rather than all at once.
func ingestWork(seed int) byte {
	sum := sha256.Sum256([]byte(strconv.Itoa(seed)))
	for range 64 {
		sum = sha256.Sum256(sum[:])
	}
	return sum[0]
}

// TestBusyCoreSharesFsyncs: many senders on one busy core (the gateway's
// usual share of a machine), a disk whose fsync is quick: each fsync of
// the log carries several events. Pebble's group commit alone shares an
// fsync only among the commits queued when it starts, and here the fsync
// ended before the next sender had done its work: one fsync per event
// (2434 to 2563 for 2560), each costing tens of microseconds of CPU on a
// real disk. Yielding first: about 75.
func TestBusyCoreSharesFsyncs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s, fs := openCounted(t)
	defer s.Close()
	const senders, each = 64, 40
	var wg sync.WaitGroup
	var sink atomic.Int64
	fs.syncs.Store(0)
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				sink.Add(int64(ingestWork(w*each + i)))
				ev := benchEvent()[:1]
				ev[0].ID = []byte("evt_" + strconv.Itoa(w) + "_" + strconv.Itoa(i) + ".0")
				if err := s.Enqueue(ev); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	events, syncs := int64(senders*each), fs.syncs.Load()
	t.Logf("%d events, %d fsyncs of the log", events, syncs)
	if syncs*8 > events {
		t.Fatalf("%d fsyncs for %d events from %d senders on one core: want at most one per 8 events", syncs, events, senders)
	}
	if got := s.Fill().Depth; got != senders*each {
		t.Fatalf("%d deliveries stored, want %d", got, senders*each)
	}
}

// TestLoneSenderGetsEveryFsync: a sender alone still gets an fsync per
// event, with no wait for others who are not coming.
func TestLoneSenderGetsEveryFsync(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s, fs := openCounted(t)
	defer s.Close()
	fs.syncs.Store(0)
	const events = 200
	for i := range events {
		ev := benchEvent()[:1]
		ev[0].ID = []byte("evt_" + strconv.Itoa(i) + ".0")
		if err := s.Enqueue(ev); err != nil {
			t.Fatal(err)
		}
	}
	if syncs := fs.syncs.Load(); syncs < events {
		t.Fatalf("%d fsyncs for %d events one after another: each must have had its own", syncs, events)
	}
}
