package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/plugins/plugintest"
)

// Env is what every scenario of one harness run shares.
type Env struct {
	Dir         string // temp dir: configs, logs, queues, nginx prefix
	Split       CoreSplit
	Conns       int
	Payload     []byte
	QueueSync   string
	Pipeline    int    // pipeline = N on every target (--pipeline); 0 leaves it out
	TargetConns int    // max_conns on every target (--target-conns)
	Hookgate    string // built binary, "" when it did not build
	HookgateErr string // why it did not build
	// Baseline is a second hookgate binary (--baseline): every hookgate
	// scenario runs with it too, as "<name>@base", in the same rounds, so
	// a change is measured side by side with what it replaces.
	Baseline string
	// BaselineSrc (--baseline-src) is the checkout the @base scenarios
	// build their plugins from; "" builds them from this one.
	BaselineSrc string
	// NATSServer is the nats-server binary the harness built for the
	// async-nats scenario ("" when none was needed or it did not build,
	// then NATSErr says why).
	NATSServer string
	NATSErr    string
	// Pprof opens hookgate's admin listener on loopback in round 1, so
	// the runner can fetch a Go CPU profile (--pprof). Off otherwise: the
	// measured gateway serves nothing but the route.
	Pprof bool
}

// SkipError says a scenario cannot run here, and why; the table shows the
// reason instead of a figure.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return e.Reason }

func skipf(format string, args ...any) error {
	return &SkipError{Reason: fmt.Sprintf(format, args...)}
}

// Running is a started scenario: where to send load, and what to measure.
type Running struct {
	URL      string
	Measured *Child // the process under test: the sink itself in "direct"
	// Queue is a queue server the gateway under test depends on (the
	// nats-server of async-nats): its CPU and RSS count with Measured's,
	// since it does part of the work an acknowledgement costs.
	Queue    *Child
	Sink     *Child
	SinkAddr string
	Async    bool // check deliveries at the sink after the run
	// Async: deliveries per event (the route's targets), and the event id
	// the probe's 202 named ("" if none).
	Targets int
	ProbeID string
	// Admin is hookgate's admin listener ("" when it is off), for --pprof.
	Admin    string
	children []*Child
}

// Stop stops every process of the scenario, proxy first so it does not
// log a storm of failed deliveries to a sink that went away.
func (r *Running) Stop() {
	for i := len(r.children) - 1; i >= 0; i-- {
		r.children[i].Stop(5 * time.Second)
	}
}

// queueCPU is the queue server's CPU time so far, 0 without one.
func (r *Running) queueCPU() time.Duration {
	if r.Queue == nil {
		return 0
	}
	return treeCPU(r.Queue.Pid())
}

// Scenario is one row of the table.
type Scenario struct {
	Name  string
	Title string
	// Prepare runs once before the rounds: build plugins, check that the
	// binary supports the feature. A *SkipError skips the scenario.
	Prepare func(env *Env) error
	// Start starts fresh processes for one measurement and probes them
	// with one request.
	Start func(env *Env, round int) (*Running, error)

	plan *plan // hookgate scenarios: the route served
}

// Names of the scenarios, in table order.
const (
	scDirect      = "direct"
	scNginx       = "nginx"
	scPassthrough = "passthrough"
	scHowxm       = "howxm-nps"
	scHowxmAS     = "howxm-nps-as"
	scChain       = "chain3"
	scAsync       = "async"
	scAsyncNATS   = "async-nats"
	scFanout      = "fanout2"
)

