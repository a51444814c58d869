package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/plugins/plugintest"
)

// reloadConfig is a config with a sync passthrough route, a sync route
// through the filter plugin (its .wasm at wasm, instances as given) and
// an async route; extra is appended (more routes).
func reloadConfig(crm *sink.Sink, wasm string, instances int, extra string) string {
	return fmt.Sprintf(`
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[queue]
path = "queue"
sync = "batch"

[[target]]
name = "crm"
url = "%s/crm"

[[plugin]]
name = "filter"
wasm = "%s"
instances = %d

[[route]]
name = "pass"
path = "/hooks/pass"
mode = "sync"
targets = ["crm"]

[[route]]
name = "filtered"
path = "/hooks/filtered"
mode = "sync"
json = true
targets = ["crm"]
transforms = [{ plugin = "filter", config = { rules = [{ path = "score", op = "gte", value = 9 }] } }]

[[route]]
name = "queued"
path = "/hooks/queued"
targets = ["crm"]
%s`, crm.URL(), wasm, instances, extra)
}

const newRoute = `
[[route]]
name = "new"
path = "/hooks/new"
mode = "sync"
targets = ["crm"]
`

// copyWasm copies the filter plugin into dir, so a test can overwrite it.
func copyWasm(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(plugintest.Build(t, "plugins/filter"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "filter.wasm")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rewrite replaces the served config file, keeping its listen addresses.
func (o *opsServer) rewrite(cfgText string) {
	o.t.Helper()
	old, err := os.ReadFile(o.path)
	if err != nil {
		o.t.Fatal(err)
	}
	listen := strings.TrimPrefix(o.base, "http://")
	adminListen := strings.TrimPrefix(o.admin, "http://")
	cfgText = strings.NewReplacer("LISTEN", listen, "ADMIN", adminListen).Replace(cfgText)
	if string(old) == cfgText {
		o.t.Fatal("rewrite: the config did not change")
	}
	if err := os.WriteFile(o.path, []byte(cfgText), 0o644); err != nil {
		o.t.Fatal(err)
	}
}

// TestReloadUnderLoad reloads (a new route, and the plugin's pool resized
// so the plugin itself is replaced) while a few clients send steadily to
// a passthrough route, a plugin route and an async route: no request
// fails, and the new route answers right after the reload.
func TestReloadUnderLoad(t *testing.T) {
	crm := startSink(t, sink.Options{Discard: true})
	wasm := copyWasm(t, t.TempDir())
	o := startOps(t, reloadConfig(crm, wasm, 1, ""))

	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	paths := []struct{ path, body string }{
		{"/hooks/pass", `{"n":1}`}, {"/hooks/filtered", `{"score":10}`}, {"/hooks/queued", `{"n":2}`},
	}
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := paths[g]
			// A bound for a failed test: stop ends the senders.
			deadline := time.Now().Add(60 * time.Second)
			for i := 0; i < 100000 && time.Now().Before(deadline); i++ { // bounded in time and count
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post(o.base+p.path, "application/json", strings.NewReader(p.body))
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, p.path+": "+err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				time.Sleep(time.Millisecond) // steady, not a flood: the machine is shared
				if resp.StatusCode >= 300 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: status %d", p.path, resp.StatusCode))
				}
			}
		}()
	}
	// At least 30 requests before the reload and 30 after it, however
	// long a loaded machine takes to send them or to reload.
	waitSent := func(n int64) {
		eventually(t, 20*time.Second, func() string {
			if got := sent.Load(); got < n {
				return fmt.Sprintf("only %d requests sent, want %d: the load was not steady", got, n)
			}
			return ""
		})
	}
	waitSent(30)
	o.rewrite(reloadConfig(crm, wasm, 2, newRoute))
	var ans struct {
		Reloaded bool     `json:"reloaded"`
		Summary  string   `json:"summary"`
		Routes   []string `json:"routes"`
	}
	if st := o.call("POST", "/admin/reload", "", &ans); st != 200 || !ans.Reloaded || !strings.HasSuffix(ans.Summary, "ok: 4 routes, 1 target, 1 plugin") {
		t.Fatalf("reload answered %d %+v", st, ans)
	}
	if code, _, body := o.post("/hooks/new", `{}`); code != 200 {
		t.Errorf("the new route answered %d %s right after the reload", code, body)
	}
	atReload := sent.Load()
	waitSent(atReload + 30)
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across the reload; first: %v", n, sent.Load(), firstFailure.Load())
	}
	t.Logf("%d requests before the reload, %d after, none failed", atReload, sent.Load()-atReload)
	// Every request reached the target once: the queued ones too, those
	// enqueued before the reload included (the dispatcher kept flowing).
	want := int(sent.Load()) + 1 // and the one to the new route
	eventually(t, 20*time.Second, func() string {
		if got := crm.Count(); got != want {
			return fmt.Sprintf("the target got %d requests, want %d", got, want)
		}
		return ""
	})
	var pa struct {
		Plugins []struct {
			Instances int `json:"instances"`
		} `json:"plugins"`
	}
	if o.call("GET", "/admin/plugins", "", &pa); len(pa.Plugins) != 1 || pa.Plugins[0].Instances != 2 {
		t.Errorf("plugins after the reload = %+v, want the pool of 2", pa)
	}
	// Once the old table's requests are done, the replaced plugin and
	// clients are closed (not leaked), and closing them went well.
	eventually(t, 10*time.Second, func() string {
		if !strings.Contains(o.stderr.String(), "its plugins and target clients are closed") {
			return "the replaced plugin was never closed: " + o.stderr.String()
		}
		return ""
	})
	if strings.Contains(o.stderr.String(), "closing replaced plugins") {
		t.Errorf("closing the replaced plugin failed: %s", o.stderr.String())
	}
}

