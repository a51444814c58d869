package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/plugins/plugintest"
)

// The timings of TestRunawayPluginsE2E (pluginTimeout, the runaway
// plugins' timeout; instanceStart; slow) are in start_race_test.go and
// start_norace_test.go.

// TestRunawayPluginsE2E runs the real gateway with sync routes whose
// plugins never return (a loop-free call tree, which wazero's own
// termination mode could not stop, a Go `for {}`, and every other shape:
// wat and AssemblyScript loops, a Go counter loop, an endless return_call,
// unbounded recursion in wat, Go and AssemblyScript), while /healthz is
// polled every 10 ms and a route with a good plugin keeps serving:
//
//   - every runaway request is answered 502 plugin_failed at about the
//     plugin's timeout, and the answer (like a trapping plugin's) names no
//     trap, wasm, stack, file path or memory figure;
//   - 100 concurrent senders to a runaway plugin with 2 instances each get
//     their answer within a few timeouts (the wait for a busy instance is
//     bounded too), not one after another;
//   - a garbage collection started while a guest runs away completes in
//     milliseconds;
//   - reloads bringing a module whose _initialize or start function never
//     returns, or one importing the instrumentation's module, are refused
//     and the gateway serves on;
//   - no health check waited, and the good route never failed.
func TestRunawayPluginsE2E(t *testing.T) {
	dir := t.TempDir()
	wat := func(name string, flags ...string) string {
		path := filepath.Join(dir, name+".wasm")
		if err := os.WriteFile(path, plugintest.Wat(t, "../../transforms/testdata/wat/"+name+".wat", flags...), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tree, recurse := wat("calltree"), wat("recurse")
	hostile := plugintest.Build(t, "transforms/testdata/guests/hostile")
	filter := plugintest.Build(t, "plugins/filter")
	asHostile := filepath.Join(dir, "as-hostile.wasm")
	if err := os.WriteFile(asHostile, plugintest.AssemblyScript(t, "transforms/testdata/guests/as-hostile"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every other shape of runaway, each on a sync route of its own: a
	// wat loop, an endless return_call, a Go counter loop, an
	// AssemblyScript loop (timeouts), and unbounded recursion in Go and
	// AssemblyScript (traps: stack overflow). A Go guest grows its stack
	// to the runtime's limit before it overflows, which took 148 ms on a
	// loaded CI machine: the recursing shapes get seconds, so what ends
	// them is the overflow, never the clock.
	shapes := []struct {
		name, wasm, mode, kind, path string
		timeout                      time.Duration
	}{
		{"wat-loop", wat("loop"), "", "timeout", "/hooks/wat-loop", pluginTimeout},
		{"tail-spin", wat("tailcall_spin", "--enable-tail-call"), "", "timeout", "/hooks/tail-spin", pluginTimeout},
		{"go-loop", hostile, "loop", "timeout", "/hooks/go-loop", pluginTimeout},
		{"as-loop", asHostile, "loop", "timeout", "/hooks/as-loop", pluginTimeout},
		{"go-recurse", hostile, "recurse", "trap", "/hooks/go-recurse", 3 * time.Second},
		{"as-recurse", asHostile, "recurse", "trap", "/hooks/as-recurse", 3 * time.Second},
		{"recurse", recurse, "", "trap", "/hooks/deep", 10 * time.Second}, // configured below
	}
	var more strings.Builder
	for _, sh := range shapes[:6] {
		fmt.Fprintf(&more, "\n[[plugin]]\nname = %q\nwasm = %q\ninstances = 1\ntimeout = %q\n", sh.name, sh.wasm, sh.timeout.String())
		fmt.Fprintf(&more, "\n[[route]]\nname = %q\npath = \"/hooks/%s\"\nmode = \"sync\"\ntargets = [\"crm\"]\n", sh.name, sh.name)
		if sh.mode != "" {
			fmt.Fprintf(&more, "transforms = [{ plugin = %q, config = { mode = %q } }]\n", sh.name, sh.mode)
		} else {
			fmt.Fprintf(&more, "transforms = [{ plugin = %q }]\n", sh.name)
		}
	}
	crm := startSink(t, sink.Options{})
	o := startOps(t, strings.ReplaceAll(fmt.Sprintf(`
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[queue]
path = "queue"
sync = "batch"

# Shared across tests and runs: compiling the Go guests cold under the
# race detector takes minutes on a small machine.
[transforms]
cache_dir = "CACHE"

[[target]]
name = "crm"
url = "%[1]s/crm"

[[plugin]]
name = "tree"
wasm = "%[2]s"
instances = 2
timeout = "%[6]s"
start_timeout = "%[7]s"

[[plugin]]
name = "spin"
wasm = "%[3]s"
instances = 2
timeout = "%[6]s"
start_timeout = "%[7]s"

# The GC check needs a runaway that is certainly still running when the
# collection starts: the call tree, which wazero's termination mode could
# not stop, and which held up every stop-the-world for as long as it ran.
[[plugin]]
name = "long-tree"
wasm = "%[2]s"
instances = 1
timeout = "3s"

[[plugin]]
name = "filter"
wasm = "%[4]s"
instances = 1

# Unbounded recursion traps with a stack overflow (given the time to
# reach it): the trap's text must not reach the sender either.
[[plugin]]
name = "recurse"
wasm = "%[5]s"
instances = 1
timeout = "10s"

[[route]]
name = "tree"
path = "/hooks/tree"
mode = "sync"
targets = ["crm"]
transforms = [{ plugin = "tree" }]

[[route]]
name = "spin"
path = "/hooks/spin"
mode = "sync"
targets = ["crm"]
transforms = [{ plugin = "spin", config = { mode = "spin" } }]

[[route]]
name = "long-tree"
path = "/hooks/long-tree"
mode = "sync"
targets = ["crm"]
transforms = [{ plugin = "long-tree" }]

[[route]]
name = "deep"
path = "/hooks/deep"
mode = "sync"
targets = ["crm"]
transforms = [{ plugin = "recurse" }]

[[route]]
name = "good"
path = "/hooks/good"
mode = "sync"
json = true
targets = ["crm"]
transforms = [{ plugin = "filter", config = { rules = [{ path = "score", op = "lte", value = 6 }] } }]
`, crm.URL(), tree, hostile, filter, recurse, pluginTimeout, instanceStart)+more.String(), "CACHE", sharedCacheDir()))

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128}}
	send := func(path string) (status int, body string, took time.Duration, err error) {
		start := time.Now()
		resp, err := client.Post(o.base+path, "application/json", strings.NewReader(`{"score":3}`))
		if err != nil {
			return 0, "", time.Since(start), err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), time.Since(start), err
	}

	// Background: /healthz every 10 ms, the good route every 20 ms.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var polls []time.Duration
	var slowAt time.Time // when the slowest poll started
	var pollErrs, goodErrs []string
	good := 0
	wg.Add(2)
	go func() {
		defer wg.Done()
		hc := &http.Client{Timeout: 5 * time.Second}
		for tick := time.NewTicker(10 * time.Millisecond); ; {
			select {
			case <-stop:
				tick.Stop()
				return
			case <-tick.C:
			}
			start := time.Now()
			resp, err := hc.Get(o.admin + "/healthz")
			took := time.Since(start)
			if len(polls) == 0 || took > slices.Max(polls) {
				slowAt = start
			}
			polls = append(polls, took)
			if err != nil {
				pollErrs = append(pollErrs, err.Error())
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				pollErrs = append(pollErrs, fmt.Sprintf("status %d", resp.StatusCode))
			}
		}
	}()
	go func() {
		defer wg.Done()
		for tick := time.NewTicker(20 * time.Millisecond); ; {
			select {
			case <-stop:
				tick.Stop()
				return
			case <-tick.C:
			}
			status, body, _, err := send("/hooks/good")
			if err != nil || status != 200 {
				goodErrs = append(goodErrs, fmt.Sprintf("%d %s %v", status, body, err))
				continue
			}
			good++
		}
	}()
	testStart := time.Now()
	var phases []string // when each subtest started, to place a slow poll
	run := func(name string, f func(t *testing.T)) {
		phases = append(phases, fmt.Sprintf("%q at %v", name, time.Since(testStart).Round(time.Millisecond)))
		t.Run(name, f)
	}

	run("runaways answered 502 at their timeout", func(t *testing.T) {
		for _, path := range []string{"/hooks/tree", "/hooks/spin"} {
			for i := range 5 {
				status, body, took, err := send(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := checkRunawayAnswer(status, body); err != nil {
					t.Fatalf("%s #%d: %v", path, i, err)
				}
				// The plugin's timeout, plus a new instance's start: the
				// call after a runaway runs on a replacement.
				if took > pluginTimeout+instanceStart {
					t.Fatalf("%s #%d answered after %v", path, i, took)
				}
				t.Logf("%s #%d: 502 after %v", path, i, took.Round(time.Millisecond))
			}
		}
		// The sender is not told why; the operator is, by kind.
		for _, name := range []string{"tree", "spin"} {
			if errs := pluginErrors(o, name); errs["timeout"] != 5 || len(errs) != 1 {
				t.Errorf("plugin %s errors %v; want 5 timeouts", name, errs)
			}
		}
	})

	run("100 concurrent senders, 2 instances", func(t *testing.T) {
		const senders = 100
		tooks := make([]time.Duration, senders)
		errs := make(chan error, senders)
		var swg sync.WaitGroup
		for i := range senders {
			swg.Add(1)
			go func() {
				defer swg.Done()
				status, body, took, err := send("/hooks/spin")
				tooks[i] = took
				if err == nil {
					err = checkRunawayAnswer(status, body)
				}
				if err != nil {
					errs <- fmt.Errorf("sender %d: %v", i, err)
				}
			}()
		}
		swg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// Every sender's event failed once: its call timed out, or it found
		// both instances busy for a whole timeout and never ran.
		kinds := pluginErrors(o, "spin")
		ran := kinds["timeout"] - 5 // the 5 sequential ones above
		slices.Sort(tooks)
		t.Logf("100 senders answered: median %v, p90 %v, max %v; %d calls ran into the timeout, %d found every instance busy",
			tooks[senders/2], tooks[senders*9/10], tooks[senders-1], ran, kinds["busy"])
		if ran < 1 || ran+kinds["busy"] != senders || len(kinds) != 2 {
			t.Errorf("plugin spin errors %v; want %d more, timeouts and busy", kinds, senders)
		}
		// Each waits at most one timeout for an instance (plus the start
		// of a replacement under way, transforms/pool.go) and runs at
		// most one more. Serialized behind two instances, the last would
		// wait 50 timeouts (5 s).
		if bound := 2*pluginTimeout + instanceStart; tooks[senders-1] > bound {
			t.Errorf("the slowest sender waited %v; want < %v", tooks[senders-1], bound)
		}
	})

	run("GC during a runaway", func(t *testing.T) {
		// Collect what came before first, so the collection measured
		// below costs little besides waiting for the guest.
		runtime.GC()
		done := make(chan error, 1)
		go func() {
			status, body, _, err := send("/hooks/long-tree")
			if err == nil {
				err = checkRunawayAnswer(status, body)
			}
			done <- err
		}()
		eventually(t, 10*time.Second, func() string {
			var pa struct {
				Plugins []struct {
					Name string `json:"name"`
					Busy int    `json:"busy"`
				} `json:"plugins"`
			}
			o.call("GET", "/admin/plugins", "", &pa)
			for _, p := range pa.Plugins {
				if p.Name == "long-tree" && p.Busy == 1 {
					return ""
				}
			}
			return "long-tree never got busy"
		})
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		runtime.GC()
		gc := time.Since(start)
		t.Logf("runtime.GC() during a runaway call took %v", gc)
		// A collection that waited for the guest would take its 3 s.
		if bound := slow * 500 * time.Millisecond; gc >= bound {
			t.Errorf("runtime.GC() took %v while a plugin ran away; want < %v", gc, bound)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the long runaway was never answered")
		}
	})

	run("every other shape answered, with its kind", func(t *testing.T) {
		// Unbounded recursion ends as a trap within about a millisecond
		// (the instrumentation's call-depth limit), long before its 10 s
		// timeout, so it runs here, under the health checks, too.
		for _, sh := range shapes {
			status, body, took, err := send(sh.path)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkRunawayAnswer(status, body); err != nil {
				t.Fatalf("%s: %v", sh.name, err)
			}
			// A trap ends a call long before its timeout; a timeout ends
			// it at the timeout, plus a margin for a loaded machine.
			limit := pluginTimeout + slow*400*time.Millisecond
			if sh.kind == "trap" {
				limit = 2 * time.Second
			}
			if took > limit {
				t.Errorf("%s answered after %v", sh.name, took)
			}
			if errs := pluginErrors(o, sh.name); errs[sh.kind] != 1 || len(errs) != 1 {
				t.Errorf("plugin %s errors %v; want one %s", sh.name, errs, sh.kind)
			}
			t.Logf("%s: 502 after %v, kind %s", sh.name, took.Round(time.Millisecond), sh.kind)
		}
		// The operator's log names the cause of each trap; the senders
		// above were told none of it.
		if n := strings.Count(o.stderr.String(), "stack overflow"); n < 3 {
			t.Errorf("the log names a stack overflow %d times; want one per recursing plugin (3):\n%s", n, o.stderr.String())
		}
	})

	run("hostile modules refused at a reload", func(t *testing.T) {
		// A module whose _initialize or start function never returns, and
		// one importing the instrumentation's own module: each reload is
		// refused with a reason, and the gateway serves on with the config
		// it had (the health checks and the good route go on throughout).
		cfg, err := os.ReadFile(o.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []struct{ name, wasm, want string }{
			{"init-loop", wat("init_loop"), "did not finish within 1s"},
			{"start-loop", wat("start_loop"), "did not finish within 1s"},
			{"imports-interrupt", wat("imports_interrupt"), "hookgate_interrupt"},
		} {
			extra := fmt.Sprintf("\n[[plugin]]\nname = %q\nwasm = %q\ninstances = 1\ntimeout = \"100ms\"\nstart_timeout = \"1s\"\n", bad.name, bad.wasm)
			if err := os.WriteFile(o.path, append(append([]byte(nil), cfg...), extra...), 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			var res struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			code := o.call("POST", "/admin/reload", "", &res)
			took := time.Since(start)
			if code != 422 || res.Error.Code != "reload_failed" || !strings.Contains(res.Error.Message, bad.name) || !strings.Contains(res.Error.Message, bad.want) {
				t.Errorf("reload with %s: %d %+v; want 422 reload_failed naming the plugin and %q", bad.name, code, res.Error, bad.want)
			}
			t.Logf("reload with %s refused after %v: %s", bad.name, took.Round(time.Millisecond), res.Error.Message)
		}
		if err := os.WriteFile(o.path, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		if status, body, _, err := send("/hooks/good"); err != nil || status != 200 {
			t.Fatalf("the good route after the refused reloads: %d %s %v", status, body, err)
		}
	})

	close(stop)
	wg.Wait()
	ran := time.Since(testStart)
	if len(pollErrs) > 0 {
		t.Errorf("%d of %d health checks failed: %v", len(pollErrs), len(polls), pollErrs[:min(5, len(pollErrs))])
	}
	slices.Sort(polls)
	if len(polls) == 0 {
		t.Fatal("no health check ran")
	}
	t.Logf("%d health checks over %v: median %v, max %v; %d good requests", len(polls), ran.Round(time.Millisecond), polls[len(polls)/2], polls[len(polls)-1], good)
	// A stop-the-world that waited for a runaway would hold every check
	// for as long as the runaway ran: 3 s for long-tree, under the GC
	// subtest. The bound is below that and leaves the rest to a loaded
	// machine (the GC subtest times the collection itself).
	if bound := 2 * time.Second; polls[len(polls)-1] > bound {
		t.Errorf("a health check took %v, started at %v; want none over %v (subtests started: %s)",
			polls[len(polls)-1], slowAt.Sub(testStart).Round(time.Millisecond), bound, strings.Join(phases, ", "))
	}
	// A poller stuck behind the runaways would have managed far fewer.
	if want := int(ran / (10 * time.Millisecond) / 4); len(polls) < want {
		t.Errorf("only %d health checks in %v; want at least %d", len(polls), ran, want)
	}
	if len(goodErrs) > 0 || good == 0 {
		t.Errorf("good route: %d succeeded, %d failed: %v", good, len(goodErrs), goodErrs[:min(5, len(goodErrs))])
	}
}

// pluginErrors returns the plugin's failures by kind, from /admin/plugins.
func pluginErrors(o *opsServer, name string) map[string]int64 {
	var pa struct {
		Plugins []struct {
			Name   string           `json:"name"`
			Errors map[string]int64 `json:"errors"`
		} `json:"plugins"`
	}
	o.call("GET", "/admin/plugins", "", &pa)
	for _, p := range pa.Plugins {
		if p.Name == name {
			return p.Errors
		}
	}
	return nil
}

// leakRE finds what a sender must never see of a plugin failure: trap
// text, the runtime's words, file paths, memory figures.
var leakRE = regexp.MustCompile(`(?i)wasm|stack|goroutine|trap|panic|runtime|\.go\b|/tmp|/work|/root|0x[0-9a-f]+|\d+\s*(bytes|KiB|MiB|pages)|max_memory`)

// checkRunawayAnswer checks a runaway plugin's answer: 502, code
// plugin_failed, a message that names the route and leaks nothing.
func checkRunawayAnswer(status int, body string) error {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return fmt.Errorf("answer %d %q is not the JSON error: %v", status, body, err)
	}
	if status != 502 || e.Error.Code != "plugin_failed" || !strings.Contains(e.Error.Message, "the transforms of route ") {
		return fmt.Errorf("answer %d %s; want 502 plugin_failed", status, body)
	}
	if m := leakRE.FindString(body); m != "" {
		return fmt.Errorf("answer %s shows %q to the sender", body, m)
	}
	return nil
}

// sharedCacheDir is a compilation cache kept across tests and runs (wazero
// writes its entries atomically), so only the first test to load a guest
// compiles it.
func sharedCacheDir() string { return filepath.Join(os.TempDir(), "hookgate-cmd-test-cache") }
