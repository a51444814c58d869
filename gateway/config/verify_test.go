package config

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// route is a [[route]] for the verify and dedupe cases: extra holds the
// keys under test.
func verifyRoute(extra string) string {
	return targetsTOML + "[[route]]\nname = \"howxm\"\npath = \"/hooks/howxm\"\ntargets = [\"crm\"]\n" + extra + "\n"
}

func TestVerifyDedupeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want []string
	}{
		{
			name: "unknown verify type",
			src:  verifyRoute(`verify = { type = "hmca", secrets = ["${env:S}"] }`),
			env:  map[string]string{"S": "x"},
			want: []string{`route "howxm": verify: type: "hmca" is not a verification type: use "hmac", "timestamped", "standard-webhooks", "basic" or "token"`},
		},
		{
			name: "verify type without secrets",
			src:  verifyRoute(`verify = { type = "hmac" }`),
			want: []string{`route "howxm": verify: secrets: type "hmac" needs at least one secret: set secrets = ["${env:NAME}"]`},
		},
		{
			name: "secret from an unset variable is reported once",
			src:  verifyRoute(`verify = { type = "hmac", secrets = ["${env:NEW}", "${env:OLD}"] }`),
			env:  map[string]string{"NEW": "x"},
			want: []string{`route "howxm": verify: secrets[1]: environment variable OLD is not set`},
		},
		{
			name: "key that does not apply to the type",
			src:  verifyRoute(`verify = { type = "basic", username = "u", secrets = ["${env:S}"], algorithm = "sha1" }`),
			env:  map[string]string{"S": "x"},
			want: []string{`route "howxm": verify: algorithm: does not apply to type "basic": remove it, or use one of ["hmac"]`},
		},
		{
			name: "bad algorithm and misspelt key",
			src:  verifyRoute(`verify = { type = "hmac", secrets = ["${env:S}"], algorithm = "md5", hedaer = "X" }`),
			env:  map[string]string{"S": "x"},
			want: []string{
				`route "howxm": verify: unknown key "hedaer" (did you mean "header"?)`,
				`route "howxm": verify: algorithm: "md5" is not supported: use "sha256", "sha1" or "sha512"`,
			},
		},
		{
			name: "bad algorithm",
			src:  verifyRoute(`verify = { type = "hmac", secrets = ["${env:S}"], algorithm = "md5" }`),
			env:  map[string]string{"S": "x"},
			want: []string{`route "howxm": verify: algorithm: "md5" is not supported: use "sha256", "sha1" or "sha512"`},
		},
		{
			name: "standard-webhooks secret not whsec",
			src:  verifyRoute(`verify = { type = "standard-webhooks", secrets = ["${env:S}"] }`),
			env:  map[string]string{"S": "not base64!"},
			want: []string{`route "howxm": verify: secrets[0]: is not "whsec_" followed by base64: copy the signing secret exactly as the sender shows it`},
		},
		{
			name: "token with header and query",
			src:  verifyRoute(`verify = { type = "token", header = "X-Key", query = "key", secrets = ["${env:S}"] }`),
			env:  map[string]string{"S": "x"},
			want: []string{`route "howxm": verify: header: token needs exactly one of header (e.g. "X-Api-Key") or query (e.g. "token")`},
		},
		{
			name: "bad allow_ips entry",
			src:  verifyRoute(`verify = { allow_ips = ["10.0.0.0/8", "10.0.0.300"] }`),
			want: []string{`route "howxm": verify: allow_ips[1]: "10.0.0.300" is neither an IP address nor a CIDR network: write it like "10.0.0.0/8" or "192.0.2.7"`},
		},
		{
			name: "empty verify table",
			src:  verifyRoute(`verify = {}`),
			want: []string{`route "howxm": verify: type: is empty and allow_ips is empty, so nothing would be checked: set a type or allow_ips, or leave verify out`},
		},
		{
			name: "tolerance below a second",
			src:  verifyRoute(`verify = { type = "timestamped", secrets = ["${env:S}"], tolerance = "500ms" }`),
			env:  map[string]string{"S": "x"},
			want: []string{`route "howxm": verify: tolerance: must be at least 1s (timestamps have one-second resolution); the default is 5m`},
		},
		{
			name: "secrets of the wrong shape never quoted",
			src:  verifyRoute(`verify = { type = "hmac", secrets = "leaky-value" }`),
			want: []string{`route "howxm": verify: secrets: must be an array of strings like ["${env:NAME}"], not a string`},
		},
		{
			name: "invalid verify header name",
			src:  verifyRoute(`verify = { type = "hmac", secrets = ["${env:S}"], header = "X Sig" }`),
			env:  map[string]string{"S": "x"},
			want: []string{`route "howxm": verify: header: "X Sig" is not a valid header name`},
		},
		{
			name: "dedupe with header and json",
			src:  verifyRoute(`dedupe = { header = "Idempotency-Key", json = ["id"] }`),
			want: []string{`route "howxm": dedupe: header: set exactly one of header (e.g. "webhook-id") or json (e.g. ["entry.serial_number"])`},
		},
		{
			name: "dedupe with neither",
			src:  verifyRoute(`dedupe = { ttl = "1h" }`),
			want: []string{`route "howxm": dedupe: header: set exactly one of header (e.g. "webhook-id") or json (e.g. ["entry.serial_number"])`},
		},
		{
			name: "dedupe ttl, max_entries and an empty path",
			src:  verifyRoute(`dedupe = { json = ["entry.serial_number", ""], ttl = "0s", max_entries = 0 }`),
			want: []string{
				`route "howxm": dedupe: max_entries: must be at least 1, not 0`,
				`route "howxm": dedupe: ttl: must be more than 0s (e.g. ttl = "24h")`,
				`route "howxm": dedupe: json[1]: is empty: write a dotted path such as "entry.serial_number"`,
			},
		},
		{
			name: "dedupe empty json path",
			src:  verifyRoute(`json = true` + "\n" + `dedupe = { json = ["entry.serial_number", ""] }`),
			want: []string{`route "howxm": dedupe: json[1]: is empty: write a dotted path such as "entry.serial_number"`},
		},
		{
			name: "dedupe misspelt key",
			src:  verifyRoute(`dedupe = { header = "webhook-id", tll = "1h" }`),
			want: []string{`route "howxm": dedupe: unknown key "tll" (did you mean "ttl"?)`},
		},
		{
			name: "route body over the body memory budget",
			src:  "[server]\nmax_body_memory = \"1MiB\"\n" + verifyRoute(`max_body = "2MiB"`),
			want: []string{`route "howxm": max_body 2097152 is more than server.max_body_memory 1048576, so a body that large would always be refused as overload; raise server.max_body_memory or lower max_body`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c, err := Parse([]byte(tt.src), filepath.Join(dir, "config.toml"), mapEnv(tt.env))
			if err == nil {
				t.Fatalf("Parse succeeded (%s), want errors:\n%s", c.Summary(), strings.Join(tt.want, "\n"))
			}
			if got := problems(t, err, dir); !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if strings.Contains(err.Error(), "leaky-value") {
				t.Errorf("the error quotes a secret: %v", err)
			}
		})
	}
}