func allScenarios() []Scenario {
	return []Scenario{
		{Name: scDirect, Title: "direct: load generator -> sink (ceiling)", Prepare: func(*Env) error { return nil }, Start: startDirect},
		{Name: scNginx, Title: "nginx keep-alive reverse proxy -> sink", Prepare: prepareNginx, Start: startNginx},
		hookgateScenario(scPassthrough, "hookgate sync passthrough -> sink", plan{mode: "sync", targets: 1}),
		hookgateScenario(scHowxm, "hookgate sync, howxm-nps plugin -> sink", plan{mode: "sync", targets: 1, steps: howxmSteps}),
		hookgateScenario(scHowxmAS, "hookgate sync, howxm-nps in AssemblyScript -> sink", plan{mode: "sync", targets: 1, steps: howxmASSteps}),
		hookgateScenario(scChain, "hookgate sync, 3-plugin chain -> sink", plan{mode: "sync", targets: 1, steps: chainSteps}),
		hookgateScenario(scAsync, "hookgate async: acknowledged (202) ingest", plan{mode: "async", targets: 1}),
		hookgateScenario(scAsyncNATS, "hookgate async on NATS JetStream (nats-server on the same machine; CPU and RSS are hookgate's plus nats-server's)",
			plan{mode: "async", targets: 1, backend: "nats"}),
		hookgateScenario(scFanout, "hookgate sync fan-out to 2 targets", plan{mode: "sync", targets: 2}),
	}
}

func startDirect(env *Env, _ int) (*Running, error) {
	sink, addr, err := startSink(env, false)
	if err != nil {
		return nil, err
	}
	r := &Running{URL: "http://" + addr + "/hooks/bench", Measured: sink, Sink: sink, SinkAddr: addr, children: []*Child{sink}}
	if _, err := probe(r.URL, env.Payload, false, sink); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// ---- nginx ----

func prepareNginx(*Env) error {
	if _, err := exec.LookPath("nginx"); err != nil {
		return skipf("nginx is not on PATH; install it with `apt-get install -y nginx-light` to get the reference row")
	}
	return nil
}

// nginxConf is a keep-alive reverse proxy configured to be fair: upstream
// keep-alive at least as large as the connection count (a pool smaller
// than the load opens and closes connections per request), effectively
// unlimited requests per connection on both sides, no access log, as many
// workers as hookgate gets CPUs.
const nginxConf = `# written by go run ./benchmarks
daemon off;
master_process on;
worker_processes {{workers}};
{{user}}pid {{prefix}}/nginx.pid;
error_log {{prefix}}/error.log warn;
events {
    worker_connections 16384;
}
http {
    access_log off;
    client_body_temp_path {{prefix}}/client_body;
    proxy_temp_path {{prefix}}/proxy;
    fastcgi_temp_path {{prefix}}/fastcgi;
    uwsgi_temp_path {{prefix}}/uwsgi;
    scgi_temp_path {{prefix}}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    upstream sink {
        server {{sink}};
        keepalive {{keepalive}};
        keepalive_requests 10000000;
        keepalive_timeout 60s;
    }
    server {
        listen {{listen}} backlog=4096;
        location / {
            proxy_pass http://sink;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`

func startNginx(env *Env, round int) (*Running, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, skipf("nginx is not on PATH")
	}
	sink, sinkAddr, err := startSink(env, false)
	if err != nil {
		return nil, err
	}
	r := &Running{Sink: sink, SinkAddr: sinkAddr, children: []*Child{sink}}
	listen, err := freeAddr()
	if err != nil {
		r.Stop()
		return nil, err
	}
	prefix := filepath.Join(env.Dir, fmt.Sprintf("nginx-%d", round))
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		r.Stop()
		return nil, err
	}
	user := ""
	if os.Geteuid() == 0 {
		// Workers would otherwise switch to www-data and lose access to
		// the temp prefix.
		user = "user root root;\n"
	}
	conf := strings.NewReplacer(
		"{{workers}}", strconv.Itoa(env.Split.srvProcs()),
		"{{user}}", user,
		"{{prefix}}", prefix,
		"{{sink}}", sinkAddr,
		"{{keepalive}}", strconv.Itoa(max(env.Conns, 64)),
		"{{listen}}", listen,
	).Replace(nginxConf)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		r.Stop()
		return nil, err
	}
	ng, err := startChild(env.Split, env.Dir, fmt.Sprintf("nginx-%d", round), nil,
		bin, "-p", prefix, "-c", confPath, "-e", filepath.Join(prefix, "error.log"))
	if err != nil {
		r.Stop()
		return nil, err
	}
	r.children = append(r.children, ng)
	r.Measured = ng
	if err := waitReady(ng, listen, 10*time.Second); err != nil {
		r.Stop()
		return nil, err
	}
	r.URL = "http://" + listen + "/hooks/bench"
	if _, err := probe(r.URL, env.Payload, false, ng); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// ---- hookgate ----

