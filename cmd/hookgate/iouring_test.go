package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/testport"
)

// With HOOKGATE_IO_URING=off the gateway says so once at start, with the
// reason, and forwards as it does with batching: each socket read and
// write is then its own system call (internal/rawsock, batch.go). The
// real binary, since the variable is read when the process starts.
func TestServeWithoutIOURing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the hookgate binary; skipped with -short")
	}
	bin := buildBinary(t)
	t.Setenv("HOOKGATE_IO_URING", "off") // the child inherits it
	s := startSink(t, sink.Options{})
	t.Setenv("HOOKGATE_TEST_KEY", "k-123") // writeConfig's target header
	dir := t.TempDir()
	listen, adminListen := testport.Addr(t), testport.Addr(t)
	cfg := writeConfig(t, dir, listen, adminListen, s.URL(), "")
	logPath := filepath.Join(dir, "serve.log")
	c := startBinary(t, bin, cfg, adminListen, logPath, 30*time.Second)
	defer c.kill()

	for i := 0; i < 20; i++ {
		resp, err := http.Post("http://"+listen+"/hooks/howxm", "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d; want 200\n%s", i, resp.StatusCode, tail(logPath, 2000))
		}
	}
	if got, err := s.Wait(20, 10*time.Second); err != nil || len(got) != 20 {
		t.Fatalf("the target got %d requests (%v); want 20", len(got), err)
	}
	log := readFile(logPath)
	if n := strings.Count(log, "network: reads and writes are not batched"); n != 1 || !strings.Contains(log, "HOOKGATE_IO_URING=off") {
		t.Fatalf("the start's log has the line %d times (want 1, with the reason HOOKGATE_IO_URING=off):\n%s", n, log)
	}
}