func TestStandardWebhooksDefaultDedupe(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want *Dedupe
	}{
		{
			name: "default tolerance",
			src:  `verify = { type = "standard-webhooks", secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] }`,
			want: &Dedupe{Header: "webhook-id", TTL: 10 * time.Minute, MaxEntries: 100_000},
		},
		{
			name: "twice a set tolerance",
			src:  `verify = { type = "standard-webhooks", secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], tolerance = "2m" }`,
			want: &Dedupe{Header: "webhook-id", TTL: 4 * time.Minute, MaxEntries: 100_000},
		},
		{
			name: "a dedupe table wins",
			src: `verify = { type = "standard-webhooks", secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] }
dedupe = { header = "Idempotency-Key", ttl = "1h" }`,
			want: &Dedupe{Header: "Idempotency-Key", TTL: time.Hour, MaxEntries: 100_000},
		},
		{
			name: "other types get none",
			src:  `verify = { type = "hmac", secrets = ["x"] }`,
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(verifyRoute(tt.src)), filepath.Join(t.TempDir(), "config.toml"), mapEnv(nil))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Routes[0].Dedupe
			if (got == nil) != (tt.want == nil) || got != nil && (got.Header != tt.want.Header || got.TTL != tt.want.TTL ||
				got.MaxEntries != tt.want.MaxEntries || !slices.Equal(got.JSON, tt.want.JSON)) {
				t.Errorf("Dedupe = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestVerifySecretsNeverPrinted: verify secrets, literal or from the
// environment, do not show in any usual rendering of the config.
func TestVerifySecretsNeverPrinted(t *testing.T) {
	const leak = "v3rify-LEAK"
	src := verifyRoute(`verify = { type = "hmac", secrets = ["` + leak + `-literal", "${env:NEW}"] }`)
	c, err := Parse([]byte(src), filepath.Join(t.TempDir(), "config.toml"), mapEnv(map[string]string{"NEW": leak + "-env"}))
	if err != nil {
		t.Fatal(err)
	}
	v := c.Routes[0].Verify
	if got := v.Spec().Secrets; !slices.Equal(got, []string{leak + "-literal", leak + "-env"}) {
		t.Fatalf("Spec().Secrets = %q", got)
	}
	for _, out := range renderings(c) {
		if strings.Contains(out, leak) {
			t.Errorf("output shows a secret:\n%s", out)
		}
	}
}

// renderings are the usual ways a config ends up printed.
func renderings(c *Config) []string {
	out := []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), strings.Join(c.Warnings, "\n")}
	for _, r := range c.Routes {
		out = append(out, fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r))
		if r.Verify != nil {
			out = append(out, fmt.Sprintf("%v", *r.Verify), fmt.Sprintf("%+v", r.Verify), fmt.Sprintf("%#v", r.Verify), r.Verify.Spec().String(), fmt.Sprintf("%#v", r.Verify.Spec()))
		}
	}
	js, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return append(out, string(js))
}
