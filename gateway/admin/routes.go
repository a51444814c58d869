package admin

import (
	"net/http"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
)

// RouteInfo is one route as GET /admin/routes shows it.
type RouteInfo struct {
	Name       string      `json:"name"`
	Method     string      `json:"method"`
	Path       string      `json:"path"`
	Mode       string      `json:"mode"`
	Targets    []string    `json:"targets"`
	MaxBody    int64       `json:"max_body"`
	JSON       bool        `json:"json"`
	Delay      string      `json:"delay,omitempty"`
	Transforms []string    `json:"transforms,omitempty"`
	Verify     *VerifyInfo `json:"verify,omitempty"`
	Dedupe     *DedupeInfo `json:"dedupe,omitempty"`
}

// VerifyInfo is a route's verification without its secrets: only how
// many are active, so an operator can see a rotation in progress.
type VerifyInfo struct {
	Type      string   `json:"type"`
	Secrets   int      `json:"secrets"`
	Header    string   `json:"header,omitempty"`
	Query     string   `json:"query,omitempty"`
	Algorithm string   `json:"algorithm,omitempty"`
	Encoding  string   `json:"encoding,omitempty"`
	Tolerance string   `json:"tolerance,omitempty"`
	Username  string   `json:"username,omitempty"`
	AllowIPs  []string `json:"allow_ips,omitempty"`
}

// DedupeInfo is a route's dedupe.
type DedupeInfo struct {
	Header     string   `json:"header,omitempty"`
	JSON       []string `json:"json,omitempty"`
	TTL        string   `json:"ttl"`
	MaxEntries int      `json:"max_entries"`
}

// TargetInfo is one target as GET /admin/routes shows it. URL is the
// target's config.ShownURL: every part that came from ${env:NAME} shows as
// the reference. Query values, and header values but harmless ones such
// as Content-Type, are the redacted forms of config.Secret: the
// ${env:NAME} reference, or "[redacted]" for a literal.
type TargetInfo struct {
	Name     string            `json:"name"`
	URL      string            `json:"url"`
	Method   string            `json:"method"`
	Headers  map[string]string `json:"headers,omitempty"`
	Query    map[string]string `json:"query,omitempty"`
	Auth     string            `json:"auth"`
	Timeout  string            `json:"timeout"`
	MaxConns int               `json:"max_conns"`
	// How its deliveries go, left out when not set: disable_after
	// (auto-disable), order ("fifo"), order_key and pipeline.
	DisableAfter string `json:"disable_after,omitempty"`
	Order        string `json:"order,omitempty"`
	OrderKey     string `json:"order_key,omitempty"`
	Pipeline     int    `json:"pipeline,omitempty"`
}

// RoutesResponse is the body of GET /admin/routes.
type RoutesResponse struct {
	Config  string       `json:"config"`
	Routes  []RouteInfo  `json:"routes"`
	Targets []TargetInfo `json:"targets"`
}

// Describe renders cfg's routes and targets without any secret value.
func Describe(cfg *config.Config) RoutesResponse {
	out := RoutesResponse{Config: cfg.Path, Routes: []RouteInfo{}, Targets: []TargetInfo{}}
	for _, r := range cfg.Routes {
		ri := RouteInfo{Name: r.Name, Method: r.Method, Path: r.Path, Mode: r.Mode, Targets: r.Targets, MaxBody: r.MaxBody, JSON: r.JSON}
		if ri.Targets == nil {
			ri.Targets = []string{}
		}
		if r.Delay > 0 {
			ri.Delay = r.Delay.String()
		}
		for _, s := range r.Transforms {
			ri.Transforms = append(ri.Transforms, s.Plugin)
		}
		if v := r.Verify; v != nil {
			ri.Verify = &VerifyInfo{Type: v.Type, Secrets: len(v.Secrets), Header: v.Header, Query: v.Query, Algorithm: v.Algorithm,
				Encoding: v.Encoding, Tolerance: durationString(v.Tolerance), Username: v.Username, AllowIPs: v.AllowIPs}
			if ri.Verify.Type == "" {
				ri.Verify.Type = "allow_ips"
			}
		}
		if d := r.Dedupe; d != nil {
			ri.Dedupe = &DedupeInfo{Header: d.Header, JSON: d.JSON, TTL: durationString(d.TTL), MaxEntries: d.MaxEntries}
		}
		out.Routes = append(out.Routes, ri)
	}
	for _, t := range cfg.Targets {
		ti := TargetInfo{Name: t.Name, Method: t.Method, Headers: shownHeaders(t.Headers), Query: shownQuery(t.Query), Auth: t.Auth.Type,
			Timeout: durationString(t.Timeout), MaxConns: t.MaxConns,
			DisableAfter: durationString(t.DisableAfter), Order: t.Order, OrderKey: t.OrderKey, Pipeline: t.Pipeline}
		if t.URL != nil {
			ti.URL = t.PrintableURL().String()
		}
		if ti.Auth == "" {
			ti.Auth = config.AuthNone
		}
		out.Targets = append(out.Targets, ti)
	}
	return out
}

// shownHeaders are a target's static headers as config.ShownHeader prints
// them: Content-Type and its like in clear, anything else redacted.
func shownHeaders(m map[string]config.Secret) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = config.ShownHeader(k, v)
	}
	return out
}

func shownQuery(m map[string]config.Secret) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v.String()
	}
	return out
}

func durationString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// Describer contributes GET /admin/routes: the routes and targets of
// whatever config current returns (the gateway's, which changes on
// reload), secrets redacted.
func Describer(current func() *config.Config) Router {
	return Routes{{"GET", "/admin/routes", HandlerFunc(func(*http.Request) (any, error) {
		return Describe(current()), nil
	})}}
}
