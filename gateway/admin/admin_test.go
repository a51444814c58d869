package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
)

func startAdmin(t *testing.T, cfg config.Admin, routers ...Router) (*Admin, string) {
	t.Helper()
	a, err := New(cfg, slog.New(slog.DiscardHandler), routers...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return a, "http://" + ln.Addr().String()
}

func get(t *testing.T, u, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestProbes(t *testing.T) {
	a, base := startAdmin(t, config.Admin{})
	tests := []struct {
		name   string
		ready  bool
		path   string
		status int
		body   string
	}{
		{"healthz while starting", false, "/healthz", 200, `{"status":"ok"}`},
		{"readyz while starting", false, "/readyz", 503, `{"status":"not ready"}`},
		{"readyz once serving", true, "/readyz", 200, `{"status":"ready"}`},
		{"unknown endpoint", true, "/nope", 404, `{"error":{"code":"not_found","message":"no admin endpoint for GET /nope"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a.SetReady(tc.ready)
			if st, body := get(t, base+tc.path, ""); st != tc.status || body != tc.body {
				t.Errorf("got %d %s, want %d %s", st, body, tc.status, tc.body)
			}
		})
	}
}

func TestHandleAndToken(t *testing.T) {
	_, base := startAdmin(t, config.Admin{Token: config.NewSecret("s3cret", "${env:HOOKGATE_ADMIN_TOKEN}")},
		Routes{{"GET", "/admin/dead/{id}", HandlerFunc(func(r *http.Request) (any, error) {
			return map[string]string{"id": r.PathValue("id")}, nil
		})}})
	tests := []struct {
		name, path, token string
		status            int
		bodyHas           string
	}{
		{"registered handler", "/admin/dead/d1", "s3cret", 200, `{"id":"d1"}`},
		{"no token", "/admin/dead/d1", "", 401, `"unauthorized"`},
		{"wrong token", "/admin/dead/d1", "s3cres", 401, `"unauthorized"`},
		{"probes need no token", "/healthz", "", 200, `{"status":"ok"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if st, body := get(t, base+tc.path, tc.token); st != tc.status || !strings.Contains(body, tc.bodyHas) {
				t.Errorf("got %d %s, want %d containing %s", st, body, tc.status, tc.bodyHas)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	u, _ := url.Parse("http://user:pw@127.0.0.1:9000/crm")
	cfg := &config.Config{
		Path: "config.toml",
		Targets: []config.Target{{
			Name: "crm", URL: u, Method: "POST", Timeout: 10 * time.Second, MaxConns: 64,
			Headers: map[string]config.Secret{"X-Api-Key": config.NewSecret("key-value", "${env:CRM_KEY}"),
				"Content-Type": config.NewSecret("application/json", ""), "X-Literal-Key": config.NewSecret("literal-token", "")},
			Query: map[string]config.Secret{"token": config.NewSecret("literal-token", "")},
			Auth:  config.Auth{Type: config.AuthBearer, Token: config.NewSecret("bearer-value", "")},
		}},
		Routes: []config.Route{{Name: "howxm", Method: "POST", Path: "/hooks/howxm", Mode: "sync", Targets: []string{"crm"},
			MaxBody: 1024, JSON: true, Transforms: []config.Step{{Plugin: "howxm-nps"}}}},
	}
	_, base := startAdmin(t, config.Admin{}, Describer(func() *config.Config { return cfg }))

	st, body := get(t, base+"/admin/routes", "")
	if st != 200 {
		t.Fatalf("status %d", st)
	}
	for _, secret := range []string{"key-value", "literal-token", "bearer-value", ":pw@"} {
		if strings.Contains(body, secret) {
			t.Errorf("/admin/routes shows %q: %s", secret, body)
		}
	}
	var got RoutesResponse
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := `{"config":"config.toml","routes":[{"name":"howxm","method":"POST","path":"/hooks/howxm","mode":"sync","targets":["crm"],"max_body":1024,"json":true,"transforms":["howxm-nps"]}],"targets":[{"name":"crm","url":"http://[redacted]@127.0.0.1:9000/crm","method":"POST","headers":{"Content-Type":"application/json","X-Api-Key":"${env:CRM_KEY}","X-Literal-Key":"[redacted]"},"query":{"token":"[redacted]"},"auth":"bearer","timeout":"10s","max_conns":64}]}`
	if body != want {
		t.Errorf("body\n%s\nwant\n%s", body, want)
	}
}

// TestOneErrorShape: every admin error, whoever contributes the route, is
// {"error":{"code","message"}} written by the one compact writer.
func TestOneErrorShape(t *testing.T) {
	_, base := startAdmin(t, config.Admin{}, Routes{
		{"GET", "/admin/typed", HandlerFunc(func(*http.Request) (any, error) {
			return nil, &Error{Status: 422, Code: "reload_failed", Message: "a <b> & c", Problems: []string{"p1"}}
		})},
		{"GET", "/admin/plain", HandlerFunc(func(*http.Request) (any, error) {
			return nil, errors.New("disk on fire")
		})},
		{"GET", "/admin/ok", HandlerFunc(func(*http.Request) (any, error) {
			return map[string]string{"url": "http://x/?a=1&b=2"}, nil
		})},
	})
	tests := []struct {
		name, path string
		status     int
		body       string
	}{
		{"typed error", "/admin/typed", 422, `{"error":{"code":"reload_failed","message":"a <b> & c","problems":["p1"]}}`},
		{"any other error", "/admin/plain", 500, `{"error":{"code":"internal_error","message":"disk on fire"}}`},
		{"answer, compact and not HTML-escaped", "/admin/ok", 200, `{"url":"http://x/?a=1&b=2"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if st, body := get(t, base+tc.path, ""); st != tc.status || body != tc.body {
				t.Errorf("got %d %s, want %d %s", st, body, tc.status, tc.body)
			}
		})
	}
}

func TestDuplicateRoute(t *testing.T) {
	h := HandlerFunc(func(*http.Request) (any, error) { return nil, nil })
	tests := []struct {
		name   string
		routes Routes
	}{
		{"same pattern twice", Routes{{"GET", "/admin/x", h}, {"GET", "/admin/x", h}}},
		{"a probe again", Routes{{"GET", "/healthz", h}}},
		{"conflicting wildcards", Routes{{"GET", "/admin/x/{a}", h}, {"GET", "/admin/x/{b}", h}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(config.Admin{}, nil, tc.routes); err == nil {
				t.Fatal("New accepted two routes for one endpoint")
			}
		})
	}
}