// step is one transform of a route, with its config as a TOML inline
// table.
type step struct {
	plugin string // the [[plugin]] name, and its directory under plugins/ unless dir says otherwise
	config string
	// dir is the plugin's directory from the module root when it is not
	// plugins/<plugin>; asc says it is an AssemblyScript project.
	dir string
	asc bool
}

// plan is the route a hookgate scenario serves.
type plan struct {
	mode    string // "sync" | "async"
	targets int    // 1, or 2 for fan-out (both end at the same sink)
	steps   []step
	// backend is the [queue] backend: "" (the embedded Pebble store, the
	// default) or "nats", a JetStream stream on a nats-server the harness
	// starts beside hookgate for each measurement.
	backend string
}

// howxmSteps: the howxm-nps plugin on the Howxm fixture, configured so
// every event is delivered (a benchmark of drops would measure nothing).
var howxmSteps = []step{
	{plugin: "howxm-nps", config: `{ max_score = 10, target = "sink" }`},
}

// howxmASSteps: the same plugin written in AssemblyScript (its README:
// "The same plugin in AssemblyScript"), the same tickets byte for byte:
// what the guest toolchain costs, beside howxmSteps.
var howxmASSteps = []step{
	{plugin: "howxm-nps-as", dir: "plugins/howxm-nps/assemblyscript", asc: true, config: `{ max_score = 10, target = "sink" }`},
}

// chainSteps: three stock plugins in a row, each one a full call into a
// wasm instance, all letting the fixture through: filter keeps
// entry_submitted events, template adds two headers read from the body
// (leaving it intact for the next step), howxm-nps makes the CRM ticket.
var chainSteps = []step{
	{plugin: "filter", config: `{ rules = [{ path = "event_type", op = "eq", value = "entry_submitted" }] }`},
	{plugin: "template", config: `{ headers = { "X-Survey" = "${campaign.name}", "X-Customer" = "${entry.customer.email}" } }`},
	{plugin: "howxm-nps", config: `{ max_score = 10, target = "sink" }`},
}

// baseSuffix names the --baseline twin of a hookgate scenario.
const baseSuffix = "@base"

// withBaselines adds, after each hookgate scenario in scs, its twin run
// with the --baseline binary.
func withBaselines(scs []Scenario) []Scenario {
	var out []Scenario
	for _, sc := range scs {
		out = append(out, sc)
		if sc.plan != nil {
			out = append(out, hookgateScenario(sc.Name+baseSuffix, sc.Title+" (the baseline)", *sc.plan))
		}
	}
	return out
}

