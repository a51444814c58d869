// Command benchmarks is hookgate's load harness: it starts a sink, nginx
// and hookgate on loopback, drives load at each with a fasthttp client,
// and prints one table with the ceiling (direct to the sink), the
// reference proxy (nginx) and hookgate's scenarios side by side.
//
//	go run ./benchmarks --duration 10s --rounds 3 --conns 64
//	go run ./benchmarks --target http://127.0.0.1:8080/hooks/x --payload FILE --rate 2000 --duration 30s
//
// See benchmarks/README.md for the scenarios, the load models and the
// latest table.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
)

const usage = `Usage: go run ./benchmarks [flags]

Measures hookgate against the sink it forwards to (the ceiling) and nginx (a
reference proxy), interleaved over several rounds, and prints a markdown table.
With --target it load-tests a running deployment instead.

Flags:
`

func main() {
	if os.Getenv(envRole) == "sink" {
		runSinkRole()
		return
	}
	os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
}

// headerFlag collects repeated --header "Name: value".
type headerFlag [][2]string

func (h *headerFlag) String() string { return "" }
func (h *headerFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return errors.New(`want "Name: value"`)
	}
	*h = append(*h, [2]string{strings.TrimSpace(k), strings.TrimSpace(val)})
	return nil
}

func mainErr(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchmarks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var o Options
	var scenarios string
	var headers headerFlag
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time per scenario per round")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "unmeasured load before each measurement")
	fs.IntVar(&o.Conns, "conns", 64, "connections (closed loop), or the most requests in flight (open loop)")
	fs.Float64Var(&o.Rate, "rate", 0, "open loop: requests per second; 0 means closed loop")
	fs.IntVar(&o.Rounds, "rounds", 3, "rounds; each round runs every scenario once")
	fs.StringVar(&scenarios, "scenarios", "", "comma-separated scenarios (default all): "+strings.Join(scenarioNames(), ","))
	fs.StringVar(&o.Payload, "payload", "testdata/howxm_entry_submitted.json", "request body file")
	fs.StringVar(&o.JSON, "json", "", "also write the full report, every round, as JSON to FILE")
	fs.StringVar(&o.Markdown, "markdown", "", "also write the markdown table to FILE")
	fs.StringVar(&o.Pin, "pin", "auto", "auto: split the CPUs between load generator and servers with taskset; off: don't")
	fs.StringVar(&o.QueueSync, "queue-sync", "always", "async scenario's [queue] sync: always or batch")
	fs.IntVar(&o.Pipeline, "pipeline", 0, "the targets' pipeline setting (HTTP/1.1 pipelining over N connections) in every hookgate scenario; 0, the default, leaves it off")
	fs.IntVar(&o.TargetConns, "target-conns", 0, "the targets' max_conns in every hookgate scenario (an async lane's delivery workers); 0, the default, means --conns, at least the product's default of 64")
	fs.DurationVar(&o.Drain, "drain", 30*time.Second, "async: longest wait for the queue to drain after the load")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "per request timeout")
	fs.StringVar(&o.Perf, "perf", "", "profile the server under test with Linux perf during round 1 of each scenario; reports go to DIR")
	fs.StringVar(&o.Pprof, "pprof", "", "fetch a Go CPU profile of hookgate from its admin listener during round 1 of each hookgate scenario; profiles go to DIR/<scenario>.pprof, for go tool pprof")
	fs.StringVar(&o.Hookgate, "hookgate", "", "measure this hookgate binary instead of building ./cmd/hookgate")
	fs.StringVar(&o.Baseline, "baseline", "", "also measure every hookgate scenario with this binary, as <scenario>@base in the same rounds (before/after side by side)")
	fs.StringVar(&o.BaselineSrc, "baseline-src", "", "a checkout of the baseline revision (git worktree add DIR REV): the @base scenarios' plugins are built from it, and so is the baseline binary unless --baseline names one")
	fs.StringVar(&o.Target, "target", "", "user mode: load-test this running URL instead of the scenarios")
	fs.StringVar(&o.Method, "method", "POST", "user mode: request method")
	fs.Var(&headers, "header", `user mode: extra request header "Name: value" (repeatable)`)
	fs.IntVar(&o.Pid, "pid", 0, "user mode: measure CPU and peak RSS of this process (the gateway)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "benchmarks: unexpected argument %q; see --help\n", fs.Arg(0))
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.Target != "" && !set["rounds"] {
		o.Rounds = 1 // a user's run: one long measurement unless asked
	}
	if err := checkOptions(&o); err != nil {
		fmt.Fprintf(stderr, "benchmarks: %v\n", err)
		return 2
	}
	if scenarios != "" {
		o.Scenarios = strings.Split(scenarios, ",")
	}
	o.Headers = headers
	o.Command = commandLine(args)
	o.Log = stderr

	split := pinSelf(o.Pin)
	go func() {
		// Ctrl-C: stop the servers this run started, then leave.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		<-ch
		fmt.Fprintln(stderr, "benchmarks: interrupted; stopping the servers it started")
		stopAll()
		os.Exit(130)
	}()
	// The pinned copy read GOMAXPROCS already; the go commands it runs
	// (wasm builds) should not inherit it.
	os.Unsetenv("GOMAXPROCS")
	rep, err := run(o, split)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	if err := writeOutputs(rep, o, stdout); err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	return 0
}

