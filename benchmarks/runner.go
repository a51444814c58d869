package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/plugins/plugintest"
)

// Options are the harness flags, parsed.
type Options struct {
	Duration  time.Duration
	Warmup    time.Duration
	Conns     int
	Rate      float64
	Rounds    int
	Scenarios []string
	Payload   string // file
	JSON      string
	Markdown  string
	Pin       string // "auto" | "off"
	QueueSync string
	Pipeline  int // the targets' pipeline setting in every hookgate scenario; 0 = off
	// TargetConns is every target's max_conns, so each lane's worker
	// count; 0 means targetConns(Conns), the harness's default.
	TargetConns int
	Drain       time.Duration // async: how long to wait for the queue to drain
	Timeout     time.Duration // per request
	Perf        string        // profile the first round of each scenario into this dir
	Pprof       string        // fetch hookgate's Go CPU profile of the first round into this dir
	Hookgate    string        // a hookgate binary to measure instead of building ./cmd/hookgate
	Baseline    string        // a second hookgate binary, measured as "<scenario>@base" in the same rounds
	// BaselineSrc is a checkout of the baseline revision: the @base
	// scenarios build their plugins from it, and the baseline binary when
	// Baseline is "".
	BaselineSrc string

	// User mode: load-test a running deployment.
	Target  string
	Method  string
	Headers [][2]string
	Pid     int // optional process to measure in user mode

	Command string    // the command line, for the report
	Log     io.Writer // progress lines; nil = none
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

func (o *Options) loadModel() string {
	if o.Rate > 0 {
		return fmt.Sprintf("open loop at %.0f req/s (latency from the scheduled send time), at most %d connections", o.Rate, o.Conns)
	}
	return fmt.Sprintf("closed loop, %d connections sending back to back", o.Conns)
}

// run is the whole harness: build, prepare, measure every scenario round
// robin, summarize.
func run(o Options, split CoreSplit) (*Report, error) {
	payload, err := os.ReadFile(o.Payload)
	if err != nil {
		return nil, fmt.Errorf("benchmarks: reading the payload: %v; pass --payload FILE", err)
	}
	rep := &Report{
		Date:        time.Now().UTC(),
		Machine:     describeMachine(),
		Split:       split,
		Command:     o.Command,
		Load:        o.loadModel(),
		Payload:     fmt.Sprintf("%s (%d bytes)", o.Payload, len(payload)),
		Duration:    o.Duration,
		Warmup:      o.Warmup,
		Rounds:      o.Rounds,
		Conns:       o.Conns,
		Rate:        o.Rate,
		Perf:        o.Perf,
		Pipeline:    o.Pipeline,
		TargetConns: o.targetConns(),
		LoadBefore:  loadAvg(),
	}
	defer func() { rep.LoadAfter = loadAvg() }()
	dir, err := os.MkdirTemp("", "hookgate-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	env := &Env{Dir: dir, Split: split, Conns: o.Conns, Payload: payload, QueueSync: o.QueueSync, Pipeline: o.Pipeline, TargetConns: o.targetConns(), Baseline: o.Baseline, BaselineSrc: o.BaselineSrc, Pprof: o.Pprof != ""}

	if o.Target != "" {
		return runUser(o, rep, env)
	}

	scs, err := selectScenarios(o.Scenarios)
	if err != nil {
		return nil, err
	}
	if o.Baseline != "" || o.BaselineSrc != "" {
		scs = withBaselines(scs)
	}
	if o.Baseline == "" && o.BaselineSrc != "" && needsHookgate(scs) {
		o.logf("building the baseline hookgate from %s ...", o.BaselineSrc)
		var why string
		if env.Baseline, why = goBuildIn(o.BaselineSrc, filepath.Join(dir, "hookgate-base"), "./cmd/hookgate", split); why != "" {
			return nil, fmt.Errorf("benchmarks: the baseline in %s did not build: %s", o.BaselineSrc, why)
		}
	}
	if o.Hookgate != "" {
		env.Hookgate = o.Hookgate
	} else if needsHookgate(scs) {
		o.logf("building hookgate ...")
		env.Hookgate, env.HookgateErr = buildHookgate(dir, split)
		if env.HookgateErr != "" {
			o.logf("hookgate did not build: %s", env.HookgateErr)
		}
	}
	if needsNATS(scs) {
		o.logf("building nats-server ...")
		env.NATSServer, env.NATSErr = buildNATS(dir, split)
		if env.NATSErr != "" {
			o.logf("nats-server did not build: %s", env.NATSErr)
		}
	}

	// Prepare once; skipped scenarios keep their reason.
	rounds := map[string][]Round{}
	skipped := map[string]string{}
	notes := map[string][]string{}
	var active []Scenario
	for _, sc := range scs {
		o.logf("preparing %s ...", sc.Name)
		if err := sc.Prepare(env); err != nil {
			reason, ok := isSkip(err)
			if !ok {
				reason = err.Error()
			}
			skipped[sc.Name] = reason
			o.logf("  skipped: %s", reason)
			continue
		}
		active = append(active, sc)
	}

	// Round robin: s1, s2, ..., s1, s2, ... so a slow minute on a shared
	// machine hits every scenario alike instead of one.
	for round := 0; round < o.Rounds; round++ {
		for _, sc := range roundOrder(active, round) {
			if _, ok := skipped[sc.Name]; ok {
				continue
			}
			o.logf("round %d/%d: %s ...", round+1, o.Rounds, sc.Name)
			r, err := measure(o, env, sc, round)
			if err != nil {
				msg := firstLine(err.Error())
				if reason, ok := isSkip(err); ok || round == 0 && len(rounds[sc.Name]) == 0 {
					if ok {
						msg = reason
					}
					// It never worked: a missing feature, not a bad round.
					skipped[sc.Name] = msg
					o.logf("  skipped: %s", msg)
					continue
				}
				notes[sc.Name] = append(notes[sc.Name], fmt.Sprintf("round %d failed: %s", round+1, msg))
				o.logf("  failed: %s", msg)
				continue
			}
			o.logf("  %.0f req/s, p50 %.2fms p99 %.2fms, %d errors, cpu %.2fs", r.RPS, r.Latency.P50, r.Latency.P99, r.Errors(), r.CPUSeconds)
			r.Index = round + 1
			rounds[sc.Name] = append(rounds[sc.Name], r)
		}
	}

	for _, sc := range scs {
		s := summarizeRounds(sc.Name, sc.Title, rounds[sc.Name])
		s.Skipped = skipped[sc.Name]
		s.Note = strings.Join(notes[sc.Name], "; ")
		rep.Scenarios = append(rep.Scenarios, s)
	}
	rep.Goals = evaluateGoals(rep, o)
	return rep, nil
}

// measure starts one scenario, warms it up, measures it and stops it.
func measure(o Options, env *Env, sc Scenario, round int) (Round, error) {
	// Write back what earlier scenarios left dirty in the page cache (a
	// queue's files, nats-server's store) now, not during this measurement:
	// the kernel's flusher would do it on either core and bill no process.
	syscall.Sync()
	rn, err := sc.Start(env, round)
	if err != nil {
		return Round{}, err
	}
	defer rn.Stop()
	gen, err := NewGenerator(LoadSpec{
		URL: rn.URL, Method: "POST", Body: env.Payload, ContentType: "application/json",
		Conns: o.Conns, Rate: o.Rate, Timeout: o.Timeout, EventIDs: rn.Async,
	})
	if err != nil {
		return Round{}, err
	}
	defer gen.Close()

	a := acks{n: 1} // the probe
	if rn.ProbeID != "" {
		a.events = append(a.events, idKey([]byte(rn.ProbeID)))
	} else {
		a.noID++
	}
	if o.Warmup > 0 {
		w := gen.Run(o.Warmup)
		a.add(w)
	}
	pid := rn.Measured.Pid()
	cpu0 := treeCPU(pid)
	queueCPU0 := rn.queueCPU()
	sinkCPU0 := treeCPU(rn.Sink.Pid())
	genCPU0, _ := procCPU(os.Getpid())
	var count0 int64
	if rn.Async {
		if count0, err = sinkCount(rn.SinkAddr); err != nil {
			return Round{}, err
		}
	}
	var prof *perfRun
	if o.Perf != "" && round == 0 {
		if prof, err = startPerf(o.Perf, sc.Name, pid, o.Duration); err != nil {
			return Round{}, err
		}
	}
	var gp *pprofRun
	if rn.Admin != "" && round == 0 {
		gp = startPprof(o.Pprof, sc.Name, rn.Admin, o.Duration)
	}
	s := gen.Run(o.Duration)
	cpu1 := treeCPU(pid)
	queueCPU1 := rn.queueCPU()
	genCPU1, _ := procCPU(os.Getpid())
	if prof != nil {
		top, err := prof.finish()
		if err != nil {
			return Round{}, err
		}
		o.logf("  perf (self): %s", top)
	}
	if gp != nil {
		path, err := gp.finish()
		if err != nil {
			return Round{}, err
		}
		o.logf("  Go CPU profile: %s", path)
	}
	r := Round{
		Requests: s.Requests, RPS: s.RPS(), Latency: summarize(s.Hist),
		Non2xx: s.Non2xx, Transport: s.Transport, Unsent: s.Unsent,
		Elapsed: s.Elapsed, Statuses: s.Statuses, FirstErr: s.FirstErr,
		CPUSeconds:     (cpu1 - cpu0).Seconds(),
		PeakRSS:        treePeakRSS(pid),
		SinkCPUSeconds: (treeCPU(rn.Sink.Pid()) - sinkCPU0).Seconds(),
		GenCPUSeconds:  (genCPU1 - genCPU0).Seconds(),
	}
	if rn.Measured == rn.Sink {
		r.SinkCPUSeconds = 0
	}
	if rn.Queue != nil {
		// The queue server does part of what an acknowledgement costs
		// (the Pebble scenario's fsyncs happen inside hookgate): its CPU
		// and memory count with the gateway's, and its share is kept.
		r.QueueCPUSeconds = (queueCPU1 - queueCPU0).Seconds()
		r.CPUSeconds += r.QueueCPUSeconds
		r.PeakRSS += treePeakRSS(rn.Queue.Pid())
	}
	for _, c := range []*Child{rn.Measured, rn.Queue} {
		if c != nil && c.Exited() {
			return r, fmt.Errorf("%s exited during the run:\n%s", c.Name, c.tail())
		}
	}
	if rn.Async {
		a.add(s)
		drainAsync(&r, rn.SinkAddr, count0, a, rn.Targets, s.Elapsed, o.Drain)
	}
	return r, nil
}

// acks is what an async run was promised: every 2xx (202) of the probe,
// the warm-up and the measurement, and the idKey of the event id each one
// named.
type acks struct {
	n      int64
	events []uint64
	noID   int64 // 202s that named no event: counted, not checked by id
}

func (a *acks) add(s *Sample) {
	a.n += s.OK
	a.events = append(a.events, s.EventIDs...)
	a.noID += s.NoID
}

// deliveryKeys is the idKey of every delivery id the events promise:
// delivery i of event E is "E.i", one per target.
func deliveryKeys(events []uint64, targets int) []uint64 {
	keys := make([]uint64, 0, len(events)*targets)
	for _, e := range events {
		for i := range targets {
			keys = append(keys, idKeyAppend(e, []byte("."+strconv.Itoa(i))))
		}
	}
	return keys
}

// compareIDs says how many of want (the promised delivery keys) are not
// in got (what the sink received), and how many of got repeat a key
// already received. Counts alone cannot tell: a duplicate makes up for a
// loss. Keys of 0 (a delivery without an id) are neither.
func compareIDs(want, got []uint64) (lost, dups int64) {
	g := slices.Clone(got)
	slices.Sort(g)
	for i := 1; i < len(g); i++ {
		if g[i] != 0 && g[i] == g[i-1] {
			dups++
		}
	}
	for _, k := range want {
		if _, ok := slices.BinarySearch(g, k); !ok {
			lost++
		}
	}
	return lost, dups
}

// drainAsync waits until the sink has received every acknowledged event
// (or progress stops, or the limit passes) and fills the delivered
// figures. The delivered rate counts what reached the sink from the start
// of the measurement over the measurement plus the drain: the rate the
// delivery side sustains, whatever the ingest side did. Undelivered and
// Duplicates compare delivery ids when every 202 named its event and the
// sink keeps an id log, counts otherwise (and the note says so).
func drainAsync(r *Round, sinkAddr string, count0 int64, a acks, targets int, elapsed, limit time.Duration) {
	start := time.Now()
	last, lastChange := int64(-1), time.Now()
	var (
		n         int64
		want, got []uint64
		checked   = int64(-1) // the count at the last id comparison
		lost      int64
		byID      = a.noID == 0
		idNote    string
	)
	if byID {
		want = deliveryKeys(a.events, targets)
	} else {
		idNote = fmt.Sprintf("%d of %d acknowledgements named no event (no %s): delivered checked by count only", a.noID, a.n, eventIDHeader)
	}
	// compare fetches what is new in the sink's id log and compares; on a
	// failure it falls back to counts.
	compare := func() {
		var err error
		if got, err = sinkIDs(sinkAddr, got); err != nil {
			byID, idNote = false, "sink id log failed ("+err.Error()+"): delivered checked by count only"
			return
		}
		lost, r.Duplicates = compareIDs(want, got)
	}
	for {
		c, err := sinkCount(sinkAddr)
		if err != nil {
			r.DeliveredNote = "sink count failed: " + err.Error()
			break
		}
		n = c
		if n >= a.n && !byID {
			break
		}
		if n >= a.n && n != checked {
			// Enough deliveries by count; by id, duplicates may stand in
			// for some that are still to come.
			checked = n
			if compare(); !byID || lost == 0 {
				break
			}
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		if time.Since(lastChange) > 3*time.Second {
			r.DeliveredNote = "deliveries stopped before the queue drained"
			break
		}
		if time.Since(start) > limit {
			r.DeliveredNote = fmt.Sprintf("queue not drained after %v", limit)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Drain = time.Since(start)
	r.Delivered = n - count0
	if byID && checked != n {
		compare()
	}
	switch {
	case byID:
		r.Undelivered = lost
		r.CheckedIDs = int64(len(want))
	case a.n > n:
		r.Undelivered = a.n - n
	}
	if idNote != "" {
		r.DeliveredNote = strings.TrimPrefix(r.DeliveredNote+"; "+idNote, "; ")
	}
	if t := (elapsed + r.Drain).Seconds(); t > 0 {
		r.DeliveredRPS = float64(r.Delivered) / t
	}
}

// runUser is user mode: one scenario, the deployment at --target, no
// child processes.
func runUser(o Options, rep *Report, env *Env) (*Report, error) {
	gen, err := NewGenerator(LoadSpec{
		URL: o.Target, Method: o.Method, Body: env.Payload, ContentType: "application/json",
		Headers: o.Headers, Conns: o.Conns, Rate: o.Rate, Timeout: o.Timeout,
	})
	if err != nil {
		return nil, err
	}
	defer gen.Close()
	var rs []Round
	for round := 0; round < o.Rounds; round++ {
		o.logf("round %d/%d: %s ...", round+1, o.Rounds, o.Target)
		if o.Warmup > 0 {
			gen.Run(o.Warmup)
		}
		var cpu0 time.Duration
		if o.Pid > 0 {
			cpu0 = treeCPU(o.Pid)
		}
		s := gen.Run(o.Duration)
		r := Round{
			Requests: s.Requests, RPS: s.RPS(), Latency: summarize(s.Hist),
			Non2xx: s.Non2xx, Transport: s.Transport, Unsent: s.Unsent,
			Elapsed: s.Elapsed, Statuses: s.Statuses, FirstErr: s.FirstErr,
		}
		if o.Pid > 0 {
			r.CPUSeconds = (treeCPU(o.Pid) - cpu0).Seconds()
			r.PeakRSS = treePeakRSS(o.Pid)
		}
		o.logf("  %.0f req/s, p50 %.2fms p99 %.2fms, %d errors", r.RPS, r.Latency.P50, r.Latency.P99, r.Errors())
		rs = append(rs, r)
	}
	s := summarizeRounds("target", o.Method+" "+o.Target, rs)
	if o.Pid == 0 {
		s.Note = "CPU and RSS not measured: pass --pid PID of the gateway to measure them"
	}
	rep.Scenarios = []Summary{s}
	rep.UserMode = true
	return rep, nil
}

func selectScenarios(names []string) ([]Scenario, error) {
	all := allScenarios()
	if len(names) == 0 {
		return all, nil
	}
	var out []Scenario
	for _, n := range names {
		found := false
		for _, sc := range all {
			if sc.Name == n {
				out = append(out, sc)
				found = true
			}
		}
		if !found {
			var known []string
			for _, sc := range all {
				known = append(known, sc.Name)
			}
			return nil, fmt.Errorf("benchmarks: unknown scenario %q; pick from %s", n, strings.Join(known, ","))
		}
	}
	return out, nil
}

func needsHookgate(scs []Scenario) bool {
	for _, sc := range scs {
		if sc.Name != scDirect && sc.Name != scNginx {
			return true
		}
	}
	return false
}

// buildHookgate builds ./cmd/hookgate once for the whole run. It returns
// the binary, or "" and the reason it did not build.
func buildHookgate(dir string, split CoreSplit) (string, string) {
	return goBuild(filepath.Join(dir, "hookgate"), "./cmd/hookgate", split)
}

// goBuild builds the main package pkg of this module (or one it requires)
// into bin. It returns bin, or "" and the reason it did not build.
func goBuild(bin, pkg string, split CoreSplit) (string, string) {
	root, err := plugintest.ModuleRoot()
	if err != nil {
		return "", err.Error()
	}
	return goBuildIn(root, bin, pkg, split)
}

// goBuildIn is goBuild in the module rooted at root.
func goBuildIn(root, bin, pkg string, split CoreSplit) (string, string) {
	argv := []string{"go", "build", "-o", bin, pkg}
	if split.Pinned && split.Taskset != "" {
		// The harness runs pinned to its half; the compiler need not be.
		all := append(append([]int(nil), split.Gen...), split.Srv...)
		argv = append([]string{split.Taskset, "-c", cpuList(all)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return "", firstLine(msg)
	}
	return bin, ""
}

// roundOrder is the order of one round: scs, with every scenario and its
// --baseline twin swapped in odd rounds, so neither always runs first
// (what the one before left behind, warm or dirty, would otherwise favour
// the same side of every pair).
func roundOrder(scs []Scenario, round int) []Scenario {
	if round%2 == 0 {
		return scs
	}
	out := append([]Scenario(nil), scs...)
	for i := 0; i+1 < len(out); i++ {
		if out[i+1].Name == out[i].Name+baseSuffix {
			out[i], out[i+1] = out[i+1], out[i]
			i++
		}
	}
	return out
}
