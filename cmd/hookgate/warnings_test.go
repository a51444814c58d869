package main

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/syncbuf"
	"github.com/hookgate/hookgate/internal/testport"
)

// warnRoute is a route whose config works and draws two warnings: a
// verify secret written in the file, and json dedupe keys on a route that
// accepts bodies that are not JSON.
const warnRoute = `
[[route]]
name = "gh"
path = "/hooks/gh"
mode = "sync"
targets = ["crm"]
verify = { type = "hmac", secrets = ["gh-literal-5ecret"] }
dedupe = { json = ["id"] }
`

var wantWarnings = []string{
	`route \"gh\": verify: secrets[0]: the value is written in the file`,
	`route \"gh\": dedupe: json keys are read from the body, but the route accepts bodies that are not JSON`,
}

// TestCheckPrintsWarnings: hookgate check prints the config's warnings
// (on stderr, after the summary, exit 0: the config is valid), never the
// secret a warning is about.
func TestCheckPrintsWarnings(t *testing.T) {
	t.Setenv("HOOKGATE_TEST_KEY", "k-123")
	path := writeConfig(t, t.TempDir(), "127.0.0.1:18080", "127.0.0.1:18081", "http://127.0.0.1:9000", warnRoute)
	code, out, errOut := runArgs("check", "--config", path)
	if code != 0 || !strings.Contains(out, "ok: 2 routes") {
		t.Fatalf("exit %d stdout %q stderr %q, want 0 and the summary", code, out, errOut)
	}
	for _, w := range wantWarnings {
		w = strings.ReplaceAll(w, `\"`, `"`)
		if !strings.Contains(errOut, "warning: "+w) {
			t.Errorf("stderr %q lacks the warning %q", errOut, w)
		}
	}
	if !strings.Contains(errOut, "2 warning(s)") {
		t.Errorf("stderr %q does not count the warnings", errOut)
	}
	if strings.Contains(out+errOut, "gh-literal-5ecret") || strings.Contains(out+errOut, "k-123") {
		t.Error("check printed a secret")
	}

	// A config without warnings prints none.
	clean := writeConfig(t, t.TempDir(), "127.0.0.1:18080", "127.0.0.1:18081", "http://127.0.0.1:9000", "")
	if code, _, errOut := runArgs("check", "--config", clean); code != 0 || errOut != "" {
		t.Errorf("clean config: exit %d stderr %q, want 0 and nothing", code, errOut)
	}
}

// TestServeLogsWarnings: serve logs each config warning when it starts,
// and again after a reload that draws new ones, so an operator who never
// runs check still sees them.
func TestServeLogsWarnings(t *testing.T) {
	t.Setenv("HOOKGATE_TEST_KEY", "k-123")
	dir := t.TempDir()
	listen, adminListen := testport.Addr(t), testport.Addr(t)
	path := writeConfig(t, dir, listen, adminListen, "http://127.0.0.1:9", warnRoute)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	exit := make(chan int, 1)
	go func() { exit <- runContext(ctx, []string{"serve", "--config", path}, &stdout, &stderr) }()
	for deadline := time.Now().Add(10 * time.Second); len(listenRE.FindAllString(stderr.String(), -1)) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not log its listeners: %s", stderr.String())
		}
		select {
		case code := <-exit:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		default:
		}
	}
	for _, w := range wantWarnings {
		if !strings.Contains(stderr.String(), "level=WARN msg=\"config warning\"") || !strings.Contains(stderr.String(), w) {
			t.Errorf("the start log lacks the warning %q:\n%s", w, stderr.String())
		}
	}

	// A reload (here by the admin API) logs the new config's warnings.
	os.WriteFile(path, []byte(strings.Replace(mustRead(t, path), `"gh-literal-5ecret"`, `"gh-literal-5ecret", "another-l1teral"`, 1)), 0o644)
	resp, err := http.Post("http://"+adminListen+"/admin/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reload: %d", resp.StatusCode)
	}
	if w := `route \"gh\": verify: secrets[1]: the value is written in the file`; !strings.Contains(stderr.String(), w) {
		t.Errorf("the reload log lacks the warning %q:\n%s", w, stderr.String())
	}

	cancel()
	select {
	case <-exit:
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if s := stderr.String(); strings.Contains(s, "gh-literal-5ecret") || strings.Contains(s, "another-l1teral") || strings.Contains(s, "k-123") {
		t.Error("the log holds a secret value")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
