package admin

import (
	"strings"
	"testing"

	"github.com/hookgate/hookgate/gateway/config"
)

// TestRoutesHideURLSecrets: GET /admin/routes shows a target URL with
// every part that came from ${env:...} as the reference: a webhook secret
// in the path, a key in the query, a whole URL. The loader works out
// which parts those are; nothing here sees the values.
func TestRoutesHideURLSecrets(t *testing.T) {
	env := map[string]string{
		"HG_PATH":  "adm-test-url-path-90c1",
		"HG_QUERY": "adm-test-url-query-2f6b",
		"HG_WHOLE": "https://hooks.example.com/services/adm-test-url-whole-d47e",
	}
	cfg, err := config.ParseWith([]byte(`
[[target]]
name = "slack"
url = "https://hooks.example.com/services/T000/${env:HG_PATH}?key=${env:HG_QUERY}"

[[target]]
name = "teams"
url = "${env:HG_WHOLE}"

[[route]]
name = "in"
path = "/in"
targets = ["slack", "teams"]
`), "config.toml", config.Options{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	_, base := startAdmin(t, config.Admin{}, Describer(func() *config.Config { return cfg }))
	st, body := get(t, base+"/admin/routes", "")
	if st != 200 {
		t.Fatalf("status %d", st)
	}
	for _, secret := range []string{"adm-test-url-path-90c1", "adm-test-url-query-2f6b", "adm-test-url-whole-d47e"} {
		if strings.Contains(body, secret) {
			t.Errorf("/admin/routes shows a URL secret")
		}
	}
	for _, want := range []string{
		`"url":"https://hooks.example.com/services/T000/${env:HG_PATH}?key=${env:HG_QUERY}"`,
		`"url":"${env:HG_WHOLE}"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/admin/routes does not show %s", want)
		}
	}
}
