package gateway

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/dedupe"
	"github.com/hookgate/hookgate/gateway/record"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/gateway/verify"
)

// route is one [[route]] compiled for the hot path: everything a request
// needs is resolved here once, at load, so ingest does no lookups by name.
type route struct {
	name    string
	method  []byte
	sync    bool
	maxBody int
	json    bool
	delay   time.Duration
	chain   Chain            // nil when the route has no transforms
	targets []*target.Client // in the order of the route's targets
	names   []string         // the same targets' names: the default deliveries'

	verifier *verify.Verifier // nil: no verify table
	basic    bool             // verify type basic: a 401 carries WWW-Authenticate
	cred     Credential       // the sender's credential for hookgate, never passed on

	deduper    *dedupe.Deduper // nil: no dedupe
	dedupeSpec dedupe.Spec     // as configured, to keep deduper across reloads

	stats *routeStats  // refusal counters; carried across reloads by route name
	rec   record.Route // the route's recorder
}

// pathRoutes are the routes sharing one path, one per method.
type pathRoutes struct {
	prefix []byte // for "/x/*" patterns: "/x/"; nil for exact paths
	routes []*route
	allow  string // "GET, POST": the Allow header of a 405
}

func (p *pathRoutes) match(method []byte) *route {
	for _, r := range p.routes {
		if bytes.Equal(r.method, method) {
			return r
		}
	}
	return nil
}

// table is an immutable route table. Reload builds a new one beside the
// running one and swaps the pointer; a request keeps the table it started
// with until it finishes (see Gateway.acquire).
//
// refs is the table's one reference count: 1 for "current" (dropped when
// a Reload replaces the table, or at Shutdown), plus one per request in
// handle, plus one per Ref. It never goes back up from 0, so deps.Release
// runs exactly once, by whoever drops the last reference.
type table struct {
	cfg      *config.Config
	deps     Deps
	exact    map[string]*pathRoutes
	prefixes []*pathRoutes // longest prefix first
	routes   []*route
	maxBody  int                      // the largest route body limit: fasthttp's own cap
	unrouted record.Route             // the recorder of requests that matched no route
	targets  map[string]record.Target // the targets' recorders, for a sync route's forwards

	refs atomic.Int64
}

