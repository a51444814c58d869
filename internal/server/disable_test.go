package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hookgate/hookgate/internal/syncbuf"
)

const opsWhsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// flipTarget is a real HTTP server on 127.0.0.1 answering status, which
// the test changes, and keeping what it received.
type flipTarget struct {
	*httptest.Server
	status atomic.Int64
	mu     sync.Mutex
	bodies []string
	heads  []http.Header
}

func startFlip(t *testing.T, status int) *flipTarget {
	f := &flipTarget{}
	f.status.Store(int64(status))
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.bodies, f.heads = append(f.bodies, string(b)), append(f.heads, r.Header.Clone())
		f.mu.Unlock()
		w.WriteHeader(int(f.status.Load()))
	}))
	t.Cleanup(f.Close)
	return f
}

// event returns the first operational event of typ received, its
// Standard Webhooks signature checked, or nil.
func (f *flipTarget) event(t *testing.T, typ string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(opsWhsec, "whsec_"))
	for i, body := range f.bodies {
		h := f.heads[i]
		m := hmac.New(sha256.New, key)
		m.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + body))
		if h.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)) {
			t.Fatalf("operational event with a bad signature: %v %s", h, body)
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(body), &ev); err != nil {
			t.Fatal(err)
		}
		if ev["type"] == typ {
			return ev
		}
	}
	return nil
}

func disableConfig(crm, ops, crmTimeout string) string {
	return `
[server]
listen = "LISTEN"
shutdown_timeout = "5s"

[admin]
listen = "ADMIN"

[queue]
path = "queue"
sync = "batch"

[[target]]
name = "crm"
url = "` + crm + `/crm"
timeout = "` + crmTimeout + `"
disable_after = "300ms"
retry = { initial = "10ms", max = "30ms", max_attempts = 1000 }
breaker = { failures = 0 }

[[target]]
name = "ops"
url = "` + ops + `/ops"
auth = { type = "standard-webhooks", secret = "` + opsWhsec + `" }

[operations]
target = "ops"

[[route]]
name = "queued"
path = "/hooks/queued"
targets = ["crm"]
`
}

// crmQueue is the "queue" of target crm in GET /admin/targets.
func crmQueue(t *testing.T, admin string) map[string]any {
	_, body := call(t, "GET", admin+"/admin/targets")
	for _, tg := range body["targets"].([]any) {
		if m := tg.(map[string]any); m["name"] == "crm" {
			return m["queue"].(map[string]any)
		}
	}
	t.Fatal("no target crm in /admin/targets")
	return nil
}

// TestAutoDisableEndToEnd: through the real gateway, a target failing
// for disable_after is disabled (admin answers and metrics say so, the
// operations target gets a signed target.disabled), keeps its deliveries,
// and drains once enabled through the admin API; disabled again, a reload
// that changes it enables it too.
func TestAutoDisableEndToEnd(t *testing.T) {
	crm, ops := startFlip(t, 503), startFlip(t, 200)
	var log syncbuf.Buffer
	s, admin, ingest := startLogged(t, disableConfig(crm.URL, ops.URL, "3s"), &log)
	for range 3 {
		if code, body := fetch(t, "POST", ingest+"/hooks/queued", nil, `{"n":1}`); code != http.StatusAccepted {
			t.Fatalf("ingest: %d %s", code, body)
		}
	}
	waitFor(t, "crm disabled", func() bool { return crmQueue(t, admin)["breaker"] == "disabled" })
	if _, metrics := fetch(t, "GET", admin+"/metrics", nil, ""); !strings.Contains(metrics, `hookgate_target_breaker_state{target="crm"} 3`) {
		t.Fatalf("metrics do not show crm disabled:\n%s", metrics)
	}
	var disabled map[string]any
	waitFor(t, "target.disabled at the operations target", func() bool { disabled = ops.event(t, "target.disabled"); return disabled != nil })
	if data := disabled["data"].(map[string]any); data["target"] != "crm" || data["disable_after"] != "300ms" {
		t.Fatalf("target.disabled: %v", disabled)
	}
	if q := crmQueue(t, admin); q["depth"] != float64(3) || q["dead"] != float64(0) {
		t.Fatalf("crm's deliveries are not all kept: %v", q)
	}
	if !strings.Contains(log.String(), "POST /admin/targets/crm/enable") {
		t.Fatalf("the log does not say how to enable it:\n%s", log.String())
	}

	crm.status.Store(200)
	code, body := call(t, "POST", admin+"/admin/targets/crm/enable")
	if code != http.StatusOK || body["was_disabled"] != true || body["pending"] != float64(3) {
		t.Fatalf("enable: %d %v", code, body)
	}
	waitFor(t, "crm drained", func() bool { q := crmQueue(t, admin); return q["depth"] == float64(0) && q["breaker"] == "closed" })
	waitFor(t, "target.recovered", func() bool { return ops.event(t, "target.recovered") != nil })
	if code, body := call(t, "POST", admin+"/admin/targets/nope/enable"); code != http.StatusNotFound {
		t.Fatalf("enable of an unknown target: %d %v", code, body)
	}

	// Disabled again; a reload that changes the target enables it.
	crm.status.Store(503)
	fetch(t, "POST", ingest+"/hooks/queued", nil, `{"n":2}`)
	waitFor(t, "crm disabled again", func() bool { return crmQueue(t, admin)["breaker"] == "disabled" })
	rewrite(t, s, disableConfig(crm.URL, ops.URL, "3s")) // the same config: still disabled
	if code, body := call(t, "POST", admin+"/admin/reload"); code != http.StatusOK {
		t.Fatalf("reload: %d %v", code, body)
	}
	if b := crmQueue(t, admin)["breaker"]; b != "disabled" {
		t.Fatalf("a reload that does not change crm enabled it: breaker %v", b)
	}
	crm.status.Store(200)
	rewrite(t, s, disableConfig(crm.URL, ops.URL, "4s"))
	if code, body := call(t, "POST", admin+"/admin/reload"); code != http.StatusOK {
		t.Fatalf("reload: %d %v", code, body)
	}
	waitFor(t, "crm drained after the reload", func() bool { q := crmQueue(t, admin); return q["depth"] == float64(0) && q["breaker"] == "closed" })
}
