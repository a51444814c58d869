package target

import (
	"net"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

const (
	tgtPathSecret  = "tgt-test-url-path-5e8a"
	tgtQuerySecret = "tgt-test-url-query-c07d"
)

// loadTargets loads targets from TOML as hookgate does, with env as the
// environment.
func loadTargets(t *testing.T, toml string, env map[string]string) []config.Target {
	t.Helper()
	cfg, err := config.ParseWith([]byte(toml), "config.toml", config.Options{
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Targets
}

// TestURLSecretsNotShown: Describe (hookgate try, the admin route test,
// /admin/events) and the error of a failed Do (log lines, dead letters)
// print a target URL with every part that came from ${env:...} as the
// reference, whatever the delivery sets, while Do sends the real URL.
func TestURLSecretsNotShown(t *testing.T) {
	s := startSink(t, sink.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there now: every Do fails with a dial error
	ts := loadTargets(t, `
[[target]]
name = "up"
url = "`+s.URL()+`/services/${env:P}?key=${env:Q}"
query = { extra = "${env:Q}" }

[[target]]
name = "down"
url = "http://`+closed+`/services/${env:P}?key=${env:Q}&keep=1"

[[route]]
name = "in"
path = "/in"
targets = ["up", "down"]
`, map[string]string{"P": "T000/B000/" + tgtPathSecret, "Q": tgtQuerySecret})

	up, down := newClient(t, ts[0]), newClient(t, ts[1])
	deliveries := []delivery.Delivery{
		{ID: []byte("d.0")},
		{ID: []byte("d.1"), Query: kvs("key", "from-plugin", "n", "1")},
		{ID: []byte("d.2"), Path: []byte("/own/path"), Query: kvs("extra", "x")},
	}
	wantShown := []string{
		"/services/${env:P}?key=${env:Q}&extra=${env:Q}",
		"/services/${env:P}?extra=${env:Q}&key=from-plugin&n=1",
		"/own/path?key=${env:Q}&extra=x",
	}
	for i := range deliveries {
		d := &deliveries[i]
		shown := up.Describe(d).URL
		if leaked(shown) || shown != s.URL()+wantShown[i] {
			t.Errorf("Describe(%s) = %s, want %s", d.ID, redactSecrets(shown), s.URL()+wantShown[i])
		}
		got, _ := send(t, s, up, d)
		if i == 0 && (got.Path != "/services/T000/B000/"+tgtPathSecret || got.Query != "key="+tgtQuerySecret+"&extra="+tgtQuerySecret) {
			t.Errorf("sent %s?%s, want the real URL", redactSecrets(got.Path), redactSecrets(got.Query))
		}

		var r Result
		err := down.Do(d, &r)
		if err == nil {
			t.Fatalf("Do to a closed port: no error")
		}
		if leaked(err.Error()) || !strings.Contains(err.Error(), "key=${env:Q}") || (len(d.Path) == 0 && !strings.Contains(err.Error(), "/services/${env:P}?")) {
			t.Errorf("Do error: %s", redactSecrets(err.Error()))
		}
		if leaked(down.Describe(d).URL) {
			t.Errorf("Describe: %s", redactSecrets(down.Describe(d).URL))
		}
	}
}

func leaked(s string) bool {
	return strings.Contains(s, tgtPathSecret) || strings.Contains(s, tgtQuerySecret)
}

// redactSecrets hides the test secrets in a failure message.
func redactSecrets(s string) string {
	return strings.NewReplacer(tgtPathSecret, "<path secret>", tgtQuerySecret, "<query secret>").Replace(s)
}
