package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func oauth2TOML(auth string) string {
	return `
[[target]]
name = "crm"
url = "https://crm.example.com/api"
auth = ` + auth + `

[[route]]
name = "in"
path = "/in"
targets = ["crm"]
`
}

// TestOAuth2Auth: an oauth2 auth table as written, with its defaults.
func TestOAuth2Auth(t *testing.T) {
	env := mapEnv(map[string]string{"IDP": "https://idp.example.com", "CRM_CLIENT_SECRET": "oat-test-client-secret-6b1d"})
	c, err := Parse([]byte(oauth2TOML(`{ type = "oauth2", token_url = "${env:IDP}/oauth2/token", client_id = "hookgate", client_secret = "${env:CRM_CLIENT_SECRET}", scopes = ["tickets:write", "contacts:read"], audience = "https://crm.example.com/api" }`)), "hookgate.toml", env)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Targets[0].Auth
	if a.TokenURL.String() != "https://idp.example.com/oauth2/token" || a.TokenURLShown.String() != "${env:IDP}/oauth2/token" ||
		a.ClientID != "hookgate" || a.ClientSecret.Reveal() != "oat-test-client-secret-6b1d" || a.ClientSecret.String() != "${env:CRM_CLIENT_SECRET}" ||
		!slices.Equal(a.Scopes, []string{"tickets:write", "contacts:read"}) || a.Audience != "https://crm.example.com/api" || a.AuthStyle != "header" {
		t.Errorf("Auth = %+v", a)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}
}

// TestOAuth2Problems: what an oauth2 table can get wrong, each problem
// naming the key and never the secret.
func TestOAuth2Problems(t *testing.T) {
	const leak = "oat-test-client-secret-6b1d"
	for _, tt := range []struct {
		name, auth string
		want       []string
	}{
		{"nothing given", `{ type = "oauth2" }`, []string{
			`target "crm": auth: type "oauth2" needs token_url (e.g. token_url = "https://idp.example.com/oauth2/token")`,
			`target "crm": auth: type "oauth2" needs client_id (e.g. client_id = "hookgate")`,
			`target "crm": auth: type "oauth2" needs client_secret (e.g. client_secret = "${env:CRM_CLIENT_SECRET}")`,
		}},
		{"bad values", `{ type = "oauth2", token_url = "ftp://idp/token", client_id = "id", client_secret = "` + leak + `", auth_style = "post", scopes = ["a b", ""] }`, []string{
			`target "crm": auth: token_url: "ftp://idp/token": scheme must be https`,
			`target "crm": auth: auth_style: "post" is not supported (use "header": HTTP Basic, which every token endpoint accepts, or "body": form fields)`,
			`target "crm": auth: scopes: "a b" is not one scope (list each scope as its own string, without spaces or quotes)`,
			`target "crm": auth: scopes: "" is not one scope (list each scope as its own string, without spaces or quotes)`,
		}},
		{"credentials in the token url", `{ type = "oauth2", token_url = "https://id:` + leak + `@idp/token", client_id = "id", client_secret = "${env:S}" }`, []string{
			`target "crm": auth: token_url: credentials in the URL are not allowed; they go in client_id and client_secret`,
		}},
		{"keys of another type", `{ type = "bearer", token = "${env:S}", client_id = "id" }`, []string{
			`target "crm": auth: key "client_id" does not apply to type "bearer" (it uses token)`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Parse([]byte(oauth2TOML(tt.auth)), filepath.Join(dir, "hookgate.toml"), mapEnv(map[string]string{"S": "x"}))
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			if got := problems(t, err, dir); !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if strings.Contains(err.Error(), leak) {
				t.Errorf("a problem shows the secret: %v", err)
			}
		})
	}
}

// TestOAuth2Warnings: a literal secret, and a token endpoint over plain
// http off this machine.
func TestOAuth2Warnings(t *testing.T) {
	c, err := Parse([]byte(oauth2TOML(`{ type = "oauth2", token_url = "http://idp.internal/token", client_id = "id", client_secret = "oat-test-client-secret-6b1d", auth_style = "body" }`)), "hookgate.toml", mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`target "crm": auth: client_secret: the value is written in the file; in production use client_secret = "${env:NAME}"`,
		`target "crm": auth: token_url: is http, so the client secret and every token cross the network readable by anyone on the path; use https`,
	}
	if !slices.Equal(c.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(c.Warnings, "\n"), strings.Join(want, "\n"))
	}
	c, err = Parse([]byte(oauth2TOML(`{ type = "oauth2", token_url = "http://127.0.0.1:9000/token", client_id = "id", client_secret = "${env:S}" }`)), "hookgate.toml", mapEnv(map[string]string{"S": "x"}))
	if err != nil || len(c.Warnings) != 0 {
		t.Errorf("a loopback token endpoint: %v, warnings %q", err, c.Warnings)
	}
}