// writeOutputs prints the table and writes the --markdown and --json files.
func writeOutputs(rep *Report, o Options, stdout io.Writer) error {
	rep.WriteMarkdown(stdout)
	if o.Markdown != "" {
		f, err := os.Create(o.Markdown)
		if err != nil {
			return fmt.Errorf("benchmarks: writing --markdown: %v", err)
		}
		rep.WriteMarkdown(f)
		if err := f.Close(); err != nil {
			return fmt.Errorf("benchmarks: writing --markdown: %v", err)
		}
	}
	if o.JSON != "" {
		if err := rep.WriteJSON(o.JSON); err != nil {
			return fmt.Errorf("benchmarks: writing --json: %v", err)
		}
	}
	return nil
}

// defaultTargetConns is the targets' max_conns unless --target-conns
// says otherwise: the load's connections, and at least the product's
// default. A sync route then never waits for a connection (it forwards
// one request per sender), and an async lane runs the workers a user
// gets: 64 at 64 connections. Until the thirty-sixth run it was twice
// the connections (128), since with 64 workers deliveries fell behind
// ingest on the shared core; since an Enqueue behind a backlog waits for
// the deliveries (gateway/dispatch, yield.go), 64 keep up and deliver
// more than 128 (benchmarks/HISTORY.md, thirty-sixth run).
func defaultTargetConns(conns int) int { return max(conns, config.DefaultTargetMaxConns) }

// targetConns is the targets' max_conns this run gives them.
func (o *Options) targetConns() int {
	if o.TargetConns > 0 {
		return o.TargetConns
	}
	return defaultTargetConns(o.Conns)
}

// targetConns is the targets' max_conns: set from --target-conns by the
// runner, and the default for an Env a test builds.
func (e *Env) targetConns() int {
	if e.TargetConns > 0 {
		return e.TargetConns
	}
	return defaultTargetConns(e.Conns)
}

func checkOptions(o *Options) error {
	switch {
	case o.Duration <= 0:
		return errors.New("--duration must be positive, e.g. 10s")
	case o.Duration > 10*time.Minute:
		return errors.New("--duration is at most 10m: every run is bounded")
	case o.Warmup < 0 || o.Warmup > time.Minute:
		return errors.New("--warmup must be between 0 and 1m")
	case o.Conns < 1 || o.Conns > 10000:
		return errors.New("--conns must be between 1 and 10000")
	case o.Rate < 0:
		return errors.New("--rate must be 0 (closed loop) or positive")
	case o.Rounds < 1 || o.Rounds > 20:
		return errors.New("--rounds must be between 1 and 20")
	case o.Pin != "auto" && o.Pin != "off":
		return errors.New("--pin is auto or off")
	case o.QueueSync != "always" && o.QueueSync != "batch":
		return errors.New("--queue-sync is always or batch")
	case o.TargetConns < 0 || o.TargetConns > 10000:
		return errors.New("--target-conns must be between 0 (--conns, at least 64) and 10000")
	case o.Pipeline < 0 || o.Pipeline > o.targetConns():
		return fmt.Errorf("--pipeline must be between 0 and the targets' max_conns, %d", o.targetConns())
	case o.Drain < 0 || o.Drain > 5*time.Minute:
		return errors.New("--drain must be between 0 and 5m")
	case o.Timeout <= 0:
		return errors.New("--timeout must be positive")
	}
	if o.BaselineSrc != "" {
		if _, err := os.Stat(filepath.Join(o.BaselineSrc, "go.mod")); err != nil {
			return fmt.Errorf("--baseline-src %s: no go.mod there; make one with `git worktree add DIR REV`", o.BaselineSrc)
		}
	}
	for _, bin := range []string{o.Hookgate, o.Baseline} {
		if bin == "" {
			continue
		}
		if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
			return fmt.Errorf("hookgate binary %s: not a file; build one with `go build -o FILE ./cmd/hookgate`", bin)
		}
	}
	if o.Target != "" && !isLoopbackURL(o.Target) {
		return fmt.Errorf("--target %s is not a loopback address: the harness only loads 127.0.0.1, ::1 or localhost", o.Target)
	}
	return nil
}

func scenarioNames() []string {
	var ns []string
	for _, sc := range allScenarios() {
		ns = append(ns, sc.Name)
	}
	return ns
}

// commandLine is the command as a user would retype it.
func commandLine(args []string) string {
	parts := []string{"go run ./benchmarks"}
	for _, a := range args {
		if strings.ContainsAny(a, " \t'\"$`\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
