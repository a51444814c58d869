package gateway

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/target"
)

// route is one [[route]] compiled for the hot path: everything a request
// needs is resolved here once, at load, so ingest does no lookups by name.
type route struct {
	cfg     config.Route
	name    string
	method  []byte
	sync    bool
	maxBody int
	json    bool
	delay   time.Duration
	chain   Chain            // nil when the route has no transforms
	targets []*target.Client // in the order of cfg.Targets
}

// pathRoutes are the routes sharing one path, one per method.
type pathRoutes struct {
	pattern string // as configured, e.g. "/hooks/*"
	prefix  []byte // for "/x/*" patterns: "/x/"; nil for exact paths
	routes  []*route
	allow   string // "GET, POST": the Allow header of a 405
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
type table struct {
	cfg      *config.Config
	deps     Deps
	exact    map[string]*pathRoutes
	prefixes []*pathRoutes // longest prefix first
	routes   []*route
	maxBody  int // the largest route body limit: fasthttp's own cap

	active  atomic.Int64 // requests using this table
	retired atomic.Bool
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
func buildTable(cfg *config.Config, deps Deps) (*table, error) {
	t := &table{cfg: cfg, deps: deps, exact: map[string]*pathRoutes{}}
	byPattern := map[string]*pathRoutes{}
	var problems []string
	for _, rc := range cfg.Routes {
		r, err := buildRoute(cfg, rc, deps)
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
			p = &pathRoutes{pattern: rc.Path}
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

func buildRoute(cfg *config.Config, rc config.Route, deps Deps) (*route, error) {
	r := &route{
		cfg:     rc,
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
	return r, nil
}
