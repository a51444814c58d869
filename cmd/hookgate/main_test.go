package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/syncbuf"
	"github.com/hookgate/hookgate/internal/testport"
)

func runArgs(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestHelp(t *testing.T) {
	for _, cmd := range []string{"serve", "check", "try", "replay", "version", "sink"} {
		t.Run(cmd, func(t *testing.T) {
			code, out, errOut := runArgs(cmd, "--help")
			if code != 0 || !strings.HasPrefix(out, "Usage: hookgate "+cmd) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		})
	}
	t.Run("no command", func(t *testing.T) {
		if code, _, errOut := runArgs(); code != 2 || !strings.Contains(errOut, "Commands:") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("unknown command", func(t *testing.T) {
		if code, _, errOut := runArgs("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("bad flag", func(t *testing.T) {
		code, _, errOut := runArgs("check", "--nope")
		if code != 2 || !strings.Contains(errOut, "Run 'hookgate check --help'") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

func TestVersion(t *testing.T) {
	code, out, _ := runArgs("version")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != "hookgate dev" || !strings.HasPrefix(lines[1], "go 1.") || !strings.HasPrefix(lines[2], "commit ") {
		t.Errorf("version output %q", out)
	}
}

// writeConfig writes a config serving one sync route to targetURL.
func writeConfig(t *testing.T, dir, listen, adminListen, targetURL, extraRoutes string) string {
	t.Helper()
	cfg := `
[server]
listen = "` + listen + `"
shutdown_timeout = "5s"

[admin]
listen = "` + adminListen + `"

[transforms]
cache_dir = ""

[[target]]
name = "crm"
url = "` + targetURL + `/crm/tickets"
headers = { "Content-Type" = "application/json", "X-Api-Key" = "${env:HOOKGATE_TEST_KEY}" }
id_header = "Idempotency-Key"

[[route]]
name = "howxm"
path = "/hooks/howxm"
mode = "sync"
json = true
targets = ["crm"]
` + extraRoutes
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheck(t *testing.T) {
	t.Setenv("HOOKGATE_TEST_KEY", "k-123")
	dir := t.TempDir()
	good := writeConfig(t, dir, "127.0.0.1:18080", "127.0.0.1:18081", "http://127.0.0.1:9000", "")
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte(`
[server]
listen = "nope"
read_timeout = "soon"

[[route]]
name = "r"
path = "/r"
targets = ["crm2"]
`), 0o644)

	tests := []struct {
		name      string
		path      string
		code      int
		stdoutHas string
		stderrHas []string
	}{
		{name: "valid", path: good, code: 0, stdoutHas: "ok: 1 route, 1 target, 0 plugins"},
		{name: "every problem", path: bad, code: 1, stderrHas: []string{"listen", "read_timeout", `"crm2"`}},
		{name: "missing file", path: filepath.Join(dir, "none.toml"), code: 1, stderrHas: []string{"cannot read the config file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runArgs("check", "--config", tc.path)
			if code != tc.code || !strings.Contains(out, tc.stdoutHas) {
				t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
			}
			for _, s := range tc.stderrHas {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr %q lacks %q", errOut, s)
				}
			}
			if strings.Contains(out+errOut, "k-123") {
				t.Error("check printed a secret")
			}
		})
	}
}

var listenRE = regexp.MustCompile(`msg=listening listener=(\w+) addr=(\S+)`)

// TestServe runs `hookgate serve` in-process against a real sink: the Howxm
// fixture posted to a sync route arrives at the sink; health and readiness
// answer; SIGHUP reloads a changed config; cancelling the context stops it
// with exit 0.
func TestServe(t *testing.T) {
	t.Setenv("HOOKGATE_TEST_KEY", "k-123")
	s, err := sink.Start("127.0.0.1:0", sink.Options{Status: 201, Body: `{"ticket":7}`})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	listen, adminListen := testport.Addr(t), testport.Addr(t)
	path := writeConfig(t, dir, listen, adminListen, s.URL(), "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	exit := make(chan int, 1)
	go func() { exit <- runContext(ctx, []string{"serve", "--config", path}, &stdout, &stderr) }()

	addrs := map[string]string{}
	for deadline := time.Now().Add(10 * time.Second); len(addrs) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not log its listeners: %s", stderr.String())
		}
		select {
		case code := <-exit:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		default:
		}
		for _, m := range listenRE.FindAllStringSubmatch(stderr.String(), -1) {
			addrs[m[1]] = m[2]
		}
	}
	if addrs["ingest"] != listen || addrs["admin"] != adminListen {
		t.Fatalf("listeners %v, want ingest %s admin %s", addrs, listen, adminListen)
	}

	fixture, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+listen+"/hooks/howxm", "application/json", bytes.NewReader(fixture))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || string(body) != `{"ticket":7}` {
		t.Fatalf("answer %d %s, want the sink's 201", resp.StatusCode, body)
	}
	reqs, err := s.Wait(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := reqs[0]
	id := resp.Header.Get("Hookgate-Event-Id")
	if got.Path != "/crm/tickets" || got.Body != string(fixture) || got.Header("X-Api-Key") != "k-123" || got.Header("Idempotency-Key") != id+".0" {
		t.Errorf("sink got %s %s key=%q idem=%q (event %s), body equal: %v", got.Method, got.Path, got.Header("X-Api-Key"),
			got.Header("Idempotency-Key"), id, got.Body == string(fixture))
	}

	for _, probe := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + adminListen + probe)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", probe, resp.StatusCode)
		}
	}
	resp, err = http.Get("http://" + adminListen + "/admin/routes")
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(routes), `"${env:HOOKGATE_TEST_KEY}"`) || strings.Contains(string(routes), "k-123") {
		t.Errorf("/admin/routes must show the secret's reference, never its value: %s", routes)
	}

	// SIGHUP: a config with a second route is reloaded while serving.
	writeConfig(t, dir, listen, adminListen, s.URL(), `
[[route]]
name = "extra"
path = "/hooks/extra"
mode = "sync"
targets = ["crm"]
`)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Post("http://"+listen+"/hooks/extra", "application/json", strings.NewReader(`{}`))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 201 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reloaded route never answered: %s", stderr.String())
		}
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if strings.Contains(stderr.String(), "k-123") {
		t.Error("the log holds a secret value")
	}
}

func TestServeBadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.toml")
	os.WriteFile(path, []byte("[server]\nlisten = 5\n"), 0o644)
	code, _, errOut := runArgs("serve", "--config", path)
	if code != 1 || !strings.Contains(errOut, "listen") {
		t.Errorf("exit %d stderr %q", code, errOut)
	}
}

func TestTryWithoutTransforms(t *testing.T) {
	t.Setenv("HOOKGATE_TEST_KEY", "k-123")
	dir := t.TempDir()
	path := writeConfig(t, dir, "127.0.0.1:18080", "127.0.0.1:18081", "http://127.0.0.1:9000", "")
	code, out, errOut := runArgs("try", "--config", path, "--route", "howxm", "--payload", "../../testdata/howxm_entry_submitted.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var d tryDelivery
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	fixture, _ := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if d.Target != "crm" || d.Method != "POST" || d.URL != "http://127.0.0.1:9000/crm/tickets" || d.Body != string(fixture) || d.Delay != "0s" {
		t.Errorf("delivery %+v", d)
	}
	if d.Headers["X-Api-Key"] != "${env:HOOKGATE_TEST_KEY}" || d.Headers["Content-Type"] != "application/json" {
		t.Errorf("headers %v", d.Headers)
	}
	if strings.Contains(out, "k-123") {
		t.Error("try printed a secret")
	}

	code, _, errOut = runArgs("try", "--config", path, "--route", "nope", "--payload", "../../testdata/howxm_entry_submitted.json")
	if code != 1 || !strings.Contains(errOut, `no route named "nope"`) || !strings.Contains(errOut, "howxm") {
		t.Errorf("unknown route: exit %d %q", code, errOut)
	}
}
