package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/testport"
	"github.com/hookgate/hookgate/plugins/plugintest"
)

// pluginConfig has a sync route through the filter plugin (instances as
// given) to target; extra is appended. The compilation cache sits beside
// the wasm, so a reload does not compile again (seconds under -race).
func pluginConfig(target, wasm string, instances int, extra string) string {
	return fmt.Sprintf(`
[transforms]
cache_dir = "%s"

[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[[target]]
name = "crm"
url = "%s/crm"

[[plugin]]
name = "filter"
wasm = "%s"
instances = %d

[[route]]
name = "filtered"
path = "/hooks/filtered"
mode = "sync"
json = true
targets = ["crm"]
transforms = [{ plugin = "filter", config = { rules = [{ path = "score", op = "gte", value = 9 }] } }]
%s`, wasm+".cache", target, wasm, instances, extra)
}

// rewrite replaces s's config file with cfgText, keeping its listeners.
func rewrite(t *testing.T, s *Server, cfgText string) {
	t.Helper()
	cfgText = strings.NewReplacer("LISTEN", s.cfg.Server.Listen, "ADMIN", s.cfg.Admin.Listen).Replace(cfgText)
	if err := os.WriteFile(s.path, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyWasm copies the filter plugin into a directory of the test's own,
// where its compilation cache goes too.
func copyWasm(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(plugintest.Build(t, "plugins/filter"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "filter.wasm")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func current(s *Server) *generation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func post(t *testing.T, s *Server, path, body string) int {
	t.Helper()
	resp, err := http.Post("http://"+s.cfg.Server.Listen+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

func retired(g *generation) bool {
	select {
	case <-g.retired:
		return true
	default:
		return false
	}
}

func waitRetired(t *testing.T, g *generation) {
	t.Helper()
	select {
	case <-g.retired:
	case <-time.After(10 * time.Second):
		t.Fatal("the replaced generation was never retired")
	}
}

// TestReloadRetiresAfterSlowRequest: a request blocked in a slow target
// across a reload that replaces its plugin keeps the old generation open;
// its plugin and clients close when that request ends, not before. The
// target holds the request until the test closes it (Close answers what
// it holds), so no reload, however slow, outlasts it.
func TestReloadRetiresAfterSlowRequest(t *testing.T) {
	slow, err := sink.Start("127.0.0.1:0", sink.Options{Delay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	wasm := copyWasm(t)
	s, _ := start(t, pluginConfig(slow.URL(), wasm, 1, ""))
	old := current(s)

	done := make(chan int, 1)
	go func() { done <- post(t, s, "/hooks/filtered", `{"score":10}`) }()
	deadline := time.Now().Add(5 * time.Second)
	for slow.Count() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	rewrite(t, s, pluginConfig(slow.URL(), wasm, 2, "")) // instances changed: the plugin is replaced
	if _, err := s.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	next := current(s)
	if next == old {
		t.Fatal("the reload did not make a new generation current")
	}
	for range 3 {
		if retired(old) || old.plugins.Closed() != 0 {
			t.Fatalf("the old generation was retired while a request still used it (sink count %d, retired %v, closed plugins %d)", slow.Count(), retired(old), old.plugins.Closed())
		}
		time.Sleep(100 * time.Millisecond)
	}
	slow.Close() // the target answers the request it held
	if st := <-done; st != 200 {
		t.Fatalf("the request across the reload got %d, want 200", st)
	}
	waitRetired(t, old)
	if n := old.plugins.Closed(); n != 1 {
		t.Errorf("replaced plugins closed: %d, want 1", n)
	}
	if n := next.plugins.Closed(); n != 0 {
		t.Errorf("the running generation has %d closed plugins", n)
	}
	if st := post(t, s, "/hooks/filtered", `{"score":1}`); st != 200 && st != 204 && st != 202 {
		t.Errorf("after the retirement: %d", st)
	}
}

// TestFailedReloadThenReload: a reload that fails after it loaded a
// changed plugin leaves the running generation serving, and a later
// successful reload still closes the plugins it replaced (they were once
// kept forever).
func TestFailedReloadThenReload(t *testing.T) {
	crm := startSink(t)
	wasm := copyWasm(t)
	s, _ := start(t, pluginConfig(crm.URL(), wasm, 1, ""))
	first := current(s)

	// The plugin loads, then the queue cannot open.
	bad := pluginConfig(crm.URL(), wasm, 2, `
[[route]]
name = "queued"
path = "/hooks/queued"
targets = ["crm"]

[queue]
path = "/dev/null/queue"
`)
	rewrite(t, s, bad)
	if _, err := s.Reload(context.Background(), "test"); err == nil {
		t.Fatal("a reload whose queue cannot open succeeded")
	}
	if current(s) != first || retired(first) || first.plugins.Closed() != 0 {
		t.Fatal("a failed reload touched the running generation")
	}
	if st := post(t, s, "/hooks/filtered", `{"score":10}`); st != 200 {
		t.Fatalf("after a failed reload: %d, want 200", st)
	}

	rewrite(t, s, pluginConfig(crm.URL(), wasm, 3, ""))
	if _, err := s.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	waitRetired(t, first)
	if n := first.plugins.Closed(); n != 1 {
		t.Errorf("plugins of the replaced generation closed: %d, want 1", n)
	}
	if n := current(s).plugins.Closed(); n != 0 {
		t.Errorf("the running generation has %d closed plugins", n)
	}
	if st := post(t, s, "/hooks/filtered", `{"score":10}`); st != 200 {
		t.Fatalf("after the reload: %d, want 200", st)
	}
}

// TestReloadLanesDrainFirst: a delivery attempt in flight across a reload
// keeps the old generation, and so its target clients, open until the
// attempt has finished. The target holds the attempt until the test
// closes it (Close answers what it holds).
func TestReloadLanesDrainFirst(t *testing.T) {
	slow, err := sink.Start("127.0.0.1:0", sink.Options{Delay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	s, _ := start(t, asyncConfig(slow.URL()))
	old := current(s)
	if st := post(t, s, "/hooks/queued", `{}`); st != 202 {
		t.Fatalf("async route: %d, want 202", st)
	}
	deadline := time.Now().Add(5 * time.Second)
	for slow.Count() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	rewrite(t, s, asyncConfig(slow.URL())+`
[[route]]
name = "pass"
path = "/hooks/pass"
mode = "sync"
targets = ["crm"]
`)
	if _, err := s.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if retired(old) {
		t.Fatal("the old generation was retired while its lane still sent")
	}
	if st := s.store.Load().Stats()["crm"]; st.Depth != 1 || st.Leased != 1 {
		t.Fatalf("queue %+v while the attempt is held; want the one delivery, leased", st)
	}
	slow.Close() // the attempt is answered, 200
	waitRetired(t, old)
	// The attempt in flight succeeded: nothing is left to retry.
	deadline = time.Now().Add(10 * time.Second)
	for st := s.store.Load().Stats()["crm"]; st.Depth != 0; st = s.store.Load().Stats()["crm"] {
		if time.Now().After(deadline) {
			t.Fatalf("queue %+v after the attempt was answered; want it empty (delivered)", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := slow.Count(); n != 1 {
		t.Errorf("the target got %d attempts, want 1", n)
	}
}

// TestReloadSeesWasmReplacedMidway: a plugin's .wasm replaced while a
// reload is loading it (after the read, before the commit) is a change
// the next reload sees. The server once read the file again to remember
// what the host held, took the new file for the loaded one, and never
// loaded it.
func TestReloadSeesWasmReplacedMidway(t *testing.T) {
	crm := startSink(t)
	wasm := copyWasm(t)
	s, _ := start(t, pluginConfig(crm.URL(), wasm, 1, ""))

	// Reload's own steps (swap), with the file replaced between the
	// build, which reads and loads it, and the commit.
	rewrite(t, s, pluginConfig(crm.URL(), wasm, 2, ""))
	s.mu.Lock()
	cfg, err := config.Load(s.path)
	if err != nil {
		s.mu.Unlock()
		t.Fatal(err)
	}
	next, deps, err := s.build(context.Background(), cfg)
	if err != nil {
		s.mu.Unlock()
		t.Fatal(err)
	}
	if err := os.WriteFile(wasm, []byte("this is not WebAssembly"), 0o644); err != nil {
		s.mu.Unlock()
		t.Fatal(err)
	}
	if err := s.gw.Reload(cfg, deps); err != nil {
		s.mu.Unlock()
		t.Fatal(err)
	}
	s.commit(next)
	s.mu.Unlock()

	_, err = s.Reload(context.Background(), "test")
	if err == nil || !strings.Contains(err.Error(), "does not compile") {
		t.Fatalf("the reload after the .wasm changed = %v, want the new file loaded (and refused: it does not compile)", err)
	}
	if st := post(t, s, "/hooks/filtered", `{"score":10}`); st != 200 {
		t.Errorf("after the refused reload: %d, want 200 from the running plugin", st)
	}
}

// TestRefusedDuringStart: while Start builds (here it waits on the
// plugin's .wasm, a named pipe), the ingest port refuses connections,
// rather than holding them in a backlog with nothing answering; once
// the build is done it serves. A port in use was checked first
// (TestPortInUseFailsFirst).
func TestRefusedDuringStart(t *testing.T) {
	crm := startSink(t)
	wasm, err := os.ReadFile(plugintest.Build(t, "plugins/filter"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pipe := filepath.Join(dir, "filter.wasm")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Fatal(err)
	}
	listen := testport.Addr(t)
	s := newServer(t, dir, strings.NewReplacer("LISTEN", listen, "ADMIN", testport.Addr(t)).Replace(pluginConfig(crm.URL(), pipe, 1, "")))
	var errStart error
	started := make(chan struct{})
	go func() {
		errStart = s.Start(context.Background())
		close(started)
	}()
	var w *os.File
	defer func() {
		if w != nil {
			w.Close() // the build reads an empty module and fails: Start returns
		}
		select {
		case <-started:
		case <-time.After(time.Minute):
			t.Error("Start never returned")
		}
		s.Stop()
	}()

	// A writer can open the pipe once Start has opened it to read.
	for deadline := time.Now().Add(30 * time.Second); w == nil; time.Sleep(10 * time.Millisecond) {
		select {
		case <-started:
			t.Fatalf("Start ended before reading the plugin: %v", errStart)
		default:
		}
		f, err := os.OpenFile(pipe, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			w = f
		} else if !errors.Is(err, syscall.ENXIO) {
			t.Fatal(err)
		} else if time.Now().After(deadline) {
			t.Fatal("Start never opened the plugin's .wasm")
		}
	}
	if c, err := net.Dial("tcp", listen); err == nil {
		c.Close()
		t.Fatal("the ingest port took a connection while the plugins load")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connecting while the plugins load: %v, want connection refused", err)
	}
	if _, err := w.Write(wasm); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = nil
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("Start did not finish once the plugin was written")
	}
	if errStart != nil {
		t.Fatal(errStart)
	}
	if st := post(t, s, "/hooks/filtered", `{"score":10}`); st != 200 {
		t.Errorf("after the start: %d, want 200", st)
	}
}
