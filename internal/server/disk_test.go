package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue/fillfs"
	"github.com/hookgate/hookgate/internal/syncbuf"
	"github.com/hookgate/hookgate/internal/testport"
)

// gatedTarget is a real HTTP server on loopback that holds every request
// until the test opens its gate, so deliveries stay pending as long as the
// test needs them to.
type gatedTarget struct {
	srv  *http.Server
	url  string
	gate chan struct{}
	got  atomic.Int32
	once sync.Once
}

func startGatedTarget(t *testing.T) *gatedTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedTarget{url: "http://" + ln.Addr().String(), gate: make(chan struct{})}
	g.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-g.gate:
		case <-r.Context().Done():
			return
		}
		g.got.Add(1)
		w.Write([]byte(`{"ok":true}`))
	})}
	go g.srv.Serve(ln)
	t.Cleanup(func() {
		g.open()
		g.srv.Close()
	})
	return g
}

func (g *gatedTarget) open() { g.once.Do(func() { close(g.gate) }) }

// startOnDisk is start with Options of the test's own (a queue filesystem,
// an exit function, a logger).
func startOnDisk(t *testing.T, cfgText string, opts Options) (*Server, string, string) {
	t.Helper()
	listen, adminListen := testport.Addr(t), testport.Addr(t)
	path := filepath.Join(t.TempDir(), "config.toml")
	cfgText = strings.NewReplacer("LISTEN", listen, "ADMIN", adminListen, "QUEUE", filepath.Join(t.TempDir(), "queue")).Replace(cfgText)
	if err := os.WriteFile(path, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	opts.Path, opts.Version = path, "test"
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := New(cfg, opts)
	if err := s.Start(context.Background()); err != nil {
		s.Stop()
		t.Fatal(err)
	}
	return s, "http://" + listen, "http://" + adminListen
}

func diskConfig(target string) string {
	return `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[queue]
path = "QUEUE"
sync = "always"
workers = 2

[[target]]
name = "crm"
url = "` + target + `/crm"

[[route]]
name = "queued"
path = "/hooks/queued"
targets = ["crm"]
`
}

var diskClient = &http.Client{Timeout: 10 * time.Second} // a failure timeout: an answer comes at once or the gateway hangs

// postBig sends a 16 KiB event and returns the status, the error code and
// Retry-After.
func postBig(t *testing.T, ingest string) (int, string, string) {
	t.Helper()
	body := `{"pad":"` + strings.Repeat("x", 16<<10) + `"}`
	resp, err := diskClient.Post(ingest+"/hooks/queued", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST: %v (a hang ends in the client's timeout)", err)
	}
	defer resp.Body.Close()
	var v struct {
		Error struct{ Code string } `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &v)
	return resp.StatusCode, v.Error.Code, resp.Header.Get("Retry-After")
}

// diskReadyz returns /readyz's status and reason.
func diskReadyz(t *testing.T, admin string) (int, string) {
	t.Helper()
	resp, err := diskClient.Get(admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ Status, Reason string }
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v.Reason
}

func waitDisk(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFullDiskAtTheEdge: the queue's disk fills up while deliveries are
// pending. Ingest answers 503 queue_unavailable with Retry-After (never
// 202, never a hang), /readyz says not ready and why, the pending
// deliveries still reach the target, and once space is freed the gateway
// is ready and takes events again by itself.
func TestFullDiskAtTheEdge(t *testing.T) {
	target := startGatedTarget(t)
	fs := fillfs.New(16 << 20) // the queue keeps a quarter free: 4 MiB
	srv, ingest, admin := startOnDisk(t, diskConfig(target.url), Options{QueueFS: fs})
	defer srv.Stop()

	const pending = 4
	for range pending {
		if code, errCode, _ := postBig(t, ingest); code != 202 {
			t.Fatalf("before the disk filled: %d %s, want 202", code, errCode)
		}
	}
	// Another program fills the disk to 3 MiB free.
	fs.Fill(fs.Avail() - 3<<20)
	waitDisk(t, "/readyz not ready", func() bool { code, _ := diskReadyz(t, admin); return code == 503 })
	if _, reason := diskReadyz(t, admin); !strings.Contains(reason, "disk") || !strings.Contains(reason, "free") || strings.Contains(reason, "/") {
		t.Fatalf("/readyz reason %q: want the disk space, without a path", reason)
	}
	for range 3 {
		code, errCode, retryAfter := postBig(t, ingest)
		if code != 503 || errCode != "queue_unavailable" || retryAfter == "" {
			t.Fatalf("on a full disk: %d %q Retry-After=%q, want 503 queue_unavailable with Retry-After", code, errCode, retryAfter)
		}
	}
	if st := srv.store.Load().Stats()["crm"]; st.Depth != pending {
		t.Fatalf("queue depth %d on a full disk, want the %d accepted deliveries", st.Depth, pending)
	}

	// The target answers: what was stored goes out while the disk is full.
	target.open()
	waitDisk(t, "the pending deliveries delivered", func() bool {
		return target.got.Load() >= pending && srv.store.Load().Stats()["crm"].Depth == 0
	})
	if code, _ := diskReadyz(t, admin); code != 503 {
		t.Fatalf("/readyz %d after draining with the disk still full, want 503", code)
	}

	// Space is freed: ready again, and events are taken.
	fs.Fill(-8 << 20)
	waitDisk(t, "/readyz ready after space was freed", func() bool { code, _ := diskReadyz(t, admin); return code == 200 })
	if code, errCode, _ := postBig(t, ingest); code != 202 {
		t.Fatalf("after space was freed: %d %s, want 202", code, errCode)
	}
	waitDisk(t, "the new event delivered", func() bool { return target.got.Load() >= pending+1 })
}

// TestQueueStorageFailureExits: a write to the queue fails in the middle of
// a commit (an I/O error on its log). The sender gets 503
// queue_unavailable with Retry-After, not a hang; the process says why in
// one log line and exits 1 (here: the exit function is called once with
// 1); /readyz says not ready; later events are refused at once; and Stop
// returns.
func TestQueueStorageFailureExits(t *testing.T) {
	target := startGatedTarget(t)
	target.open()
	fs := fillfs.New(1 << 30)
	var logs syncbuf.Buffer
	exits := make(chan int, 4)
	srv, ingest, admin := startOnDisk(t, diskConfig(target.url), Options{QueueFS: fs,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Exit: func(code int) { exits <- code }})

	if code, errCode, _ := postBig(t, ingest); code != 202 {
		t.Fatalf("before the fault: %d %s, want 202", code, errCode)
	}
	fs.FailLog(syscall.EIO)
	code, errCode, retryAfter := postBig(t, ingest)
	if code != 503 || errCode != "queue_unavailable" || retryAfter == "" {
		t.Fatalf("during the fault: %d %q Retry-After=%q, want 503 queue_unavailable with Retry-After", code, errCode, retryAfter)
	}
	select {
	case c := <-exits:
		if c != 1 {
			t.Fatalf("exit code %d, want 1", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the process was not told to exit")
	}
	for range 3 {
		if code, errCode, _ := postBig(t, ingest); code != 503 || errCode != "queue_unavailable" {
			t.Fatalf("after the failure: %d %q, want 503 queue_unavailable", code, errCode)
		}
	}
	if len(exits) != 0 {
		t.Fatalf("exit called %d more times", len(exits))
	}
	if code, reason := diskReadyz(t, admin); code != 503 || !strings.Contains(reason, "storage failed") {
		t.Fatalf("/readyz %d %q, want 503 saying the storage failed", code, reason)
	}
	var why []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "exiting") {
			why = append(why, line)
		}
	}
	if len(why) != 1 || !strings.Contains(why[0], "level=ERROR") || !strings.Contains(why[0], "input/output error") {
		t.Fatalf("want one ERROR line saying why the process exits, got %d:\n%s", len(why), strings.Join(why, "\n"))
	}
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop() }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Stop hangs after the storage failed")
	}
}
