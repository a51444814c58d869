package config

import (
	"fmt"
	"strings"
)

// crossCheck finds what no single section can see: duplicate names, and
// routes naming targets or plugins that are not defined, or sharing a
// method and path.
func (p *parser) crossCheck(c *Config) {
	targets := p.unique("target", len(c.Targets), func(i int) string { return c.Targets[i].Name })
	plugins := p.unique("plugin", len(c.Plugins), func(i int) string { return c.Plugins[i].Name })
	p.unique("route", len(c.Routes), func(i int) string { return c.Routes[i].Name })

	type endpoint struct{ method, path string }
	owner := map[endpoint]string{}
	for i, r := range c.Routes {
		where := routeWhere(i, r)
		for _, tg := range r.Targets {
			if !targets.has(tg) {
				p.addf("%s: target %q is not defined (%s)", where, tg, targets.defined("target"))
			}
		}
		for j, s := range r.Transforms {
			if s.Plugin != "" && !plugins.has(s.Plugin) {
				p.addf("%s: transforms[%d]: plugin %q is not defined (%s)", where, j, s.Plugin, plugins.defined("plugin"))
			}
		}
		if r.MaxBody > c.Server.MaxBodyMemory {
			p.addf("%s: max_body %d is more than server.max_body_memory %d, so a body that large would always be refused as overload; raise server.max_body_memory or lower max_body", where, r.MaxBody, c.Server.MaxBodyMemory)
		}
		if r.Path == "" || pathProblem(r.Path) != "" {
			continue
		}
		ep := endpoint{r.Method, r.Path}
		if first, dup := owner[ep]; dup {
			p.addf("%s: path %q is already used by %s", where, r.Path, first)
			continue
		}
		owner[ep] = where
	}
	p.orderCheck(c) // order.go
	p.operationsCheck(c)
}

// operationsCheck warns of [operations] that cannot send anything: the
// embedded queue is opened only once a route is async, and operational
// events go through it. The nats backend's queue always exists.
func (p *parser) operationsCheck(c *Config) {
	if c.Operations.Target == "" || c.Queue.Backend == QueueBackendNATS {
		return
	}
	for _, r := range c.Routes {
		if r.Mode != ModeSync {
			return
		}
	}
	p.warnings = append(p.warnings, "operations: no route is async, so no queue is opened and no operational event is ever sent: make a route async (mode = \"async\"), or remove [operations]")
}

// routeWhere names a route in messages, by position when it has no
// usable name.
func routeWhere(i int, r Route) string {
	if !validName(r.Name) {
		return fmt.Sprintf("route #%d", i+1)
	}
	return fmt.Sprintf("route %q", r.Name)
}

// names is the valid names of one kind, in file order.
type names []string

func (n names) has(s string) bool { return contains(n, s) }

// defined lists the names for a message that says what could be used.
func (n names) defined(kind string) string {
	if len(n) == 0 {
		return fmt.Sprintf("no [[%s]] is defined", kind)
	}
	return fmt.Sprintf("defined %ss: %s", kind, strings.Join(n, ", "))
}

// unique reports repeated names and returns the valid ones in file order.
func (p *parser) unique(kind string, n int, name func(int) string) names {
	var out names
	first := map[string]int{}
	for i := 0; i < n; i++ {
		s := name(i)
		if !validName(s) {
			continue // already reported
		}
		if j, dup := first[s]; dup {
			p.addf("%s #%d: name %q is already used by %s #%d; %s names must be unique", kind, i+1, s, kind, j+1, kind)
			continue
		}
		first[s] = i
		out = append(out, s)
	}
	return out
}
