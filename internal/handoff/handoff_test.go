//go:build linux

package handoff

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

// TestSyncs: both calls sync a real file and count; a bad descriptor
// gives the errno, as syscall.Fsync would.
func TestSyncs(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("durable"); err != nil {
		t.Fatal(err)
	}
	before := Calls.Load()
	if err := Fdatasync(f.Fd()); err != nil {
		t.Fatalf("fdatasync: %v", err)
	}
	if err := Fsync(f.Fd()); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if got := Calls.Load() - before; got != 2 {
		t.Fatalf("Calls grew by %d, want 2", got)
	}
	f.Close()
	// A descriptor no process can hold (far above any open-file limit),
	// rather than f's, which another file may have taken by now.
	const bad = 1 << 30
	for name, sync := range map[string]func(uintptr) error{"fsync": Fsync, "fdatasync": Fdatasync} {
		if err := sync(bad); !errors.Is(err, syscall.EBADF) {
			t.Errorf("%s of a closed descriptor: %v, want EBADF", name, err)
		}
	}
}

// TestManySyncersOneP: with one P, many goroutines syncing at once while
// others run Go code all finish: each sync gives the P away and gets one
// back (a P lost on the way would hang the test).
func TestManySyncersOneP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16*50)
	for range 16 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := f.Write([]byte("x")); err != nil {
					errs <- err
					return
				}
				if err := Fdatasync(f.Fd()); err != nil {
					errs <- err
				}
			}
		}()
		go func() {
			defer wg.Done()
			s := 0
			for i := range 100000 {
				s += i
			}
			runtime.KeepAlive(s)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
