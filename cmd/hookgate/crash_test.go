package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/natstest"
	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/testport"
)

// TestCrashKill9 is the promise "an acknowledged event is never lost"
// checked on the real binary: K events go to an async route from several
// concurrent senders; the gateway is killed with SIGKILL half-way, while
// they are still sending; it is started again on the same config and queue
// directory, and the senders go on (as webhook senders do, they retry what
// failed). Every event that got a 202, from either process, must reach the
// sink. Duplicates are allowed (delivery is at-least-once: deliveries in
// flight at the kill are sent again) and are counted and logged. Finally
// SIGTERM must stop the second process cleanly (exit 0).
//
// It runs on both queue backends: "pebble", the embedded store in the
// queue directory, and "nats", a JetStream stream on a real nats-server
// run in the test process; only the gateway is killed, NATS keeps running,
// and the second process takes over the first one's stream and consumer.
//
// Only sync = "always" is tested on pebble: with "batch" a 202 does not
// wait for the fsync, so a kill -9 may lose the last milliseconds of
// acknowledged events by design (see config.toml and gateway/queue).
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the hookgate binary; skipped with -short")
	}
	bin := buildBinary(t)
	for _, backend := range []string{"pebble", "nats"} {
		t.Run(backend, func(t *testing.T) {
			queue := "[queue]\npath = \"queue\"\nsync = \"always\"\n"
			if backend == "nats" {
				queue += "backend = \"nats\"\n\n[queue.nats]\nurls = [\"" + natstest.Start(t).URL() + "\"]\nstream = \"hookgate\"\n"
			}
			crashKill9(t, bin, t.TempDir(), queue)
		})
	}
}

