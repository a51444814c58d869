package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/syncbuf"
)

// TestSyncRouteToDisabledTarget: once disable_after has disabled a target,
// a sync route does not forward to it either. The sender gets 503
// target_disabled with Retry-After and a sentence saying the target is
// disabled and an operator re-enables it (no URL, address or error of the
// target's); the refusal is logged and counted like the others, and the
// target hears nothing. Once enabled, the sync route forwards again.
// Before, the sync route went on sending to the disabled target.
func TestSyncRouteToDisabledTarget(t *testing.T) {
	crm, ops := startFlip(t, 503), startFlip(t, 200)
	var log syncbuf.Buffer
	cfgText := disableConfig(crm.URL, ops.URL, "3s") + `
[[route]]
name = "now"
path = "/hooks/now"
mode = "sync"
targets = ["crm"]

[[route]]
name = "fan"
path = "/hooks/fan"
mode = "sync"
targets = ["ops", "crm"]
`
	_, admin, ingest := startLogged(t, cfgText, &log)
	if code, body := fetch(t, "POST", ingest+"/hooks/queued", nil, `{"n":1}`); code != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", code, body)
	}
	waitFor(t, "crm disabled", func() bool { return crmQueue(t, admin)["breaker"] == "disabled" })
	waitFor(t, "nothing in flight to crm", func() bool { return crmQueue(t, admin)["leased"] == float64(0) })

	crm.status.Store(200) // it would take the request now: it must not get it
	crm.mu.Lock()
	before := len(crm.bodies)
	crm.mu.Unlock()
	resp, err := http.Post(ingest+"/hooks/now", "application/json", strings.NewReader(`{"n":2}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(b, &answer); err != nil {
		t.Fatalf("answer %q: %v", b, err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || answer.Error.Code != "target_disabled" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("sync request to a disabled target: %d %s (Retry-After %q), want 503 target_disabled with Retry-After",
			resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	msg := answer.Error.Message
	if !strings.Contains(msg, `target "crm" is disabled`) || !strings.Contains(msg, "operator") || !strings.Contains(msg, "enable") {
		t.Fatalf("message %q does not say the target is disabled and an operator re-enables it", msg)
	}
	for _, internal := range []string{"127.0.0.1", "/crm", "503", "http", "disable_after", "/admin"} {
		if strings.Contains(msg, internal) {
			t.Fatalf("message %q hands the sender %q", msg, internal)
		}
	}
	// A fan-out answers with its first target's answer: the others are
	// sent, the disabled one left out.
	if code, body := fetch(t, "POST", ingest+"/hooks/fan", nil, `{"n":4}`); code != http.StatusOK {
		t.Fatalf("sync fan-out whose second target is disabled: %d %s, want the first target's 200", code, body)
	}
	crm.mu.Lock()
	after := len(crm.bodies)
	crm.mu.Unlock()
	if after != before {
		t.Fatalf("the disabled target got %d requests from the sync routes", after-before)
	}
	if !strings.Contains(log.String(), "code=target_disabled") || !strings.Contains(log.String(), "ingest: refused") {
		t.Fatalf("the refusal is not logged:\n%s", log.String())
	}
	if _, metrics := fetch(t, "GET", admin+"/metrics", nil, ""); !strings.Contains(metrics, `hookgate_route_rejected_total{reason="target_disabled",route="now"} 1`) {
		t.Fatalf("the refusal is not counted:\n%s", grepLines(metrics, "rejected"))
	}

	if code, body := call(t, "POST", admin+"/admin/targets/crm/enable"); code != http.StatusOK {
		t.Fatalf("enable: %d %v", code, body)
	}
	if code, body := fetch(t, "POST", ingest+"/hooks/now", nil, `{"n":3}`); code != http.StatusOK {
		t.Fatalf("sync request after enable: %d %s", code, body)
	}
}

// grepLines is the lines of text containing s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
