package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway/config"
)

// TestMain lets the test binary serve as the benchmark sink, as the
// harness binary does: the harness starts the sink by re-executing itself.
func TestMain(m *testing.M) {
	if os.Getenv(envRole) == "sink" {
		runSinkRole()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestHarnessDirect runs the real harness for about a second per load
// model on the direct scenario (a child sink process), so it keeps working.
func TestHarnessDirect(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sink process and drives load for ~2s")
	}
	payload := filepath.Join("..", "testdata", "howxm_entry_submitted.json")
	tests := []struct {
		name string
		rate float64
	}{
		{name: "closed loop", rate: 0},
		{name: "open loop", rate: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{
				Duration: time.Second, Warmup: 100 * time.Millisecond, Conns: 4, Rate: tt.rate, Rounds: 1,
				Scenarios: []string{scDirect}, Payload: payload, Pin: "off", QueueSync: "always",
				Drain: time.Second, Timeout: 5 * time.Second,
				JSON: filepath.Join(dir, "out.json"), Command: "test",
			}
			rep, err := run(o, CoreSplit{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Scenarios) != 1 {
				t.Fatalf("got %d scenarios, want 1", len(rep.Scenarios))
			}
			s := rep.Scenarios[0]
			if s.Skipped != "" || len(s.Rounds) != 1 {
				t.Fatalf("direct: skipped %q, %d rounds; want 1 measured round", s.Skipped, len(s.Rounds))
			}
			r := s.Rounds[0]
			if r.Requests == 0 || r.Errors() != 0 {
				t.Fatalf("direct: %d requests, %d errors (%s); want some requests and no errors", r.Requests, r.Errors(), r.FirstErr)
			}
			if r.Statuses[200] != r.Requests {
				t.Fatalf("statuses %v, want all %d requests answered 200", r.Statuses, r.Requests)
			}
			if tt.rate > 0 && r.Requests+r.Unsent != 200 {
				// One second at 200/s is exactly 200 scheduled sends.
				t.Fatalf("open loop: %d sent + %d unsent, want 200 scheduled", r.Requests, r.Unsent)
			}
			if r.Latency.P50 <= 0 || r.Latency.P50 > r.Latency.P99 || r.Latency.P99 > r.Latency.Max {
				t.Fatalf("latency %+v is not ordered p50 <= p99 <= max", r.Latency)
			}
			// 200 req/s may cost the sink less than one 10ms clock tick;
			// a second back to back cannot.
			if r.PeakRSS <= 0 || tt.rate == 0 && r.CPUSeconds <= 0 {
				t.Fatalf("sink CPU %.3fs, peak RSS %d: want both measured", r.CPUSeconds, r.PeakRSS)
			}
			var md bytes.Buffer
			if err := writeOutputs(rep, o, &md); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(md.String(), "| direct | ") {
				t.Fatalf("markdown has no direct row:\n%s", md.String())
			}
			if b, err := os.ReadFile(o.JSON); err != nil || !bytes.Contains(b, []byte(`"name": "direct"`)) {
				t.Fatalf("JSON report: %v\n%s", err, b)
			}
		})
	}
}

func TestSpreadOf(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want Spread
	}{
		{name: "empty", in: nil, want: Spread{}},
		{name: "one", in: []float64{5}, want: Spread{Median: 5, Min: 5, Max: 5}},
		{name: "odd", in: []float64{3, 1, 2}, want: Spread{Median: 2, Min: 1, Max: 3}},
		{name: "even", in: []float64{4, 1, 2, 3}, want: Spread{Median: 2.5, Min: 1, Max: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := spreadOf(tt.in); got != tt.want {
				t.Fatalf("spreadOf(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestIsLoopbackURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want bool
	}{
		{name: "ipv4 loopback", url: "http://127.0.0.1:8080/hooks/x", want: true},
		{name: "other 127/8", url: "http://127.0.0.2:8080/", want: true},
		{name: "ipv6 loopback", url: "http://[::1]:8080/", want: true},
		{name: "localhost", url: "http://localhost:8080/", want: true},
		{name: "remote ip", url: "http://10.0.0.1:8080/", want: false},
		{name: "remote name", url: "http://example.com/", want: false},
		{name: "garbage", url: "::", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isLoopbackURL(tt.url); got != tt.want {
				t.Fatalf("isLoopbackURL(%q) = %v, want %v", tt.url, got, tt.want)
			}
		})
	}
}

func TestProcSelf(t *testing.T) {
	pid := os.Getpid()
	// Burn a little CPU so utime+stime is certainly past one tick.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	cpu, err := procCPU(pid)
	if err != nil || cpu <= 0 {
		t.Fatalf("procCPU(self) = %v, %v; want > 0", cpu, err)
	}
	rss, err := procPeakRSS(pid)
	if err != nil || rss < 1<<20 {
		t.Fatalf("procPeakRSS(self) = %d, %v; want at least 1 MiB", rss, err)
	}
	pp, err := procParent(pid)
	if err != nil || pp != os.Getppid() {
		t.Fatalf("procParent(self) = %d, %v; want %d", pp, err, os.Getppid())
	}
}

// TestHookgateConfigParses keeps the TOML the harness writes in step with
// gateway/config: a renamed key would otherwise only show up as a skipped
// scenario in the table.
func TestHookgateConfigParses(t *testing.T) {
	dir := t.TempDir()
	wasm := map[string]string{}
	for _, p := range []string{"filter", "template", "howxm-nps", "howxm-nps-as"} {
		wasm[p] = filepath.Join(dir, p+".wasm")
		if err := os.WriteFile(wasm[p], []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := &Env{Dir: dir, Conns: 64, QueueSync: "always"}
	tests := []struct {
		name    string
		plan    plan
		targets []string
		plugins []string
	}{
		{name: "passthrough", plan: plan{mode: "sync", targets: 1}, targets: []string{"sink"}},
		{name: "howxm-nps", plan: plan{mode: "sync", targets: 1, steps: howxmSteps}, targets: []string{"sink"}, plugins: []string{"howxm-nps"}},
		{name: "howxm-nps-as", plan: *scenarioPlan(t, scHowxmAS), targets: []string{"sink"}, plugins: []string{"howxm-nps-as"}},
		{name: "chain3", plan: plan{mode: "sync", targets: 1, steps: chainSteps}, targets: []string{"sink"}, plugins: []string{"filter", "template", "howxm-nps"}},
		{name: "async", plan: plan{mode: "async", targets: 1}, targets: []string{"sink"}},
		{name: "async-nats", plan: *scenarioPlan(t, scAsyncNATS), targets: []string{"sink"}},
		{name: "fanout2", plan: plan{mode: "sync", targets: 2}, targets: []string{"sink", "sink2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := hookgateConfig(env, tt.plan, wasm, "127.0.0.1:18080", "", "127.0.0.1:19000", filepath.Join(dir, "queue"), "nats://127.0.0.1:14222")
			path := filepath.Join(dir, tt.name+".toml")
			cfg, err := config.Parse([]byte(text), path, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			r := cfg.Route("bench")
			if r == nil || r.Mode != tt.plan.mode || r.Path != "/hooks/bench" {
				t.Fatalf("route bench = %+v, want mode %s on /hooks/bench", r, tt.plan.mode)
			}
			if strings.Join(r.Targets, ",") != strings.Join(tt.targets, ",") {
				t.Fatalf("targets %v, want %v", r.Targets, tt.targets)
			}
			var steps []string
			for _, s := range r.Transforms {
				steps = append(steps, s.Plugin)
			}
			if strings.Join(steps, ",") != strings.Join(tt.plugins, ",") {
				t.Fatalf("transforms %v, want %v", steps, tt.plugins)
			}
			if cfg.Admin.Listen != "" || cfg.Log.Access || cfg.Queue.Sync != "always" {
				t.Fatalf("admin %q, access log %v, queue sync %q: want off, off, always", cfg.Admin.Listen, cfg.Log.Access, cfg.Queue.Sync)
			}
			if tg := cfg.Target("sink"); tg == nil || tg.URL.String() != "http://127.0.0.1:19000/deliver/1" || tg.MaxConns != 64 {
				t.Fatalf("target sink = %+v, want http://127.0.0.1:19000/deliver/1 with max_conns 64 (the product's default)", tg)
			}
			q := cfg.Queue
			if tt.plan.backend == "nats" {
				if q.Backend != config.QueueBackendNATS || strings.Join(q.NATS.URLs, ",") != "nats://127.0.0.1:14222" || q.NATS.Stream != "hookgate" || q.NATS.Replicas != 1 {
					t.Fatalf("queue backend %q, nats %+v: want nats on nats://127.0.0.1:14222, stream hookgate, 1 replica", q.Backend, q.NATS)
				}
			} else if q.Backend != config.QueueBackendPebble || q.Path != filepath.Join(dir, "queue") {
				t.Fatalf("queue backend %q at %q: want the embedded pebble store at %s", q.Backend, q.Path, filepath.Join(dir, "queue"))
			}
			for _, n := range tt.targets {
				if p := cfg.Target(n).Pipeline; p != 0 {
					t.Fatalf("target %s: pipeline %d without --pipeline, want 0", n, p)
				}
			}
		})
	}

	// --pipeline sets pipeline on every target.
	piped := *env
	piped.Pipeline = 8
	text := hookgateConfig(&piped, plan{mode: "sync", targets: 2}, wasm, "127.0.0.1:18080", "", "127.0.0.1:19000", filepath.Join(dir, "queue"), "")
	cfg, err := config.Parse([]byte(text), filepath.Join(dir, "piped.toml"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	for _, n := range []string{"sink", "sink2"} {
		if tg := cfg.Target(n); tg.Pipeline != 8 || tg.MaxConns != 64 {
			t.Errorf("--pipeline 8: target %s has pipeline %d, max_conns %d; want 8, 64", n, tg.Pipeline, tg.MaxConns)
		}
	}

	// --target-conns sets max_conns on every target, in place of --conns
	// (at least 64).
	narrow := *env
	narrow.TargetConns = 48
	text = hookgateConfig(&narrow, plan{mode: "async", targets: 2}, wasm, "127.0.0.1:18080", "", "127.0.0.1:19000", filepath.Join(dir, "queue"), "")
	cfg, err = config.Parse([]byte(text), filepath.Join(dir, "narrow.toml"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	for _, n := range []string{"sink", "sink2"} {
		if tg := cfg.Target(n); tg.MaxConns != 48 {
			t.Errorf("--target-conns 48: target %s has max_conns %d, want 48", n, tg.MaxConns)
		}
	}
}

// scenarioPlan is the route the named hookgate scenario serves, as the
// harness runs it.
func scenarioPlan(t *testing.T, name string) *plan {
	t.Helper()
	scs, err := selectScenarios([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	if scs[0].plan == nil {
		t.Fatalf("scenario %s is not a hookgate scenario", name)
	}
	return scs[0].plan
}

// TestHarnessAsyncNATS runs the real harness for about a second on async
// and async-nats side by side: hookgate built from ./cmd/hookgate, a
// nats-server built from go.mod's module and started by the harness with
// a fresh store, the sink counting deliveries. Both rows must be measured
// (not skipped), with every acknowledged event delivered, and nats-server's
// CPU counted with hookgate's in the async-nats row only.
func TestHarnessAsyncNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hookgate and nats-server and drives load for ~2s")
	}
	dir := t.TempDir()
	o := shortRun(scAsync, scAsyncNATS)
	o.JSON = filepath.Join(dir, "out.json")
	rep, err := run(o, CoreSplit{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 2 {
		t.Fatalf("got %d scenarios, want async and async-nats", len(rep.Scenarios))
	}
	for _, s := range rep.Scenarios {
		if s.Skipped != "" || len(s.Rounds) != 1 {
			t.Fatalf("%s: skipped %q, %d rounds (%s); want 1 measured round", s.Name, s.Skipped, len(s.Rounds), s.Note)
		}
		r := s.Rounds[0]
		if r.Requests == 0 || r.Errors() != 0 || r.Statuses[202] != r.Requests {
			t.Fatalf("%s: %d requests, statuses %v, first error %q; want every one answered 202", s.Name, r.Requests, r.Statuses, r.FirstErr)
		}
		// Everything acknowledged in the measurement reached the sink (the
		// warm-up's and the probe's deliveries may land in it too).
		if r.Undelivered != 0 || r.Delivered < r.Requests || r.DeliveredRPS <= 0 || r.DeliveredNote != "" {
			t.Fatalf("%s: %d acknowledged, %d delivered, %d undelivered (%s); want all delivered", s.Name, r.Requests, r.Delivered, r.Undelivered, r.DeliveredNote)
		}
		// By delivery id, the probe's and the warm-up's too.
		if r.CheckedIDs <= r.Requests {
			t.Fatalf("%s: %d delivery ids checked for %d acknowledged in the measurement; want every one checked by id", s.Name, r.CheckedIDs, r.Requests)
		}
		t.Logf("%s: %d acknowledged deliveries checked by id, %d duplicated", s.Name, r.CheckedIDs, r.Duplicates)
		nats := s.Name == scAsyncNATS
		if nats && (r.QueueCPUSeconds <= 0 || r.QueueCPUSeconds > r.CPUSeconds) || !nats && r.QueueCPUSeconds != 0 {
			t.Fatalf("%s: queue server CPU %.3fs of %.3fs; want nats-server's counted (and only in async-nats)", s.Name, r.QueueCPUSeconds, r.CPUSeconds)
		}
	}
	var md bytes.Buffer
	if err := writeOutputs(rep, o, &md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| async-nats | ", "| async-nats (delivered) | ", " undelivered, ", "`async-nats`: CPU and peak RSS are hookgate's plus nats-server's"} {
		if !strings.Contains(md.String(), want) {
			t.Fatalf("markdown has no %q:\n%s", want, md.String())
		}
	}
}

// The async delivered check compares delivery ids, not counts, against a
// real sink with an id log: a duplicate that makes up the count does not
// hide a loss, and losses and duplicates are reported apart. Without ids
// (a 202 that named no event, a sink without a log) it falls back to
// counts and says so.
func TestDeliveredCheckByID(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sink processes")
	}
	events := func(ids ...string) []uint64 {
		var ks []uint64
		for _, id := range ids {
			ks = append(ks, idKey([]byte(id)))
		}
		return ks
	}
	tests := []struct {
		name      string
		idLog     bool
		sent      []string // delivery ids posted to the sink, as hookgate would
		acks      acks
		lost      int64
		dups      int64
		checked   int64
		note      string // in DeliveredNote; "" wants none
		wantCells []string
	}{
		{name: "all delivered", idLog: true, sent: []string{"evt_a.0", "evt_b.0"},
			acks: acks{n: 2, events: events("evt_a", "evt_b")}, checked: 2,
			wantCells: []string{"| async (delivered) | ", "| 0 undelivered, 0 duplicated |"}},
		{name: "a duplicate hides a loss from the count", idLog: true, sent: []string{"evt_a.0", "evt_b.0", "evt_b.0"},
			acks: acks{n: 3, events: events("evt_a", "evt_b", "evt_c")}, lost: 1, dups: 1, checked: 3, note: "queue not drained after",
			wantCells: []string{"| 1 undelivered, 1 duplicated (worst round) |", "1 of 3 acknowledged deliveries never reached the sink (compared by delivery id)", "duplicated deliveries: 1 "}},
		{name: "a 202 without an event id", idLog: true, sent: []string{"evt_a.0", "evt_b.0"},
			acks: acks{n: 2, events: events("evt_a"), noID: 1}, note: "1 of 2 acknowledgements named no event"},
		{name: "a sink without an id log", idLog: false, sent: []string{"evt_a.0"},
			acks: acks{n: 1, events: events("evt_a")}, note: "sink id log failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sink, addr, err := startSink(&Env{Dir: dir}, tt.idLog)
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Stop(time.Second)
			for _, id := range tt.sent {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				req.SetRequestURI("http://" + addr + "/deliver/1")
				req.Header.SetMethod(fasthttp.MethodPost)
				req.Header.Set(idHeader, id)
				err := fasthttp.DoTimeout(req, resp, 5*time.Second)
				code := resp.StatusCode()
				fasthttp.ReleaseRequest(req)
				fasthttp.ReleaseResponse(resp)
				if err != nil || code != 200 {
					t.Fatalf("posting %s to the sink: %d, %v", id, code, err)
				}
			}
			var r Round
			drainAsync(&r, addr, 0, tt.acks, 1, time.Second, 300*time.Millisecond)
			if r.Undelivered != tt.lost || r.Duplicates != tt.dups || r.CheckedIDs != tt.checked || r.Delivered != int64(len(tt.sent)) {
				t.Fatalf("undelivered %d, duplicated %d, checked %d, delivered %d (%s); want %d, %d, %d, %d",
					r.Undelivered, r.Duplicates, r.CheckedIDs, r.Delivered, r.DeliveredNote, tt.lost, tt.dups, tt.checked, len(tt.sent))
			}
			if tt.note == "" && r.DeliveredNote != "" || !strings.Contains(r.DeliveredNote, tt.note) {
				t.Fatalf("note %q; want %q", r.DeliveredNote, tt.note)
			}
			rep := &Report{Scenarios: []Summary{summarizeRounds(scAsync, "async", []Round{r})}}
			var md bytes.Buffer
			rep.WriteMarkdown(&md)
			for _, want := range tt.wantCells {
				if !strings.Contains(md.String(), want) {
					t.Fatalf("markdown has no %q:\n%s", want, md.String())
				}
			}
			path := filepath.Join(dir, "out.json")
			if err := rep.WriteJSON(path); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var back Report
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if got := back.Scenarios[0].Rounds[0]; got.Undelivered != tt.lost || got.Duplicates != tt.dups || got.CheckedIDs != tt.checked {
				t.Fatalf("JSON round %+v; want undelivered %d, duplicates %d, checked_ids %d\n%s", got, tt.lost, tt.dups, tt.checked, b)
			}
		})
	}
}

// --baseline-src: the @base twins build their plugins from the baseline's
// checkout, not from this one, and a directory that is no checkout is
// refused before anything runs.
func TestBaselineSrc(t *testing.T) {
	var stderr bytes.Buffer
	if code := mainErr([]string{"--baseline-src", t.TempDir()}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "no go.mod there") {
		t.Fatalf("exit %d, stderr %q; want 2 and the missing go.mod named", code, stderr.String())
	}

	old := t.TempDir() // a checkout with no stock plugins at all
	if err := os.WriteFile(filepath.Join(old, "go.mod"), []byte("module example.com/old\n\ngo 1.24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Dir: t.TempDir(), Hookgate: self, Baseline: self, BaselineSrc: old}
	var base *Scenario
	for _, sc := range withBaselines([]Scenario{hookgateScenario(scChain, "chain", plan{mode: "sync", targets: 1, steps: chainSteps})}) {
		if sc.Name == scChain+baseSuffix {
			base = &sc
		}
	}
	if base == nil {
		t.Fatal("withBaselines made no @base twin")
	}
	var skip *SkipError
	if err := base.Prepare(env); !errors.As(err, &skip) || !strings.Contains(skip.Reason, "plugins/filter does not exist") {
		t.Fatalf("@base Prepare: %v; want the baseline checkout's missing plugins/filter", err)
	}
}

// An AssemblyScript step is built with asc from the baseline checkout:
// missing there, the twin is skipped; broken there, asc says why.
func TestBaselineSrcAssemblyScript(t *testing.T) {
	old := t.TempDir()
	if err := os.WriteFile(filepath.Join(old, "go.mod"), []byte("module example.com/old\n\ngo 1.24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	prepare := func() error {
		env := &Env{Dir: t.TempDir(), Hookgate: self, Baseline: self, BaselineSrc: old}
		for _, sc := range withBaselines([]Scenario{hookgateScenario(scHowxmAS, "as", *scenarioPlan(t, scHowxmAS))}) {
			if sc.Name == scHowxmAS+baseSuffix {
				return sc.Prepare(env)
			}
		}
		t.Fatal("withBaselines made no @base twin")
		return nil
	}
	var skip *SkipError
	if err := prepare(); !errors.As(err, &skip) || !strings.Contains(skip.Reason, "plugins/howxm-nps/assemblyscript does not exist") {
		t.Fatalf("@base Prepare: %v; want the baseline checkout's missing project", err)
	}
	project := filepath.Join(old, "plugins", "howxm-nps", "assemblyscript", "assembly")
	if err := os.MkdirAll(project, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, "index.ts"), []byte("export function hookgate_handle(: i32 {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepare(); !errors.As(err, &skip) || !strings.Contains(skip.Reason, "with asc") {
		t.Fatalf("@base Prepare: %v; want asc's refusal of the broken project", err)
	}
}

// A scenario and its --baseline twin are compared round by round, only
// in rounds where both were measured.
func TestPairedNote(t *testing.T) {
	round := func(i int, rps, cpuSeconds float64) Round {
		return Round{Index: i, RPS: rps, Requests: int64(rps * 10), CPUSeconds: cpuSeconds}
	}
	now := summarizeRounds("chain3", "chain", []Round{round(1, 1100, 8), round(2, 1200, 8), round(3, 900, 8)})
	// The baseline's round 2 failed: round 2 has nothing to pair with.
	base := summarizeRounds("chain3@base", "chain", []Round{round(1, 1000, 8), round(3, 1000, 10)})
	rep := &Report{Scenarios: []Summary{now, base}}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	// Round 1: 1.10x req/s, CPU per request 8e6/11000 against 8e6/10000;
	// round 3: 0.90x, 8e6/9000 against 10e6/10000.
	want := "`chain3` against `chain3@base`, round by round: req/s 1.10x, 0.90x (median 1.00x); CPU per request 0.91x, 0.89x (median 0.90x)"
	if !strings.Contains(md.String(), want) {
		t.Fatalf("markdown lacks\n%s\nin\n%s", want, md.String())
	}
	if pairedNote(now, summarizeRounds("x@base", "x", nil)) != "" {
		t.Fatal("a note without any paired round")
	}
}

// A scenario and its twin take turns going first.
func TestRoundOrder(t *testing.T) {
	names := func(scs []Scenario) string {
		var ns []string
		for _, sc := range scs {
			ns = append(ns, sc.Name)
		}
		return strings.Join(ns, ",")
	}
	scs := []Scenario{{Name: "direct"}, {Name: "passthrough"}, {Name: "passthrough@base"}, {Name: "async"}, {Name: "async@base"}}
	if got, want := names(roundOrder(scs, 0)), "direct,passthrough,passthrough@base,async,async@base"; got != want {
		t.Fatalf("round 1: %s, want %s", got, want)
	}
	if got, want := names(roundOrder(scs, 1)), "direct,passthrough@base,passthrough,async@base,async"; got != want {
		t.Fatalf("round 2: %s, want %s", got, want)
	}
	if got := names(scs); got != "direct,passthrough,passthrough@base,async,async@base" {
		t.Fatalf("roundOrder changed its argument: %s", got)
	}
}

// TestGoalsRead: the open issues' bars are read off the medians, the async
// bar by the queue's sync mode, and a lost delivery in any round fails
// the delivered bar.
func TestGoalsRead(t *testing.T) {
	sc := func(name string, rps, p99, cpu float64, undelivered int64) Summary {
		return Summary{Name: name, Rounds: []Round{{Undelivered: undelivered}}, RPS: Spread{Median: rps},
			P99: Spread{Median: p99}, CPUPerReq: Spread{Median: cpu}}
	}
	r := &Report{Scenarios: []Summary{
		sc(scNginx, 20000, 5, 25, 0), sc(scPassthrough, 21000, 4.9, 35, 0), sc(scHowxm, 16000, 6, 50, 0),
		sc(scChain, 12000, 8, 80, 0), sc(scAsync, 10000, 9, 71, 0), sc(scAsyncNATS, 6000, 12, 140, 1),
	}}
	status := map[string]string{}
	for _, g := range evaluateGoals(r, Options{Conns: 64, QueueSync: "always"}) {
		status[g.Text] = g.Status
	}
	want := map[string]string{
		"hookgate sync passthrough >= 1.0x nginx req/s at 64 connections, with p99 no worse":               "met",
		"hookgate sync passthrough >= 1.2x nginx req/s at 64 connections, with p99 no worse (the compass)": "not met",
		"hookgate sync with howxm-nps >= 0.8x passthrough req/s":                                           "not met", // 0.76x
		"hookgate sync with the chain of three >= 0.6x passthrough req/s":                                  "not met", // 0.57x
		`hookgate async acknowledged ingest, sync = "always", >= 0.5x passthrough req/s`:                   "not met", // 0.48x
		"CPU per async event <= 2x a passthrough request's":                                                "not met", // 71 / 35 = 2.03x
		"async: every acknowledged event delivered":                                                        "met",
		"async-nats: every acknowledged event delivered":                                                   "not met",
	}
	for text, st := range want {
		if status[text] != st {
			t.Errorf("%q: %q, want %q", text, status[text], st)
		}
	}
	for _, g := range evaluateGoals(r, Options{Conns: 64, QueueSync: "batch"}) {
		if strings.Contains(g.Text, `sync = "batch"`) && (g.Status != "not met" || !strings.Contains(g.Detail, "0.48x")) {
			t.Errorf("batch bar: %+v", g)
		}
	}
	if gs := evaluateGoals(&Report{}, Options{Conns: 64}); gs[0].Status != "n/a" {
		t.Errorf("no rows: %+v", gs[0])
	}
}

// Each goal's detail shows the ratio round by round, paired by round,
// beside the ratio of the medians the goal is read from.
func TestGoalsByRound(t *testing.T) {
	rounds := func(rps ...float64) []Round {
		var rs []Round
		for i, x := range rps {
			rs = append(rs, Round{Index: i + 1, RPS: x, Requests: int64(x * 10), CPUSeconds: x / 1000})
		}
		return rs
	}
	pass := Summary{Name: scPassthrough, Rounds: rounds(20000, 10000), RPS: Spread{Median: 15000}, CPUPerReq: Spread{Median: 100}}
	howxm := Summary{Name: scHowxm, Rounds: rounds(16000, 7000), RPS: Spread{Median: 11500}, CPUPerReq: Spread{Median: 100}}
	async := Summary{Name: scAsync, Rounds: []Round{{Index: 2, RPS: 5000, Requests: 50000, CPUSeconds: 10}, {Index: 1, RPS: 9000, Requests: 90000, CPUSeconds: 9}}, RPS: Spread{Median: 7000}, CPUPerReq: Spread{Median: 150}}
	r := &Report{Scenarios: []Summary{pass, howxm, async}}
	detail := map[string]string{}
	for _, g := range evaluateGoals(r, Options{Conns: 64, QueueSync: "always"}) {
		detail[g.Text] = g.Detail
	}
	for text, want := range map[string]string{
		"hookgate sync with howxm-nps >= 0.8x passthrough req/s":                         "0.77x passthrough; round by round 0.80, 0.70",
		`hookgate async acknowledged ingest, sync = "always", >= 0.5x passthrough req/s`: "0.47x passthrough; round by round 0.50, 0.45",
		// CPU per request: pass is 0.1 ms in both rounds; async 0.1 ms in
		// round 1 and 0.2 ms in round 2.
		"CPU per async event <= 2x a passthrough request's": "150.0 / 100.0 µs = 1.50x; round by round 2.00, 1.00",
	} {
		if detail[text] != want {
			t.Errorf("%q: detail %q, want %q", text, detail[text], want)
		}
	}

	// From three rounds on, the median of the paired ratios too: here
	// 0.50 (round 3's slow passthrough made its ratio 1.10).
	pass3 := Summary{Name: scPassthrough, Rounds: rounds(20000, 20000, 10000), RPS: Spread{Median: 20000}, CPUPerReq: Spread{Median: 100}}
	chain3 := Summary{Name: scChain, Rounds: rounds(10000, 9000, 11000), RPS: Spread{Median: 10000}, CPUPerReq: Spread{Median: 100}}
	r = &Report{Scenarios: []Summary{pass3, chain3}}
	found := false
	for _, g := range evaluateGoals(r, Options{Conns: 64, QueueSync: "always"}) {
		if g.Text != "hookgate sync with the chain of three >= 0.6x passthrough req/s" {
			continue
		}
		found = true
		if want := "0.50x passthrough; round by round (median 0.50) 0.50, 0.45, 1.10"; g.Detail != want || g.Status != "not met" {
			t.Errorf("chain3: %s, %q; want not met, %q", g.Status, g.Detail, want)
		}
	}
	if !found {
		t.Error("no chain3 goal in the report")
	}
}

// TestHarnessPprof runs passthrough for a second with --pprof: round 1's
// Go CPU profile comes from hookgate's admin listener and is a gzipped
// pprof profile, what `go tool pprof` reads (and merges, with -proto,
// into a profile for profile-guided optimization).
func TestHarnessPprof(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hookgate and drives load for ~1s")
	}
	dir := t.TempDir()
	o := shortRun(scPassthrough)
	o.Pprof = filepath.Join(dir, "prof")
	rep, err := run(o, CoreSplit{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 1 || rep.Scenarios[0].Skipped != "" || len(rep.Scenarios[0].Rounds) != 1 {
		t.Fatalf("scenarios %+v; want passthrough measured once", rep.Scenarios)
	}
	if r := rep.Scenarios[0].Rounds[0]; r.Requests == 0 || r.Errors() != 0 {
		t.Fatalf("%d requests, %d errors (%s); want every one answered", r.Requests, r.Errors(), r.FirstErr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "prof", scPassthrough+".pprof"))
	if err != nil {
		t.Fatal(err)
	}
	// A CPU profile is gzipped protobuf, with samples in it after a
	// second of load: more than a header's few hundred bytes.
	if len(b) < 1000 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("the profile is %d bytes starting %x; want a gzipped pprof profile with samples", len(b), b[:min(len(b), 4)])
	}
}

// shortRun is the harness's options for a test: one round of a second on
// the seed payload, four connections, unpinned.
func shortRun(scenarios ...string) Options {
	return Options{
		Duration: time.Second, Warmup: 100 * time.Millisecond, Conns: 4, Rounds: 1,
		Scenarios: scenarios, Payload: filepath.Join("..", "testdata", "howxm_entry_submitted.json"),
		Pin: "off", QueueSync: "always", Drain: 30 * time.Second, Timeout: 5 * time.Second,
		Command: "test",
	}
}

// TestProbeSaysWhatTheChildDid: a server that closes the probe's
// connection without answering makes the probe fail with the child's
// state and its last lines, whether it exited or still runs, so a
// scenario skipped in CI says why.
func TestProbeSaysWhatTheChildDid(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close() // no answer
		}
	}()
	url := "http://" + ln.Addr().String() + "/hooks/bench"
	logPath := filepath.Join(t.TempDir(), "hg.log")
	if err := os.WriteFile(logPath, []byte("starting\nqueue: nats: connect refused\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	exited := &Child{Name: "async-nats-0", Log: logPath, done: make(chan struct{}), err: errors.New("exit status 1")}
	close(exited.done)
	_, err = probe(url, []byte(`{}`), true, exited)
	if err == nil || !strings.Contains(err.Error(), "async-nats-0 exited (exit status 1); it last printed: starting | queue: nats: connect refused") {
		t.Fatalf("probe of a child that exited: %v", err)
	}

	running := &Child{Name: "async-0", Log: logPath, done: make(chan struct{})}
	_, err = probe(url, []byte(`{}`), true, running)
	if err == nil || !strings.Contains(err.Error(), "async-0 is still running; it last printed: starting | queue: nats: connect refused") {
		t.Fatalf("probe of a child still running: %v", err)
	}
}

// --pipeline past the targets' max_conns is refused before anything runs,
// naming the bound.
func TestPipelineFlagBound(t *testing.T) {
	for _, args := range [][]string{{"--pipeline", "129"}, {"--pipeline", "-1"}, {"--conns", "100", "--pipeline", "201"}, {"--target-conns", "16", "--pipeline", "17"}} {
		var stderr bytes.Buffer
		if code := mainErr(args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "--pipeline must be between 0 and the targets' max_conns") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and the bound", args, code, stderr.String())
		}
	}
	for _, args := range [][]string{{"--target-conns", "-1"}, {"--target-conns", "10001"}} {
		var stderr bytes.Buffer
		if code := mainErr(args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "--target-conns must be between") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and the bound", args, code, stderr.String())
		}
	}
}