func hookgateScenario(name, title string, p plan) Scenario {
	sc := Scenario{Name: name, Title: title, plan: &p}
	wasm := map[string]string{}
	binary := func(env *Env) string {
		if strings.HasSuffix(name, baseSuffix) {
			return env.Baseline
		}
		return env.Hookgate
	}
	sc.Prepare = func(env *Env) error {
		if binary(env) == "" {
			return skipf("hookgate did not build: %s", env.HookgateErr)
		}
		if p.backend == "nats" && env.NATSServer == "" {
			return skipf("nats-server did not build: %s", env.NATSErr)
		}
		for _, s := range p.steps {
			if _, ok := wasm[s.plugin]; ok {
				continue
			}
			dir := "plugins/" + s.plugin
			if s.dir != "" {
				dir = s.dir
			}
			root, err := plugintest.ModuleRoot()
			if err != nil {
				return err
			}
			if strings.HasSuffix(name, baseSuffix) && env.BaselineSrc != "" {
				root = env.BaselineSrc // the baseline's own plugins
			}
			if _, err := os.Stat(filepath.Join(root, dir)); err != nil {
				return skipf("plugin %s does not exist yet", dir)
			}
			build := plugintest.BuildPathIn
			if s.asc {
				build = plugintest.AssemblyScriptPathIn
			}
			path, err := build(root, dir)
			if err != nil {
				return skipf("plugin %s did not build: %s", dir, firstLine(err.Error()))
			}
			wasm[s.plugin] = path
		}
		// Validate with placeholder addresses: `hookgate check` catches a
		// key or feature the binary does not know before any process runs.
		path := filepath.Join(env.Dir, name+"-check.toml")
		conf := hookgateConfig(env, p, wasm, "127.0.0.1:1", "", "127.0.0.1:2", filepath.Join(env.Dir, name+"-check-queue"), "nats://127.0.0.1:3")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return err
		}
		out, err := exec.Command(binary(env), "check", "--config", path).CombinedOutput()
		if err != nil {
			return skipf("`hookgate check` refused the scenario's config: %s", firstLine(strings.TrimSpace(string(out))))
		}
		return nil
	}
	sc.Start = func(env *Env, round int) (*Running, error) {
		async := p.mode == "async"
		sink, sinkAddr, err := startSink(env, async)
		if err != nil {
			return nil, err
		}
		r := &Running{Sink: sink, SinkAddr: sinkAddr, Async: async, Targets: p.targets, children: []*Child{sink}}
		natsURL := ""
		if p.backend == "nats" {
			// A fresh nats-server and store per measurement, as the
			// Pebble scenario gets a fresh queue directory: no round
			// starts with another's backlog.
			ns, url, err := startNATS(env, fmt.Sprintf("%s-%d-nats", name, round))
			if err != nil {
				r.Stop()
				return nil, err
			}
			r.children = append(r.children, ns)
			r.Queue, natsURL = ns, url
		}
		listen, err := freeAddr()
		if err != nil {
			r.Stop()
			return nil, err
		}
		if env.Pprof && round == 0 {
			if r.Admin, err = freeAddr(); err != nil {
				r.Stop()
				return nil, err
			}
		}
		queueDir := filepath.Join(env.Dir, fmt.Sprintf("%s-%d-queue", name, round))
		path := filepath.Join(env.Dir, fmt.Sprintf("%s-%d.toml", name, round))
		conf := hookgateConfig(env, p, wasm, listen, r.Admin, sinkAddr, queueDir, natsURL)
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			r.Stop()
			return nil, err
		}
		hg, err := startChild(env.Split, env.Dir, fmt.Sprintf("%s-%d", name, round), nil, binary(env), "serve", "--config", path)
		if err != nil {
			r.Stop()
			return nil, err
		}
		r.children = append(r.children, hg)
		r.Measured = hg
		if err := waitReady(hg, listen, 30*time.Second); err != nil {
			r.Stop()
			return nil, err
		}
		r.URL = "http://" + listen + "/hooks/bench"
		if r.ProbeID, err = probe(r.URL, env.Payload, r.Async, hg); err != nil {
			r.Stop()
			return nil, err
		}
		return r, nil
	}
	return sc
}

