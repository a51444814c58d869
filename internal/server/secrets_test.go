package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/syncbuf"
	"github.com/hookgate/hookgate/internal/testport"
)

// The URL secrets of these tests; .ci/secrets-scan fails `make test` if
// any of them ever reaches the test log.
const (
	urlPathSecret  = "srv-test-url-path-7d2e"  // a Slack-style webhook secret, in the path
	urlQuerySecret = "srv-test-url-query-41c9" // an API key in the URL's query
	urlWholeSecret = "srv-test-url-whole-b5a0" // a whole URL from one variable
	tokenSecret    = "srv-test-sender-token-e83f"
)

// startLogged is start with the server's log kept in log, and the ingest
// listener's base URL returned too.
func startLogged(t *testing.T, cfgText string, log io.Writer) (srv *Server, admin, ingest string) {
	t.Helper()
	listen, adminListen := testport.Addr(t), testport.Addr(t)
	path := filepath.Join(t.TempDir(), "config.toml")
	cfgText = strings.NewReplacer("LISTEN", listen, "ADMIN", adminListen).Replace(cfgText)
	if err := os.WriteFile(path, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := New(cfg, Options{Path: path, Version: "test", Logger: logger})
	if err := s.Start(context.Background()); err != nil {
		s.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s, "http://" + adminListen, "http://" + listen
}

// fetch answers the body of method url (with body, if any) as text.
func fetch(t *testing.T, method, url string, header http.Header, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls check until it is true; the deadline only bounds a failure.
func waitFor(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaks names the URL secrets text shows.
func leaks(text string) []string {
	var out []string
	for _, s := range []string{urlPathSecret, urlQuerySecret, urlWholeSecret} {
		if strings.Contains(text, s) {
			out = append(out, s)
		}
	}
	return out
}

// TestURLSecretsNeverShown: a target URL whose path (a Slack, Discord or
// Teams webhook), query value or whole text comes from ${env:...} is
// never printed: not in the warn lines of failed attempts, /admin/dead,
// /admin/events/{id}, /admin/routes, /admin/targets or the route test;
// each shows the ${env:NAME} reference instead. The targets are a closed
// loopback port, so every attempt fails with a transport error, the kind
// whose message names the URL.
func TestURLSecretsNeverShown(t *testing.T) {
	t.Setenv("HG_TEST_URL_PATH", urlPathSecret)
	t.Setenv("HG_TEST_URL_QUERY", urlQuerySecret)
	closed := testport.Addr(t) // nothing listens there once Addr returns
	t.Setenv("HG_TEST_URL_WHOLE", "http://"+closed+"/whole/"+urlWholeSecret)
	var log syncbuf.Buffer
	_, admin, ingest := startLogged(t, `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[queue]
path = "queue"
sync = "batch"

[[target]]
name = "slack"
url = "http://`+closed+`/services/T000/${env:HG_TEST_URL_PATH}?key=${env:HG_TEST_URL_QUERY}&channel=ops"
retry = { max_attempts = 1 }

[[target]]
name = "whole"
url = "${env:HG_TEST_URL_WHOLE}"
retry = { max_attempts = 1 }

[[route]]
name = "queued"
path = "/hooks/queued"
targets = ["slack", "whole"]

[[route]]
name = "now"
path = "/hooks/now"
mode = "sync"
targets = ["slack"]
`, &log)

	// Both deliveries fail once and are dead: a warn line each, a dead
	// letter each with the attempt's error, and the journal's attempts.
	st, body := fetch(t, "POST", ingest+"/hooks/queued", nil, `{"n":1}`)
	if st != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", st, body)
	}
	var accepted struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal([]byte(body), &accepted); err != nil || accepted.EventID == "" {
		t.Fatalf("ingest answer %s: %v", body, err)
	}
	var dead string
	waitFor(t, "two dead letters", func() bool {
		_, dead = fetch(t, "GET", admin+"/admin/dead", nil, "")
		return strings.Count(dead, `"dead_at"`) == 2
	})
	if !strings.Contains(dead, "/services/T000/${env:HG_TEST_URL_PATH}?key=${env:HG_TEST_URL_QUERY}&channel=[redacted]") ||
		!strings.Contains(dead, "${env:HG_TEST_URL_WHOLE}") {
		t.Errorf("/admin/dead: the attempt errors do not name the URLs by their references:\n%s", redactForLog(dead))
	}
	st, sync := fetch(t, "POST", ingest+"/hooks/now", nil, `{"n":2}`)
	if st != http.StatusBadGateway {
		t.Errorf("sync route to a closed port: %d, want 502", st)
	}

	surfaces := map[string]string{"/admin/dead": dead, "sync answer": sync}
	for _, p := range []string{"/admin/events/" + accepted.EventID, "/admin/routes", "/admin/targets"} {
		st, b := fetch(t, "GET", admin+p, nil, "")
		if st != 200 {
			t.Fatalf("GET %s: %d %s", p, st, redactForLog(b))
		}
		surfaces[p] = b
	}
	if !strings.Contains(surfaces["/admin/events/"+accepted.EventID], `"outcome":"dead"`) {
		t.Errorf("/admin/events: no dead attempt recorded: %s", redactForLog(surfaces["/admin/events/"+accepted.EventID]))
	}
	for _, route := range []string{"queued", "now"} {
		for _, q := range []string{"", "?send=true"} {
			p := "/admin/routes/" + route + "/test" + q
			st, b := fetch(t, "POST", admin+p, http.Header{"Content-Type": {"application/json"}}, `{"n":3}`)
			if st != 200 || !strings.Contains(b, `"deliveries"`) {
				t.Fatalf("POST %s: %d %s", p, st, redactForLog(b))
			}
			surfaces["POST "+p] = b
		}
	}
	surfaces["log"] = log.String()
	if !strings.Contains(surfaces["log"], "dispatch: delivery dead") {
		t.Errorf("the log has no line for the dead deliveries:\n%s", redactForLog(surfaces["log"]))
	}
	for name, text := range surfaces {
		if l := leaks(text); l != nil {
			t.Errorf("%s shows %d URL secret(s):\n%s", name, len(l), redactForLog(text))
		}
		if name != "log" && name != "sync answer" && !strings.Contains(text, "${env:HG_TEST_URL_") {
			t.Errorf("%s does not name the URL by its ${env:...} references:\n%s", name, redactForLog(text))
		}
	}
}

// redactForLog hides the test secrets in a failure message, so a failing
// test does not itself print what it checks is never printed.
func redactForLog(s string) string {
	return strings.NewReplacer(urlPathSecret, "<path secret>", urlQuerySecret, "<query secret>",
		urlWholeSecret, "<whole-URL secret>", tokenSecret, "<sender token>").Replace(s)
}

// TestRouteTestStripsCredential: the admin route test takes the sender's
// credential for hookgate (verify token in a header) out of the event
// exactly as ingest does, with the same code (gateway.Credential): the
// answer does not echo it, and with send=true the target receives what a
// real post makes it receive, the other headers included, the credential
// not. (A credential in the query is taken out by the same code; without
// a plugin that rewrites the query, no query reaches a target anyway.)
func TestRouteTestStripsCredential(t *testing.T) {
	t.Setenv("HG_TEST_SENDER_TOKEN", tokenSecret)
	s := startSink(t)
	_, admin, ingest := startLogged(t, `
[server]
listen = "LISTEN"

[admin]
listen = "ADMIN"

[[target]]
name = "crm"
url = "`+s.URL()+`/crm"

[[route]]
name = "header"
path = "/hooks/header"
mode = "sync"
targets = ["crm"]
verify = { type = "token", header = "X-Hook-Token", secrets = ["${env:HG_TEST_SENDER_TOKEN}"] }
`, io.Discard)

	h := http.Header{"Content-Type": {"application/json"}, "X-Other": {"kept"}, "X-Hook-Token": {tokenSecret}}
	st, body := fetch(t, "POST", ingest+"/hooks/header", h, `{"n":1}`)
	if st != 200 {
		t.Fatalf("ingest: %d %s", st, redactForLog(body))
	}
	st, shown := fetch(t, "POST", admin+"/admin/routes/header/test", h, `{"n":1}`)
	if st != 200 {
		t.Fatalf("route test: %d %s", st, redactForLog(shown))
	}
	st, sent := fetch(t, "POST", admin+"/admin/routes/header/test?send=true", h, `{"n":1}`)
	if st != 200 {
		t.Fatalf("test send: %d %s", st, redactForLog(sent))
	}
	for _, answer := range []string{shown, sent} {
		if strings.Contains(answer, tokenSecret) || strings.Contains(answer, "X-Hook-Token") {
			t.Errorf("the route test echoes the sender's token: %s", redactForLog(answer))
		}
		if !strings.Contains(answer, `"X-Other":"kept"`) {
			t.Errorf("the route test lost the event's other header: %s", redactForLog(answer))
		}
	}
	reqs, err := s.Wait(2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i, who := range []string{"ingest", "test send"} {
		r := reqs[i]
		if r.Header("X-Hook-Token") != "" {
			t.Errorf("%s passed the sender's token on to the target", who)
		}
		if r.Header("X-Other") != "kept" {
			t.Errorf("%s: X-Other %q, want kept", who, r.Header("X-Other"))
		}
	}
}

// TestQueueAgeOneNameOneUnit: GET /admin/queue and the queue figures of
// GET /admin/targets give the oldest pending delivery's age under one
// name, oldest_pending_seconds, as a number of seconds (the
// hookgate_target_oldest_pending_seconds gauge's unit), never a duration
// string such as "0s".
func TestQueueAgeOneNameOneUnit(t *testing.T) {
	closed := testport.Addr(t)
	_, admin, ingest := startLogged(t, `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[queue]
path = "queue"
sync = "batch"

[[target]]
name = "down"
url = "http://`+closed+`/x"
retry = { initial = "1h", max = "1h" }

[[route]]
name = "queued"
path = "/hooks/queued"
targets = ["down"]
`, io.Discard)
	if st, body := fetch(t, "POST", ingest+"/hooks/queued", nil, `{}`); st != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", st, body)
	}
	ageOf := func(queue map[string]any) (float64, bool) {
		if _, ok := queue["oldest_age"]; ok {
			return 0, false
		}
		v, ok := queue["oldest_pending_seconds"].(float64)
		return v, ok
	}
	var fromQueue, fromTargets float64
	waitFor(t, "a pending delivery older than 0 s in both endpoints", func() bool {
		_, q := call(t, "GET", admin+"/admin/queue")
		down, _ := q["targets"].(map[string]any)["down"].(map[string]any)
		a, ok := ageOf(down)
		if !ok {
			t.Fatalf("/admin/queue: %v, want oldest_pending_seconds as a number", down)
		}
		_, tg := call(t, "GET", admin+"/admin/targets")
		first, _ := tg["targets"].([]any)[0].(map[string]any)
		queue, _ := first["queue"].(map[string]any)
		b, ok := ageOf(queue)
		if !ok {
			t.Fatalf("/admin/targets: %v, want oldest_pending_seconds as a number", queue)
		}
		fromQueue, fromTargets = a, b
		return down["depth"] == 1.0 && a > 0 && b > 0
	})
	if fromTargets < fromQueue {
		t.Errorf("/admin/targets read %v s after /admin/queue read %v s", fromTargets, fromQueue)
	}
}
