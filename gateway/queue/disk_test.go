package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue/fillfs"
)

// bigDelivery is a delivery with a 16 KiB body, so a few of them move a
// small disk.
func bigDelivery(id string) delivery.Delivery {
	d := testDelivery(id, "crm", "r")
	d.Body = []byte(strings.Repeat("x", 16<<10))
	return d
}

// within runs f and fails the test if it has not returned by the deadline
// (a failure timeout, not a measurement: f should return at once).
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("panicked: %v", v)
			}
		}()
		done <- f()
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return within 10s: hung", what)
		return nil
	}
}

// waitUntil polls cond until it holds, failing after a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLowDiskSpaceRefusesAndRecovers: on a disk that fills up, Enqueue
// refuses with ErrNoSpace before the disk is below MinFree (never a Pebble
// panic, never a hang), Health says why, the deliveries already stored
// can still be acked, and once space is freed Enqueue takes deliveries
// again by itself.
func TestLowDiskSpaceRefusesAndRecovers(t *testing.T) {
	fs := fillfs.New(16 << 20) // MinFree defaults to a quarter: 4 MiB
	s := openTest(t, t.TempDir(), Options{FS: fs})
	defer s.Close()
	const minFree = 4 << 20
	for i := range 8 {
		if err := s.Enqueue([]delivery.Delivery{bigDelivery(fmt.Sprintf("evt_p%d.0", i))}); err != nil {
			t.Fatal(err)
		}
	}
	// Another program leaves 256 KiB above MinFree.
	fs.Fill(fs.Avail() - (minFree + 256<<10))
	s.measure()
	accepted, refused := 0, error(nil)
	for i := 0; i < 1000 && refused == nil; i++ {
		refused = within(t, "Enqueue", func() error {
			return s.Enqueue([]delivery.Delivery{bigDelivery(fmt.Sprintf("evt_f%d.0", i))})
		})
		if refused == nil {
			accepted++
		}
	}
	if !errors.Is(refused, ErrNoSpace) {
		t.Fatalf("after %d deliveries Enqueue said %v, want ErrNoSpace", accepted, refused)
	}
	if accepted == 0 || fs.Avail() < minFree {
		t.Fatalf("accepted %d deliveries and left %d bytes free: want some accepted and at least MinFree (%d) left", accepted, fs.Avail(), minFree)
	}
	// The estimate refuses, but does not make the store low: only a
	// measurement below MinFree does, so a disk that stays above it is
	// never stuck refusing once the estimate is reset.
	if h := s.Health(); h != nil {
		t.Fatalf("Health = %v after the estimate ran out above MinFree, want nil", h)
	}
	// Another program takes the disk below MinFree: the store is low.
	fs.Fill(fs.Avail() - (minFree - 64<<10))
	s.measure()
	h := s.Health()
	if !errors.Is(h, ErrNoSpace) || strings.Contains(h.Error(), s.opts.Path) {
		t.Fatalf("Health = %v, want ErrNoSpace without the path", h)
	}
	// Back just above the line: a measurement does not end the low state
	// there (it takes a quarter more than MinFree), so it does not flap.
	fs.Fill(-(128 << 10))
	s.measure()
	if err := s.Enqueue([]delivery.Delivery{bigDelivery("evt_again.0")}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Enqueue right after a measurement at the line: %v, want ErrNoSpace", err)
	}

	// What is stored keeps going out: every delivery can be claimed and acked.
	ls, err := s.Claim(nil, "crm", time.Now(), 1<<20, time.Minute)
	if err != nil || len(ls) != 8+accepted {
		t.Fatalf("claimed %d (%v), want %d", len(ls), err, 8+accepted)
	}
	for i, l := range ls {
		if i == 0 {
			err = s.Retry(l.Ref, time.Now(), delivery.Attempt{At: time.Now(), Error: "status 503"})
		} else {
			err = s.Ack(l.Ref)
		}
		if err != nil {
			t.Fatalf("ack while low on space: %v", err)
		}
	}

	// Space is freed: the store notices on its own (its watcher measures
	// every second) and takes deliveries again.
	fs.Fill(-8 << 20)
	waitUntil(t, "Health nil after space was freed", func() bool { return s.Health() == nil })
	if err := s.Enqueue([]delivery.Delivery{bigDelivery("evt_back.0")}); err != nil {
		t.Fatalf("Enqueue after space was freed: %v", err)
	}
}