// hookgateConfig writes the TOML for one scenario with the keys of
// gateway/config. Logging is at warn with no access log, the admin
// listener is off unless admin names its address (--pprof), and targets
// get the load's connections, at least the product's default
// (defaultTargetConns), so the pool never makes a forwarded request wait
// (nginx's upstream is not capped either). natsURL is the nats-server of
// a plan with backend "nats".
func hookgateConfig(env *Env, p plan, wasm map[string]string, listen, admin, sinkAddr, queueDir, natsURL string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by go run ./benchmarks\n[server]\nlisten = %q\n\n", listen)
	fmt.Fprintf(&b, "[admin]\nlisten = %q\n\n[log]\nlevel = \"warn\"\naccess = false\n\n", admin)
	fmt.Fprintf(&b, "[queue]\npath = %q\nsync = %q\n", queueDir, env.QueueSync)
	if p.backend == "nats" {
		// One replica: a single nats-server. sync is the Pebble store's
		// and has no say over when nats-server writes to disk.
		fmt.Fprintf(&b, "backend = \"nats\"\n\n[queue.nats]\nurls = [%q]\nstream = \"hookgate\"\nreplicas = 1\n", natsURL)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "[transforms]\ncache_dir = %q\n\n", filepath.Join(env.Dir, "wasm-cache"))
	names := []string{"sink", "sink2"}[:p.targets]
	for i, n := range names {
		fmt.Fprintf(&b, "[[target]]\nname = %q\nurl = \"http://%s/deliver/%d\"\nmax_conns = %d\n", n, sinkAddr, i+1, env.targetConns())
		if env.Pipeline > 0 {
			fmt.Fprintf(&b, "pipeline = %d\n", env.Pipeline)
		}
		b.WriteString("\n")
	}
	seen := map[string]bool{}
	for _, s := range p.steps {
		if seen[s.plugin] {
			continue
		}
		seen[s.plugin] = true
		fmt.Fprintf(&b, "[[plugin]]\nname = %q\nwasm = %q\n\n", s.plugin, wasm[s.plugin])
	}
	fmt.Fprintf(&b, "[[route]]\nname = \"bench\"\nmethod = \"POST\"\npath = \"/hooks/bench\"\nmode = %q\ntargets = [", p.mode)
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n)
	}
	b.WriteString("]\n")
	if len(p.steps) > 0 {
		b.WriteString("transforms = [\n")
		for _, s := range p.steps {
			fmt.Fprintf(&b, "  { plugin = %q, config = %s },\n", s.plugin, s.config)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// probe sends one request to the server child c runs and wants a 2xx
// (202 for async): a scenario whose feature is missing fails here and is
// skipped, never measured. It returns the event id the answer named, if
// any.
//
// It dials afresh: a client shared across scenarios could hold an idle
// connection to an earlier child that listened on the same port (ports
// are picked free and come back), and a POST sent on it fails as closed
// before its answer. A request that fails all the same says whether the
// child is still running, and what it last printed.
func probe(url string, body []byte, async bool, c *Child) (string, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetConnectionClose()
	req.SetBody(body)
	client := &fasthttp.Client{}
	if err := client.DoTimeout(req, resp, 10*time.Second); err != nil {
		return "", fmt.Errorf("probe request to %s failed: %v (%s)", url, err, childState(c))
	}
	code := resp.StatusCode()
	want := code >= 200 && code < 300
	if async {
		want = code == fasthttp.StatusAccepted
	}
	if !want {
		return "", fmt.Errorf("probe request to %s answered %d %s", url, code, firstLine(string(resp.Body())))
	}
	return string(resp.Header.Peek(eventIDHeader)), nil
}

// childState says whether c exited, waiting up to a second for an exit
// under way, with what it last printed.
func childState(c *Child) string {
	for deadline := time.Now().Add(time.Second); !c.Exited() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	last := c.lastLines()
	if last == "" {
		last = "nothing"
	}
	if c.Exited() {
		return fmt.Sprintf("%s exited (%v); it last printed: %s", c.Name, c.err, last)
	}
	return fmt.Sprintf("%s is still running; it last printed: %s", c.Name, last)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func isSkip(err error) (string, bool) {
	var s *SkipError
	if errors.As(err, &s) {
		return s.Reason, true
	}
	return "", false
}
