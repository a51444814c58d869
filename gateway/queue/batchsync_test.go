package queue

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/queue/fillfs"
)

// TestBatchSyncsTheLogAfterAWrite: with sync "batch" the store fsyncs its
// log after a write (batchSyncEvery later) with nothing else to push it,
// no later write and no Close: an Enqueue, its ack and the next Enqueue
// each get an fsync of their own. A store nobody writes to makes no fsync
// at all (it made one a second before).
func TestBatchSyncsTheLogAfterAWrite(t *testing.T) {
	fs := fillfs.New(1 << 40)
	s := openTest(t, t.TempDir(), Options{Sync: SyncBatch, FS: fs})
	defer s.Close()

	idle := func(when string) {
		t.Helper()
		n := fs.LogSyncs()
		time.Sleep(1500 * time.Millisecond) // longer than spaceEvery's tick
		if m := fs.LogSyncs(); m != n {
			t.Fatalf("%s: the log was fsynced %d times while nothing was written", when, m-n)
		}
	}
	synced := func(what string, write func() error) {
		t.Helper()
		n := fs.LogSyncs()
		if err := write(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, what+" fsynced", func() bool { return fs.LogSyncs() > n })
	}

	idle("after Open")
	synced("an Enqueue", func() error { return s.Enqueue(benchEvent()) })
	ls, err := s.Claim(nil, "crm", time.Now(), 1, time.Minute)
	if err != nil || len(ls) != 1 {
		t.Fatalf("claim: %v, %d deliveries", err, len(ls))
	}
	synced("an ack", func() error { return s.Ack(ls[0].Ref) })
	synced("the next Enqueue", func() error { return s.Enqueue(benchEvent()) })
	idle("after the writes")
}
