package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The profiling endpoints are on the admin listener, behind the admin
// token like every admin endpoint.
func TestPprofBehindAdminToken(t *testing.T) {
	t.Setenv("HOOKGATE_TEST_PPROF_TOKEN", "pprof-adm-secret")
	o := startOps(t, `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"
token = "${env:HOOKGATE_TEST_PPROF_TOKEN}"

[[target]]
name = "crm"
url = "http://127.0.0.1:9/crm"

[[route]]
name = "hooks"
path = "/hooks/in"
mode = "sync"
targets = ["crm"]
`)
	get := func(path, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", o.admin+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name     string
		path     string
		token    string
		status   int
		contains string
	}{
		{name: "index without token", path: "/debug/pprof/", status: 401, contains: "unauthorized"},
		{name: "profile without token", path: "/debug/pprof/profile?seconds=1", status: 401, contains: "unauthorized"},
		{name: "index with a wrong token", path: "/debug/pprof/", token: "not-it", status: 401, contains: "unauthorized"},
		{name: "index", path: "/debug/pprof/", token: "pprof-adm-secret", status: 200, contains: "goroutine"},
		{name: "heap through the index", path: "/debug/pprof/heap?debug=1", token: "pprof-adm-secret", status: 200, contains: "heap profile"},
		{name: "cmdline (this test binary)", path: "/debug/pprof/cmdline", token: "pprof-adm-secret", status: 200, contains: "-test."},
		{name: "cpu profile", path: "/debug/pprof/profile?seconds=1", token: "pprof-adm-secret", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(tt.path, tt.token)
			if status != tt.status || !strings.Contains(body, tt.contains) {
				t.Errorf("GET %s: %d %.200q, want %d containing %q", tt.path, status, body, tt.status, tt.contains)
			}
			if tt.status == 200 && len(body) == 0 {
				t.Errorf("GET %s: empty body", tt.path)
			}
		})
	}
}
