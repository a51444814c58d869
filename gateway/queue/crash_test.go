package queue

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// TestHelperProcess is the child of TestCrashLosesNothing: it enqueues
// deliveries with sync "always" and prints each id once Enqueue returned,
// until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv("HOOKGATE_QUEUE_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process for TestCrashLosesNothing")
	}
	s, err := Open(Options{Path: dir, Sync: SyncAlways})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	// Four writers so group commit is exercised while the kill lands.
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				id := fmt.Sprintf("evt_%d_%d.0", w, i)
				if err := s.Enqueue([]delivery.Delivery{testDelivery(id, "crm", "r")}); err != nil {
					mu.Lock()
					fmt.Fprintln(out, "error:", err)
					out.Flush()
					mu.Unlock()
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(out, id)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(0) // never Close: the parent kills us first
}

// startHelper runs this test binary's test named run in a child process
// with env added to its environment, and returns it with its standard
// output; the child is killed when the test ends, if it still runs.
func startHelper(t *testing.T, run, env string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, stdout
}

// TestCrashLosesNothing kills a process that is enqueueing with SIGKILL and
// checks that every delivery it acknowledged is in the store afterwards.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd, stdout := startHelper(t, "TestHelperProcess", "HOOKGATE_QUEUE_CRASH_DIR="+dir)
	acked := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	deadline := time.Now().Add(10 * time.Second)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "evt_") {
			t.Fatalf("helper: %s", line)
		}
		acked[line] = true
		if len(acked) == 300 || time.Now().After(deadline) {
			cmd.Process.Kill() // SIGKILL: no Close, no deferred anything
			break
		}
	}
	// Lines already written before the kill are acknowledged too.
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "evt_") {
			acked[line] = true
		}
	}
	cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("helper acknowledged only %d deliveries before the deadline", len(acked))
	}

	s := openTest(t, dir, Options{})
	defer s.Close()
	got, err := s.Claim(nil, "crm", time.Now().Add(time.Second), 1<<30, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, l := range got {
		stored[string(l.Delivery.ID)] = true
	}
	lost := 0
	for id := range acked {
		if !stored[id] {
			lost++
		}
	}
	if lost != 0 {
		t.Fatalf("%d of %d acknowledged deliveries lost after SIGKILL", lost, len(acked))
	}
	t.Logf("acknowledged %d, stored %d (the rest were written but not yet acknowledged)", len(acked), len(stored))
}