// retain counts one more user of t; false once t is done (refs reached
// 0), which a CAS guarantees is never revived.
func (t *table) retain() bool {
	for n := t.refs.Load(); n > 0; n = t.refs.Load() {
		if t.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
	return false
}

// release gives a reference back; the last one releases the deps.
func (t *table) release() {
	if t.refs.Add(-1) == 0 && t.deps.Release != nil {
		t.deps.Release()
	}
}

// lookup finds the routes for a request path. It does not allocate: the
// string(path) conversion in a map index expression is optimized away.
func (t *table) lookup(path []byte) *pathRoutes {
	if p, ok := t.exact[string(path)]; ok {
		return p
	}
	for _, p := range t.prefixes {
		if bytes.HasPrefix(path, p.prefix) {
			return p
		}
	}
	return nil
}

// buildTable compiles cfg's routes against deps. It checks what the config
// loader cannot know: that every target has a client, that transforms have
// a host and async routes a queue.
//
// prev is the table being replaced (nil at New): a route of the same name
// keeps its counters, and its deduper when the dedupe spec is unchanged,
// so a reload neither resets the counts nor forgets the keys seen.
func buildTable(cfg *config.Config, deps Deps, prev *table) (*table, error) {
	if deps.Recorder == nil {
		deps.Recorder = record.Log(deps.Logger, cfg.Log.Access)
	}
	t := &table{cfg: cfg, deps: deps, exact: map[string]*pathRoutes{}, unrouted: deps.Recorder.Route("")}
	t.refs.Store(1) // "current"
	t.targets = make(map[string]record.Target, len(cfg.Targets))
	for _, tc := range cfg.Targets {
		t.targets[tc.Name] = deps.Recorder.Target(tc.Name)
	}
	byPattern := map[string]*pathRoutes{}
	var problems []string
	for _, rc := range cfg.Routes {
		r, err := buildRoute(cfg, rc, deps, prev.route(rc.Name))
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		t.routes = append(t.routes, r)
		if r.maxBody > t.maxBody {
			t.maxBody = r.maxBody
		}
		p := byPattern[rc.Path]
		if p == nil {
			p = &pathRoutes{}
			if prefix, ok := strings.CutSuffix(rc.Path, "*"); ok && strings.HasSuffix(prefix, "/") {
				p.prefix = []byte(prefix)
				t.prefixes = append(t.prefixes, p)
			} else {
				t.exact[rc.Path] = p
			}
			byPattern[rc.Path] = p
		}
		if p.match(r.method) != nil {
			problems = append(problems, fmt.Sprintf("route %q: another route already serves %s %s", r.name, r.method, rc.Path))
			continue
		}
		p.routes = append(p.routes, r)
		if p.allow != "" {
			p.allow += ", "
		}
		p.allow += string(r.method)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("gateway: %s", strings.Join(problems, "; "))
	}
	sort.SliceStable(t.prefixes, func(i, j int) bool { return len(t.prefixes[i].prefix) > len(t.prefixes[j].prefix) })
	if t.maxBody == 0 {
		t.maxBody = int(cfg.Server.MaxBody)
	}
	return t, nil
}

// route finds a route by name; nil on a nil table.
func (t *table) route(name string) *route {
	if t == nil {
		return nil
	}
	for _, r := range t.routes {
		if r.name == name {
			return r
		}
	}
	return nil
}

func buildRoute(cfg *config.Config, rc config.Route, deps Deps, prev *route) (*route, error) {
	r := &route{
		name:    rc.Name,
		method:  []byte(strings.ToUpper(rc.Method)),
		sync:    rc.Mode == config.ModeSync,
		maxBody: int(rc.MaxBody),
		json:    rc.JSON,
		delay:   rc.Delay,
	}
	if len(r.method) == 0 {
		r.method = []byte("POST")
	}
	if r.maxBody <= 0 {
		r.maxBody = int(cfg.Server.MaxBody)
	}
	if !r.sync && deps.Queue == nil {
		return nil, fmt.Errorf("route %q is async but no durable queue is configured: set mode = \"sync\" on the route or configure [queue]", rc.Name)
	}
	for _, name := range rc.Targets {
		var c *target.Client
		if deps.Targets != nil {
			c = deps.Targets.Get(name)
		}
		if c == nil {
			return nil, fmt.Errorf("route %q: target %q has no client (is it defined as a [[target]]?)", rc.Name, name)
		}
		r.targets = append(r.targets, c)
		r.names = append(r.names, name)
	}
	if len(rc.Transforms) > 0 {
		if deps.Chains == nil {
			return nil, fmt.Errorf("route %q has transforms but the gateway was started without a transforms host", rc.Name)
		}
		ch, err := deps.Chains.Build(rc)
		if err != nil {
			return nil, fmt.Errorf("route %q: transforms: %w", rc.Name, err)
		}
		r.chain = ch
	}
	if err := r.buildGuards(rc, deps, prev); err != nil {
		return nil, err
	}
	return r, nil
}

// buildGuards builds the route's verifier and deduper. The config loader
// has validated both specs already; the errors here are for configs
// built by hand.
func (r *route) buildGuards(rc config.Route, deps Deps, prev *route) error {
	r.stats = new(routeStats)
	if prev != nil {
		r.stats = prev.stats
	}
	r.rec = deps.Recorder.Route(rc.Name)
	if rc.Verify != nil {
		v, err := verify.New(rc.Verify.Spec())
		if err != nil {
			return fmt.Errorf("route %q: %w", rc.Name, err)
		}
		r.verifier = v
		r.basic = v.Type() == verify.TypeBasic
		r.cred = credentialOf(v)
	}
	if rc.Dedupe != nil {
		r.dedupeSpec = rc.Dedupe.Spec()
		if prev != nil && prev.deduper != nil && prev.dedupeSpec.Equal(r.dedupeSpec) {
			r.deduper = prev.deduper
			return nil
		}
		d, err := dedupe.New(r.dedupeSpec)
		if err != nil {
			return fmt.Errorf("route %q: %w", rc.Name, err)
		}
		r.deduper = d
	}
	return nil
}