// TestLogWriteErrorFailsStore: a write error in the middle of a commit
// (the log's write fails) fails the store: every Enqueue in flight returns
// an error wrapping ErrFailed (not a panic, not a hang, never nil), OnFatal
// hears of it once, every later write is refused at once, Close returns,
// and a reopened store has every delivery acknowledged before the fault.
func TestLogWriteErrorFailsStore(t *testing.T) {
	dir := t.TempDir()
	fs := fillfs.New(1 << 30)
	var fatal atomic.Int32
	var fatalErr atomic.Value
	s := openTest(t, dir, Options{FS: fs, OnFatal: func(err error) {
		fatal.Add(1)
		fatalErr.Store(err)
	}})
	var acked []string
	for i := range 5 {
		id := fmt.Sprintf("evt_ok%d.0", i)
		if err := s.Enqueue([]delivery.Delivery{testDelivery(id, "crm", "r")}); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	fs.FailLog(syscall.EIO)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = within(t, "Enqueue during the fault", func() error {
				return s.Enqueue([]delivery.Delivery{testDelivery(fmt.Sprintf("evt_w%d.0", w), "crm", "r")})
			})
		}()
	}
	wg.Wait()
	for w, err := range errs {
		if !errors.Is(err, ErrFailed) {
			t.Errorf("writer %d: %v, want an error wrapping ErrFailed", w, err)
		}
	}
	if n := fatal.Load(); n != 1 {
		t.Fatalf("OnFatal called %d times, want 1", n)
	}
	if err, _ := fatalErr.Load().(error); err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("OnFatal got %v, want the I/O error", err)
	}
	// Everything after is refused at once: more than a log block of
	// writes, which used to end in a panic with Pebble's commit lock held
	// and then in every commit waiting forever.
	for i := range 100 {
		err := within(t, "Enqueue after the failure", func() error {
			return s.Enqueue([]delivery.Delivery{bigDelivery(fmt.Sprintf("evt_after%d.0", i))})
		})
		if !errors.Is(err, ErrFailed) {
			t.Fatalf("Enqueue %d after the failure: %v, want ErrFailed", i, err)
		}
	}
	ls, _ := s.Claim(nil, "crm", time.Now(), 1, time.Minute)
	if len(ls) == 1 {
		if err := within(t, "Ack after the failure", func() error { return s.Ack(ls[0].Ref) }); !errors.Is(err, ErrFailed) {
			t.Fatalf("Ack after the failure: %v, want ErrFailed", err)
		}
	}
	if !errors.Is(s.Health(), ErrFailed) {
		t.Fatalf("Health = %v, want ErrFailed", s.Health())
	}
	if err := within(t, "Close", s.Close); !errors.Is(err, ErrFailed) {
		t.Fatalf("Close: %v, want ErrFailed", err)
	}

	// A restart on a working disk finds every acknowledged delivery. The
	// failed store keeps its directory locked until the process exits, so
	// the restart opens a copy of the directory as it is on disk now.
	s = openTest(t, copyDir(t, dir), Options{FS: vfs.Default})
	defer s.Close()
	got, _ := s.Claim(nil, "crm", time.Now().Add(time.Second), 1<<20, time.Minute)
	stored := map[string]bool{}
	for _, l := range got {
		stored[string(l.Delivery.ID)] = true
	}
	for _, id := range acked {
		if !stored[id] {
			t.Errorf("acknowledged delivery %s lost", id)
		}
	}
}

// TestDiskFilledBehindTheGuard: another program fills the disk to the last
// byte between two measurements; the next Enqueue's log write gets ENOSPC.
// The store fails (an error, OnFatal) instead of panicking or hanging.
func TestDiskFilledBehindTheGuard(t *testing.T) {
	fs := fillfs.New(64 << 20)
	var fatal atomic.Int32
	s := openTest(t, t.TempDir(), Options{FS: fs, OnFatal: func(error) { fatal.Add(1) }})
	defer s.Close()
	if err := s.Enqueue([]delivery.Delivery{testDelivery("evt_1.0", "crm", "r")}); err != nil {
		t.Fatal(err)
	}
	fs.Fill(fs.Avail())
	err := within(t, "Enqueue on a full disk", func() error {
		return s.Enqueue([]delivery.Delivery{bigDelivery("evt_2.0")})
	})
	if !errors.Is(err, ErrFailed) || fatal.Load() != 1 {
		t.Fatalf("Enqueue on a full disk: %v (OnFatal %d times), want ErrFailed and one OnFatal", err, fatal.Load())
	}
}

// TestLogWriteErrorBatchMode: with sync "batch" no Enqueue waits for the
// log, so the store's watcher finds a log that can no longer be written
// when it syncs (batchSyncEvery after a write) and fails the store; from
// then on Enqueue is refused, also past the log block rotation that used
// to panic with Pebble's commit lock held.
func TestLogWriteErrorBatchMode(t *testing.T) {
	fs := fillfs.New(1 << 30)
	var fatal atomic.Int32
	s := openTest(t, t.TempDir(), Options{FS: fs, Sync: SyncBatch, OnFatal: func(error) { fatal.Add(1) }})
	defer s.Close()
	n := fs.LogSyncs()
	if err := s.Enqueue([]delivery.Delivery{testDelivery("evt_1.0", "crm", "r")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the first Enqueue fsynced", func() bool { return fs.LogSyncs() > n })
	fs.FailLog(syscall.EIO)
	// Nothing waits for this one's log write, which fails; the fsync
	// after it finds that.
	if err := s.Enqueue([]delivery.Delivery{testDelivery("evt_2.0", "crm", "r")}); err != nil && !errors.Is(err, ErrFailed) {
		t.Fatalf("Enqueue as the log fails: %v, want nil or ErrFailed", err)
	}
	waitUntil(t, "OnFatal after a failed log write in batch mode", func() bool { return fatal.Load() == 1 })
	for i := range 100 { // 1.6 MiB: many log blocks
		err := within(t, "Enqueue after the failure", func() error {
			return s.Enqueue([]delivery.Delivery{bigDelivery(fmt.Sprintf("evt_b%d.0", i))})
		})
		if !errors.Is(err, ErrFailed) {
			t.Fatalf("Enqueue %d: %v, want ErrFailed", i, err)
		}
	}
}

// copyDir copies the files of dir (a store's directory) to a new one.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return to
}