// crashKill9 is one backend's run of TestCrashKill9: queue is the config's
// [queue] table (with [queue.nats] on nats).
func crashKill9(t *testing.T, bin, dir, queue string) {
	const (
		events  = 2000
		senders = 8
		// Bounds every phase; the whole test takes a few seconds. On NATS
		// a delivery the killed gateway had taken comes back when its lease
		// runs out, so the phases get room for that.
		waitFor = 90 * time.Second
	)

	// A slow target with few connections: the queue holds a backlog when
	// the gateway dies, and some deliveries are in flight, so the restart
	// has real work to redo.
	s, err := sink.Start("127.0.0.1:0", sink.Options{Delay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	listen, adminListen := testport.Addr(t), testport.Addr(t)
	cfg := filepath.Join(dir, "config.toml")
	err = os.WriteFile(cfg, []byte(`
[server]
listen = "`+listen+`"
shutdown_timeout = "10s"

[admin]
listen = "`+adminListen+`"

`+queue+`
[[target]]
name = "crm"
url = "`+s.URL()+`/crm"
id_header = "Idempotency-Key"
max_conns = 4
retry = { initial = "10ms", max = "100ms" }

[[route]]
name = "crash"
path = "/hooks/crash"
targets = ["crm"]
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	first := startBinary(t, bin, cfg, adminListen, filepath.Join(dir, "first.log"), waitFor)

	var (
		mu      sync.Mutex
		acked   = map[string]int{} // event id -> the event's index
		next    atomic.Int64       // next event index to send
		nAcked  atomic.Int64
		failed  atomic.Int64 // sends that got no 202 (the kill)
		killed  = make(chan struct{})
		resumed = make(chan struct{}) // closed once the second process is ready
		wg      sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	defer client.CloseIdleConnections()
	send := func(i int) (string, error) {
		body := fmt.Sprintf(`{"i":%d,"pad":%q}`, i, strings.Repeat("x", 100+i%64))
		resp, err := client.Post("http://"+listen+"/hooks/crash", "application/json", strings.NewReader(body))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusAccepted {
			return "", fmt.Errorf("answered %d %s", resp.StatusCode, b)
		}
		var out struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(b, &out); err != nil || out.EventID == "" {
			return "", fmt.Errorf("answered 202 with %q", b)
		}
		return out.EventID, nil
	}
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < events; i = int(next.Add(1) - 1) {
				for try := 0; ; try++ {
					id, err := send(i)
					if err == nil {
						mu.Lock()
						acked[id] = i
						mu.Unlock()
						nAcked.Add(1)
						break
					}
					failed.Add(1)
					if try == 5 {
						t.Errorf("event %d: no 202 after %d tries: %v", i, try+1, err)
						return
					}
					// Before the kill nothing may fail; after it, wait for
					// the second process and send the same payload again.
					select {
					case <-killed:
					default:
						t.Errorf("event %d failed before the kill: %v", i, err)
						return
					}
					select {
					case <-resumed:
					case <-time.After(waitFor):
						t.Errorf("event %d: the gateway never came back", i)
						return
					}
				}
			}
		}()
	}

	// Kill -9 half-way, while the senders are still sending.
	for deadline := time.Now().Add(waitFor); nAcked.Load() < events/2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			first.kill()
			t.Fatalf("only %d of %d events acknowledged in %v\n%s", nAcked.Load(), events, waitFor, tail(first.log, 2000))
		}
	}
	close(killed) // first, so no sender takes the kill's errors for a failure before it
	first.kill()
	atKill := nAcked.Load()
	sinkAtKill := s.Count()
	start2 := time.Now()
	if err := first.wait(waitFor); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the first process did not die by SIGKILL: %v", err)
	}

	second := startBinary(t, bin, cfg, adminListen, filepath.Join(dir, "second.log"), waitFor)
	defer second.kill()
	close(resumed)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Wait until every acknowledged event has reached the sink.
	mu.Lock()
	ackedIDs := make(map[string]int, len(acked))
	for id, i := range acked {
		ackedIDs[id] = i
	}
	mu.Unlock()
	var delivered map[string]int
	var reqs []sink.Request
	missing := len(ackedIDs)
	for deadline := time.Now().Add(waitFor); ; time.Sleep(100 * time.Millisecond) {
		reqs = s.Requests()
		delivered = map[string]int{}
		for _, r := range reqs {
			key := r.Header("Idempotency-Key")
			ev, _, ok := strings.Cut(key, ".")
			if !ok {
				t.Fatalf("a delivery without a delivery id: Idempotency-Key %q", key)
			}
			delivered[ev]++
			if i, ok := ackedIDs[ev]; ok && !strings.HasPrefix(r.Body, `{"i":`+strconv.Itoa(i)+`,`) {
				t.Fatalf("event %s (index %d) arrived with body %.40q", ev, i, r.Body)
			}
		}
		missing = 0
		for id := range ackedIDs {
			if delivered[id] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
	}
	took := time.Since(start2)
	duplicates, unacked := 0, 0
	for id, n := range delivered {
		duplicates += n - 1
		if _, ok := ackedIDs[id]; !ok {
			unacked++ // stored, but the 202 died with the first process
		}
	}
	t.Logf("events %d, senders %d; kill -9 after %d acks (the sink had %d requests); acked %d, failed sends %d (retried); "+
		"sink requests %d, delivered distinct %d, lost %d, duplicates %d, delivered but never acked %d; restart to all delivered %v",
		events, senders, atKill, sinkAtKill, len(ackedIDs), failed.Load(), len(reqs), len(delivered), missing, duplicates, unacked, took.Round(time.Millisecond))
	if len(ackedIDs) != events {
		t.Errorf("%d events acknowledged, want %d", len(ackedIDs), events)
	}
	if missing != 0 {
		t.Fatalf("%d acknowledged events never reached the sink within %v\nsecond process log:\n%s", missing, waitFor, tail(second.log, 3000))
	}

	// Graceful stop: SIGTERM, exit 0.
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.wait(waitFor); err != nil {
		t.Fatalf("the second process did not exit 0 on SIGTERM: %v\n%s", err, tail(second.log, 3000))
	}
	if log := readFile(second.log); !strings.Contains(log, "msg=stopped") {
		t.Errorf("the second process did not log a clean stop:\n%s", tail(second.log, 3000))
	}
}

// child is a hookgate process started by a test.
type child struct {
	cmd  *exec.Cmd
	log  string
	done chan error
	once sync.Once
}

// startBinary starts `bin serve --config cfg`, logging to logPath, and
// waits until its admin listener answers /readyz.
func startBinary(t *testing.T, bin, cfg, adminListen, logPath string, timeout time.Duration) *child {
	t.Helper()
	c := spawnBinary(t, bin, cfg, logPath)
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + adminListen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("hookgate exited at start: %v\n%s", err, tail(logPath, 3000))
		default:
		}
		if time.Now().After(deadline) {
			c.kill()
			t.Fatalf("hookgate not ready after %v\n%s", timeout, tail(logPath, 3000))
		}
	}
}

// spawnBinary starts `bin serve --config cfg`, logging to logPath.
func spawnBinary(t *testing.T, bin, cfg, logPath string) *child {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: exec.Command(bin, "serve", "--config", cfg), log: logPath, done: make(chan error, 1)}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	go func() {
		c.done <- c.cmd.Wait()
		logf.Close()
	}()
	return c
}

func (c *child) kill() {
	c.once.Do(func() { _ = c.cmd.Process.Kill() })
}

// wait returns the process's exit error (nil for exit 0).
func (c *child) wait(timeout time.Duration) error {
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(timeout):
		c.kill()
		return fmt.Errorf("still running after %v; killed", timeout)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// tail is the last n bytes of the file at path, for failure messages.
func tail(path string, n int) string {
	b := []byte(readFile(path))
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

var built struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// buildBinary builds the hookgate binary once for the package's tests
// that run it as a process.
func buildBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "hookgate-bin-"); built.err != nil {
			return
		}
		built.out, built.err = exec.Command("go", "build", "-o", filepath.Join(built.dir, "hookgate"), ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return filepath.Join(built.dir, "hookgate")
}
