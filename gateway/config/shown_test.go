package config

import (
	"net/url"
	"strings"
	"testing"
)

// TestShownURL: the loader keeps, for each target URL, the form that may
// be printed: each part that came from ${env:...} as the reference,
// wherever it lands once the URL is parsed (host, path, query, a whole
// URL, a value holding '/', '?', '&' or '='), query values redacted unless
// exactly one reference. No secret survives in any part.
func TestShownURL(t *testing.T) {
	const sec = "cfg-test-url-secret-64aa"
	tests := []struct {
		name, url, value, want string
	}{
		{"path segment", "https://hooks.slack.com/services/T0/B0/${env:S}", sec, "https://hooks.slack.com/services/T0/B0/${env:S}"},
		{"path of several segments", "https://hooks.slack.com/services/${env:S}", "T0/B0/" + sec, "https://hooks.slack.com/services/${env:S}"},
		{"part of a segment", "https://x.example/hook-${env:S}.json", sec, "https://x.example/hook-${env:S}.json"},
		{"query value", "https://x.example/h?key=${env:S}&lang=en", sec, "https://x.example/h?key=${env:S}&lang=[redacted]"},
		{"part of a query value", "https://x.example/h?sig=v1.${env:S}", sec, "https://x.example/h?sig=[redacted]"},
		{"query value holding & and =", "https://x.example/h?key=${env:S}&lang=en", sec + "&evil=" + sec, "https://x.example/h?key=[redacted]&lang=[redacted]"},
		{"path holding a query", "https://x.example/${env:S}", "p/" + sec + "?key=" + sec, "https://x.example/${env:S}"},
		{"host", "https://${env:S}/hooks", sec + ".example.com", "https://${env:S}/hooks"},
		{"whole URL", "${env:S}", "https://hooks.example.com/services/" + sec + "?k=" + sec, "${env:S}"},
		{"origin and path", "${env:S}/hooks", "https://x.example/" + sec, "${env:S}/hooks"},
		{"no path", "https://x.example?key=${env:S}", sec, "https://x.example/?key=${env:S}"},
		{"literal only", "http://127.0.0.1:9000/crm?token=abc#frag", sec, "http://127.0.0.1:9000/crm?token=[redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseWith([]byte(`
[[target]]
name = "t"
url = "`+tt.url+`"

[[route]]
name = "r"
path = "/in"
targets = ["t"]
`), "config.toml", Options{Env: func(string) (string, bool) { return tt.value, true }})
			if err != nil {
				t.Fatal(strings.ReplaceAll(err.Error(), sec, "<secret>"))
			}
			tg := &c.Targets[0]
			got := tg.Shown.String()
			if strings.Contains(got, sec) || got != tt.want {
				t.Errorf("shown %s, want %s", strings.ReplaceAll(got, sec, "<secret>"), tt.want)
			}
			if tg.PrintableURL().String() != got {
				t.Errorf("PrintableURL differs from Shown")
			}
			if !strings.Contains(tg.URL.String(), sec) && tt.name != "literal only" {
				t.Errorf("the URL itself lost the secret")
			}
		})
	}
}

// TestPrintableURLByHand: a Target built without the loader shows its URL
// by the same rules, user info and query values redacted.
func TestPrintableURLByHand(t *testing.T) {
	c, err := ParseWith([]byte(`
[[target]]
name = "t"
url = "http://127.0.0.1:9000/crm?token=abc"

[[route]]
name = "r"
path = "/in"
targets = ["t"]
`), "config.toml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	tg := Target{URL: c.Targets[0].URL}
	if got := tg.PrintableURL().String(); got != "http://127.0.0.1:9000/crm?token=[redacted]" {
		t.Errorf("by hand: %s", got)
	}
	u := *tg.URL
	u.User = url.UserPassword("user", "literal-password")
	tg.URL = &u
	if got := tg.PrintableURL().String(); got != "http://[redacted]@127.0.0.1:9000/crm?token=[redacted]" {
		t.Errorf("by hand, user info: %s", got)
	}
}