// TestReloadBroken: a config that does not load, and separately a
// plugin .wasm replaced with garbage, are refused with the whole error
// (422, and in the log); the old config keeps serving, plugin included.
func TestReloadBroken(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(o *opsServer, crm *sink.Sink, wasm string)
		want    []string // in the answer's problems and in the log
	}{
		{
			name: "bad config",
			breakIt: func(o *opsServer, crm *sink.Sink, wasm string) {
				o.rewrite(reloadConfig(crm, wasm, 1, `
[[route]]
name = "new"
path = "/hooks/new"
mode = "teleport"
targets = ["nowhere"]
`))
			},
			want: []string{"nowhere", "teleport"},
		},
		{
			name: "garbage plugin",
			breakIt: func(o *opsServer, crm *sink.Sink, wasm string) {
				if err := os.WriteFile(wasm, []byte("this is not WebAssembly"), 0o644); err != nil {
					o.t.Fatal(err)
				}
				o.rewrite(reloadConfig(crm, wasm, 1, newRoute))
			},
			want: []string{"filter", "does not compile"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crm := startSink(t, sink.Options{Discard: true})
			wasm := copyWasm(t, t.TempDir())
			o := startOps(t, reloadConfig(crm, wasm, 1, ""))
			tt.breakIt(o, crm, wasm)

			var ans struct {
				Error struct {
					Code     string   `json:"code"`
					Message  string   `json:"message"`
					Problems []string `json:"problems"`
				} `json:"error"`
			}
			if st := o.call("POST", "/admin/reload", "", &ans); st != 422 || ans.Error.Code != "reload_failed" ||
				!strings.Contains(ans.Error.Message, "the previous one is still serving") {
				t.Fatalf("reload answered %d %+v", st, ans)
			}
			all := strings.Join(ans.Error.Problems, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("the problems %q do not mention %s", ans.Error.Problems, w)
				}
				if !strings.Contains(o.stderr.String(), w) {
					t.Errorf("the log does not mention %s", w)
				}
			}
			if !strings.Contains(o.stderr.String(), "reload failed; still serving the previous config") {
				t.Error("the failed reload was not logged")
			}
			// The old config, plugin included, still serves.
			if code, _, _ := o.post("/hooks/new", `{}`); code != 404 {
				t.Errorf("the new route answered %d, want 404", code)
			}
			if code, _, body := o.post("/hooks/filtered", `{"score":10}`); code != 200 {
				t.Errorf("the plugin route answered %d %s", code, body)
			}
			if code, _, body := o.post("/hooks/filtered", `{"score":1}`); code != 200 || !strings.Contains(body, "dropped") {
				t.Errorf("the plugin route answered %d %s to a low score", code, body)
			}
			if code, _, _ := o.post("/hooks/pass", `{}`); code != 200 {
				t.Errorf("the passthrough route answered %d", code)
			}
		})
	}
}

// TestWatch: serve --watch picks up a config change by itself.
func TestWatch(t *testing.T) {
	crm := startSink(t, sink.Options{Discard: true})
	wasm := copyWasm(t, t.TempDir())
	o := startOps(t, reloadConfig(crm, wasm, 1, ""), "--watch")
	if code, _, _ := o.post("/hooks/new", `{}`); code != 404 {
		t.Fatalf("the new route answered %d before the change", code)
	}
	o.rewrite(reloadConfig(crm, wasm, 1, newRoute))
	eventually(t, 15*time.Second, func() string {
		if code, _, _ := o.post("/hooks/new", `{}`); code != 200 {
			return fmt.Sprintf("the new route still answers %d after the change: %s", code, o.stderr.String())
		}
		return ""
	})
	if !strings.Contains(o.stderr.String(), "by=watch") {
		t.Errorf("the log does not say the watcher reloaded: %s", o.stderr.String())
	}

	// A .wasm replaced with garbage is seen too, refused, and the running
	// plugin keeps serving.
	if err := os.WriteFile(wasm, []byte("garbage, not WebAssembly"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() string {
		if !strings.Contains(o.stderr.String(), "reload failed; still serving the previous config") {
			return "the broken .wasm was not noticed: " + o.stderr.String()
		}
		return ""
	})
	if !strings.Contains(o.stderr.String(), "does not compile") {
		t.Errorf("the log does not give the plugin's error: %s", o.stderr.String())
	}
	if code, _, body := o.post("/hooks/filtered", `{"score":10}`); code != 200 {
		t.Errorf("the plugin route answered %d %s after the broken .wasm", code, body)
	}
}
