package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestDefaults pins every default to the documented value, written out
// here rather than taken from the constants, so changing one is a visible
// decision.
func TestDefaults(t *testing.T) {
	c, err := parseIn(t, targetsTOML+pluginTOML+`
[[route]]
name = "howxm"
path = "/hooks/howxm"
targets = ["crm"]
transforms = [{ plugin = "filter" }]
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(c.Path)
	wantServer := Server{
		Listen: "127.0.0.1:8080", MaxBody: 1 << 20, MaxHeaderBytes: 16 << 10,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second,
		ShutdownTimeout: 15 * time.Second, MaxConcurrency: 4096, MaxBodyMemory: 256 << 20, PerIPShare: 0.5,
	}
	if c.Server != wantServer {
		t.Errorf("Server = %+v, want %+v", c.Server, wantServer)
	}
	if c.Admin.Listen != "127.0.0.1:8081" || c.Admin.Token.IsSet() {
		t.Errorf("Admin = %+v", c.Admin)
	}
	wantQueue := Queue{Path: filepath.Join(dir, "data/queue"), Sync: "always", MaxDepth: 1_000_000, MaxBytes: 1 << 30, Backend: "pebble"}
	if !reflect.DeepEqual(c.Queue, wantQueue) {
		t.Errorf("Queue = %+v, want %+v", c.Queue, wantQueue)
	}
	if want := filepath.Join(dir, "data/wasm-cache"); c.Transforms.CacheDir != want {
		t.Errorf("CacheDir = %q, want %q", c.Transforms.CacheDir, want)
	}
	if c.Log != (Log{Level: "info", Format: "text"}) {
		t.Errorf("Log = %+v", c.Log)
	}

	tg := c.Targets[0]
	tg.URL = nil
	wantTarget := Target{
		Name: "crm", Shown: ShownURL{Origin: "http://127.0.0.1:9000", Path: "/crm"}, Method: "POST", Timeout: 10 * time.Second, MaxConns: 64,
		MaxResponseSize: 1 << 20, IdleTimeout: 60 * time.Second, IDHeader: "Idempotency-Key",
		Auth:    Auth{Type: "none"},
		Retry:   Retry{MaxAttempts: 10, Initial: time.Second, Max: 10 * time.Minute, MaxAge: 72 * time.Hour, Jitter: 0.2},
		Breaker: Breaker{Failures: 5, Cooldown: 30 * time.Second},
		TLS:     TLS{MinVersion: "1.2"},
	}
	if !reflect.DeepEqual(tg, wantTarget) {
		t.Errorf("Target = %+v\nwant     %+v", tg, wantTarget)
	}
	wantPlugin := Plugin{Name: "filter", Wasm: filepath.Join(dir, "filter.wasm"), Timeout: 100 * time.Millisecond, MaxMemory: 64 << 20, MaxOutput: 1 << 20}
	if c.Plugins[0] != wantPlugin {
		t.Errorf("Plugin = %+v, want %+v", c.Plugins[0], wantPlugin)
	}
	wantRoute := Route{
		Name: "howxm", Method: "POST", Path: "/hooks/howxm", Mode: "async", Targets: []string{"crm"},
		MaxBody: 1 << 20, Transforms: []Step{{Plugin: "filter", Config: []byte("{}")}},
	}
	if !reflect.DeepEqual(c.Routes[0], wantRoute) {
		t.Errorf("Route = %+v\nwant    %+v", c.Routes[0], wantRoute)
	}
}

func TestSizes(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{name: "bytes", in: "1024", want: 1024},
		{name: "KiB", in: "512KiB", want: 512 << 10},
		{name: "MiB", in: "1MiB", want: 1 << 20},
		{name: "GiB", in: "2GiB", want: 2 << 30},
		{name: "KB is decimal", in: "64KB", want: 64_000},
		{name: "lower case and a space", in: "3 mb", want: 3_000_000},
		{name: "B suffix", in: "10B", want: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "MiB", "1.5MiB", "1 MiBs", "-1", "99999999999TiB"} {
		if n, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", bad, n)
		}
	}
}

func TestEnv(t *testing.T) {
	src := `
[admin]
listen = "0.0.0.0:8081"
token = "${env:ADMIN_TOKEN}"

[[target]]
name = "crm"
url = "${env:CRM_URL}"
headers = { Authorization = "Bearer ${env:CRM_TOKEN}", X-Literal = "plain" }
auth = { type = "header", header = "X-Api-Key", value = "${env:CRM_TOKEN}" }

[[route]]
name = "r"
path = "/r"
targets = ["crm"]
transforms = []
`
	env := map[string]string{"ADMIN_TOKEN": "adm", "CRM_URL": "https://crm.example.com/t", "CRM_TOKEN": "tok"}
	c, err := parseIn(t, src, env)
	if err != nil {
		t.Fatal(err)
	}
	tg := c.Targets[0]
	checks := []struct {
		name           string
		s              Secret
		reveal, string string
	}{
		{name: "whole reference", s: c.Admin.Token, reveal: "adm", string: "${env:ADMIN_TOKEN}"},
		{name: "reference inside text", s: tg.Headers["Authorization"], reveal: "Bearer tok", string: "[redacted]"},
		{name: "literal", s: tg.Headers["X-Literal"], reveal: "plain", string: "[redacted]"},
		{name: "auth value", s: tg.Auth.Value, reveal: "tok", string: "${env:CRM_TOKEN}"},
	}
	for _, ck := range checks {
		if ck.s.Reveal() != ck.reveal || ck.s.String() != ck.string {
			t.Errorf("%s: Reveal %q String %q, want %q and %q", ck.name, ck.s.Reveal(), ck.s.String(), ck.reveal, ck.string)
		}
	}
	if got := tg.URL.String(); got != "https://crm.example.com/t" {
		t.Errorf("URL = %q", got)
	}

	// A nil env means the process environment.
	t.Setenv("HOOKGATE_TEST_URL", "http://127.0.0.1:9/x")
	c, err = Parse([]byte("[[target]]\nname = \"t\"\nurl = \"${env:HOOKGATE_TEST_URL}\"\n"), "c.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Targets[0].URL.Host; got != "127.0.0.1:9" {
		t.Errorf("URL host from the process environment = %q", got)
	}
}

// TestStepConfigDeterministic: the same table in any key order gives the
// same bytes, so a plugin may cache its parsed config by them.
func TestStepConfigDeterministic(t *testing.T) {
	route := func(cfg string) string {
		return targetsTOML + pluginTOML + `
[[route]]
name = "r"
path = "/r"
targets = ["crm"]
transforms = [{ plugin = "filter", config = ` + cfg + ` }]
`
	}
	a, err := parseIn(t, route(`{ b = 2, a = { y = "<&>", x = [1, 2] }, c = true }`), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseIn(t, route(`{ c = true, a = { x = [1, 2], y = "<&>" }, b = 2 }`), nil)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"a":{"x":[1,2],"y":"<&>"},"b":2,"c":true}`
	for _, c := range []*Config{a, b} {
		if got := string(c.Routes[0].Transforms[0].Config); got != want {
			t.Errorf("Config = %s, want %s", got, want)
		}
	}
}

func TestSummary(t *testing.T) {
	c, err := parseIn(t, targetsTOML+pluginTOML+routeTOML, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Path = "config.toml"
	if got, want := c.Summary(), "config.toml: ok: 1 route, 2 targets, 1 plugin"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	if c.Target("survey") != &c.Targets[1] || c.Plugin("filter") != &c.Plugins[0] || c.Route("howxm") != &c.Routes[0] || c.Target("nope") != nil {
		t.Error("lookups by name do not return the config's own entries")
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	var ce *Error
	if !errors.As(err, &ce) || !strings.HasSuffix(err.Error(), "nope.toml: cannot read the config file: no such file or directory") {
		t.Errorf("error = %v", err)
	}
}

// TestSampleConfig loads the repository's config.toml with no environment
// at all. The plugins' wasm files may not be built yet, so the first load
// skips that check and the second runs on a copy with placeholder files.
func TestSampleConfig(t *testing.T) {
	const sample = "../../config.toml"
	noEnv := func(string) (string, bool) { return "", false }
	c, err := LoadWith(sample, Options{Env: noEnv, SkipWasmCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Summary(), sample+": ok: 7 routes, 5 targets, 5 plugins"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	if c.Server.Listen != "127.0.0.1:8080" || c.Admin.Listen != "127.0.0.1:8081" {
		t.Errorf("listen = %q, admin %q", c.Server.Listen, c.Admin.Listen)
	}
	for _, tg := range c.Targets {
		if tg.URL.Host != "127.0.0.1:9000" {
			t.Errorf("target %q goes to %s, want the sink on 127.0.0.1:9000", tg.Name, tg.URL)
		}
	}
	routes := map[string]string{}
	for _, r := range c.Routes {
		routes[r.Name] = r.Method + " " + r.Path + " " + r.Mode
	}
	want := map[string]string{
		"howxm": "POST /hooks/howxm async", "smartsupp": "POST /hooks/smartsupp async",
		"coupon": "POST /hooks/coupon async", "birthday-sms": "POST /hooks/birthday-sms async",
		"points": "POST /hooks/points async", "passthrough": "POST /hooks/echo sync",
		"howxm-signed": "POST /hooks/howxm-signed async",
	}
	if !reflect.DeepEqual(routes, want) {
		t.Errorf("routes = %v, want %v", routes, want)
	}
	sl := c.Target("surveylab")
	if sl.Method != "GET" || sl.Query["apiToken"].Reveal() == "" || sl.Success.JSONPath != "status" || sl.Success.JSONEquals != "true" {
		t.Errorf("surveylab = %+v", sl)
	}
	// The demo credentials are literal, so check says so.
	wantWarnings := []string{
		`target "crm": auth: secret: the value is written in the file; in production use secret = "${env:NAME}"`,
		`target "coupons": auth: secret: the value is written in the file; in production use secret = "${env:NAME}"`,
		`target "sms": auth: token: the value is written in the file; in production use token = "${env:NAME}"`,
		`route "howxm-signed": verify: secrets[0]: the value is written in the file; in production use secrets = ["${env:NAME}"]`,
	}
	if !reflect.DeepEqual(c.Warnings, wantWarnings) {
		t.Errorf("Warnings = %q, want %q", c.Warnings, wantWarnings)
	}
	if v := c.Route("howxm-signed").Verify; v == nil || v.Type != "hmac" || v.Header != "X-Hookgate-Signature" || len(v.Secrets) != 1 {
		t.Errorf("howxm-signed verify = %+v", v)
	}
	if d := c.Route("howxm").Dedupe; d == nil || len(d.JSON) != 1 || d.JSON[0] != "entry.serial_number" || d.TTL != 24*time.Hour {
		t.Errorf("howxm dedupe = %+v", d)
	}
	if got := string(c.Route("howxm").Transforms[0].Config); got != `{"max_score":6,"target":"crm"}` {
		t.Errorf("howxm step config = %s", got)
	}

	// Full check, wasm files included, on a copy next to placeholders.
	dir := t.TempDir()
	data, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "plugins/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Plugins {
		if err := os.WriteFile(filepath.Join(dir, "plugins/bin", p.Name+".wasm"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadWith(filepath.Join(dir, "config.toml"), Options{Env: noEnv}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkParseSample: loading is off the hot path; this keeps an eye on
// reload cost.
func BenchmarkParseSample(b *testing.B) {
	data, err := os.ReadFile("../../config.toml")
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Env: func(string) (string, bool) { return "", false }, SkipWasmCheck: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseWith(data, "config.toml", opts); err != nil {
			b.Fatal(err)
		}
	}
}

// TestQueueMinFree: [queue] min_free takes a size; 0 (the default) leaves
// the choice to the queue, and a size that is not one is refused.
func TestQueueMinFree(t *testing.T) {
	c, err := Parse([]byte("[queue]\nmin_free = \"512MiB\"\n"), "c.toml", mapEnv(nil))
	if err != nil || c.Queue.MinFree != 512<<20 {
		t.Fatalf("min_free = %d, %v; want %d", c.Queue.MinFree, err, 512<<20)
	}
	if c, err = Parse([]byte("[queue]\n"), "c.toml", mapEnv(nil)); err != nil || c.Queue.MinFree != 0 {
		t.Fatalf("default min_free = %d, %v; want 0", c.Queue.MinFree, err)
	}
	if _, err = Parse([]byte("[queue]\nmin_free = \"lots\"\n"), "c.toml", mapEnv(nil)); err == nil || !strings.Contains(err.Error(), "min_free") {
		t.Fatalf("min_free = \"lots\": %v; want an error naming min_free", err)
	}
}

// TestPerIPShare: [server] per_ip_share is a share above 0 and at most 1,
// half by default.
func TestPerIPShare(t *testing.T) {
	c, err := Parse([]byte("[server]\nper_ip_share = 1\n"), "c.toml", mapEnv(nil))
	if err != nil || c.Server.PerIPShare != 1 {
		t.Fatalf("per_ip_share = %v, %v; want 1", c.Server.PerIPShare, err)
	}
	if c, err = Parse([]byte("[server]\n"), "c.toml", mapEnv(nil)); err != nil || c.Server.PerIPShare != 0.5 {
		t.Fatalf("default per_ip_share = %v, %v; want 0.5", c.Server.PerIPShare, err)
	}
	for _, bad := range []string{"0", "1.5", "-0.5"} {
		if _, err = Parse([]byte("[server]\nper_ip_share = "+bad+"\n"), "c.toml", mapEnv(nil)); err == nil || !strings.Contains(err.Error(), "per_ip_share") {
			t.Errorf("per_ip_share = %s: %v; want an error naming per_ip_share", bad, err)
		}
	}
}

// TestPluginStartTimeout: start_timeout is read as given; without it the
// field is 0, which the host turns into ten timeouts (at least 5s).
func TestPluginStartTimeout(t *testing.T) {
	c, err := parseIn(t, targetsTOML+"[[plugin]]\nname = \"filter\"\nwasm = \"filter.wasm\"\nstart_timeout = \"5s\"\n"+
		"[[plugin]]\nname = \"plain\"\nwasm = \"filter.wasm\"\n"+routeTOML, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Plugins[0].StartTimeout; got != 5*time.Second {
		t.Errorf("start_timeout = %v, want 5s", got)
	}
	if got := c.Plugins[1].StartTimeout; got != 0 {
		t.Errorf("default start_timeout = %v, want 0 (the host's default)", got)
	}
}
