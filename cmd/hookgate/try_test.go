package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/plugins/plugintest"
)

// TestTryPlugins runs the Howxm fixture (NPS score 10) through real
// plugins with `hookgate try`.
func TestTryPlugins(t *testing.T) {
	nps := plugintest.Build(t, "plugins/howxm-nps")
	filter := plugintest.Build(t, "plugins/filter")
	dir := t.TempDir()
	cfg := `
[transforms]
cache_dir = "cache"

[[target]]
name = "crm"
url = "http://127.0.0.1:9000/crm/tickets"
query = { token = "${env:HOOKGATE_TEST_TOKEN}" }
auth = { type = "hmac", secret = "${env:HOOKGATE_TEST_TOKEN}" }

[[plugin]]
name = "howxm-nps"
wasm = "` + nps + `"

[[plugin]]
name = "filter"
wasm = "` + filter + `"

[[route]]
name = "detractors"
path = "/hooks/howxm"
mode = "sync"
targets = ["crm"]
transforms = [{ plugin = "howxm-nps", config = { max_score = 6, target = "crm" } }]

[[route]]
name = "everyone"
path = "/hooks/all"
mode = "async"
targets = ["crm"]
delay = "90s"
transforms = [{ plugin = "howxm-nps", config = { max_score = 10, target = "crm" } }]

[[route]]
name = "broken"
path = "/hooks/broken"
mode = "sync"
targets = ["crm"]
transforms = [{ plugin = "filter", config = { rules = [{ path = "a", op = "lessthan", value = 1 }] } }]
`
	t.Setenv("HOOKGATE_TEST_TOKEN", "tok-secret-9")
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	const payload = "../../testdata/howxm_entry_submitted.json"

	t.Run("dropped", func(t *testing.T) {
		code, out, errOut := runArgs("try", "--config", path, "--route", "detractors", "--payload", payload)
		if code != 0 || strings.TrimSpace(out) != `{"dropped":"howxm-nps: score 10 above max_score 6"}` {
			t.Errorf("exit %d stdout %q stderr %q", code, out, errOut)
		}
	})
	t.Run("emitted", func(t *testing.T) {
		code, out, errOut := runArgs("try", "--config", path, "--route", "everyone", "--payload", payload)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 1 {
			t.Fatalf("%d deliveries: %s", len(lines), out)
		}
		var d tryDelivery
		if err := json.Unmarshal([]byte(lines[0]), &d); err != nil {
			t.Fatal(err)
		}
		if d.Target != "crm" || d.Method != "POST" || d.Delay != "1m30s" {
			t.Errorf("delivery %+v", d)
		}
		if d.URL != "http://127.0.0.1:9000/crm/tickets?token=${env:HOOKGATE_TEST_TOKEN}" {
			t.Errorf("url %s", d.URL)
		}
		if d.Headers["X-Hookgate-Signature"] != computed || d.Headers["Content-Type"] != "application/json" {
			t.Errorf("headers %v", d.Headers)
		}
		var ticket struct {
			Source       string `json:"source"`
			SerialNumber int    `json:"serial_number"`
			Score        int    `json:"score"`
		}
		if err := json.Unmarshal([]byte(d.Body), &ticket); err != nil || ticket.Source != "howxm" || ticket.Score != 10 {
			t.Errorf("ticket %+v (%v): %s", ticket, err, d.Body)
		}
		if strings.Contains(out+errOut, "tok-secret-9") {
			t.Error("try printed a secret")
		}
	})
	t.Run("plugin error", func(t *testing.T) {
		code, out, errOut := runArgs("try", "--config", path, "--route", "broken", "--payload", payload)
		if code != 1 || out != "" || !strings.Contains(errOut, `unknown op "lessthan"`) {
			t.Errorf("exit %d stdout %q stderr %q", code, out, errOut)
		}
	})
}
