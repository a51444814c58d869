package admin

import (
	"net/http"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
)

// RouteInfo is one route as GET /admin/routes shows it.
type RouteInfo struct {
	Name       string   `json:"name"`
	Method     string   `json:"method"`
	Path       string   `json:"path"`
	Mode       string   `json:"mode"`
	Targets    []string `json:"targets"`
	MaxBody    int64    `json:"max_body"`
	JSON       bool     `json:"json"`
	Delay      string   `json:"delay,omitempty"`
	Transforms []string `json:"transforms,omitempty"`
}

// TargetInfo is one target as GET /admin/routes shows it. Header and query
// values are the redacted forms of config.Secret: the ${env:NAME}
// reference, or "[redacted]" for a literal.
type TargetInfo struct {
	Name     string            `json:"name"`
	URL      string            `json:"url"`
	Method   string            `json:"method"`
	Headers  map[string]string `json:"headers,omitempty"`
	Query    map[string]string `json:"query,omitempty"`
	Auth     string            `json:"auth"`
	Timeout  string            `json:"timeout"`
	MaxConns int               `json:"max_conns"`
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
		out.Routes = append(out.Routes, ri)
	}
	for _, t := range cfg.Targets {
		ti := TargetInfo{Name: t.Name, Method: t.Method, Headers: redactAll(t.Headers), Query: redactAll(t.Query), Auth: t.Auth.Type,
			Timeout: durationString(t.Timeout), MaxConns: t.MaxConns}
		if t.URL != nil {
			// Redacted() hides a password in user info; query secrets live in
			// Query (shown redacted), not in the URL.
			ti.URL = t.URL.Redacted()
		}
		if ti.Auth == "" {
			ti.Auth = config.AuthNone
		}
		out.Targets = append(out.Targets, ti)
	}
	return out
}

func redactAll(m map[string]config.Secret) map[string]string {
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

// RoutesHandler serves GET /admin/routes from whatever config current
// returns (the gateway's, which changes on reload).
func RoutesHandler(current func() *config.Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, Describe(current()))
	})
}
