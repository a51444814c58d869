package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestVerifyEveryProblem: hookgate check reports every problem of a
// verify or dedupe table at once, each under its key, not only the first;
// a key the reader already refused is not reported a second time.
func TestVerifyEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want []string
	}{
		{
			name: "keys that do not apply and bad values",
			src:  verifyRoute(`verify = { type = "hmac", secrets = ["${env:S}"], algorithm = "md5", encoding = "base32", tolerance = "1m", username = "u" }`),
			env:  map[string]string{"S": "x"},
			want: []string{
				`route "howxm": verify: tolerance: does not apply to type "hmac": remove it, or use one of ["timestamped" "standard-webhooks"]`,
				`route "howxm": verify: username: does not apply to type "hmac": remove it, or use one of ["basic"]`,
				`route "howxm": verify: algorithm: "md5" is not supported: use "sha256", "sha1" or "sha512"`,
				`route "howxm": verify: encoding: "base32" is not supported: use "hex" or "base64"`,
			},
		},
		{
			name: "networks, secrets and the username",
			src:  verifyRoute(`verify = { type = "basic", secrets = ["${env:S}", "${env:E}"], allow_ips = ["10.0.0.300", "10.0.0.0/8", "nope"] }`),
			env:  map[string]string{"S": "x", "E": ""},
			want: []string{
				`route "howxm": verify: secrets[1]: environment variable E is set but empty`,
				`route "howxm": verify: allow_ips[0]: "10.0.0.300" is neither an IP address nor a CIDR network: write it like "10.0.0.0/8" or "192.0.2.7"`,
				`route "howxm": verify: allow_ips[2]: "nope" is neither an IP address nor a CIDR network: write it like "10.0.0.0/8" or "192.0.2.7"`,
				`route "howxm": verify: username: basic needs a username without ':': set username = "..."`,
			},
		},
		{
			name: "a misspelt key and a bad value",
			src:  verifyRoute(`verify = { type = "hmac", secrets = ["${env:S}"], algorithm = "md5", hedaer = "X" }`),
			env:  map[string]string{"S": "x"},
			want: []string{
				`route "howxm": verify: unknown key "hedaer" (did you mean "header"?)`,
				`route "howxm": verify: algorithm: "md5" is not supported: use "sha256", "sha1" or "sha512"`,
			},
		},
		{
			name: "an unset variable is reported once, beside the other problems",
			src:  verifyRoute(`verify = { type = "hmac", secrets = ["${env:NEW}", "${env:OLD}"], algorithm = "md5" }`),
			env:  map[string]string{"NEW": "x"},
			want: []string{
				`route "howxm": verify: secrets[1]: environment variable OLD is not set`,
				`route "howxm": verify: algorithm: "md5" is not supported: use "sha256", "sha1" or "sha512"`,
			},
		},
		{
			name: "dedupe: both keys and an empty path",
			src:  verifyRoute(`dedupe = { header = "Idempotency-Key", json = ["id", ""] }`),
			want: []string{
				`route "howxm": dedupe: header: set exactly one of header (e.g. "webhook-id") or json (e.g. ["entry.serial_number"])`,
				`route "howxm": dedupe: json[1]: is empty: write a dotted path such as "entry.serial_number"`,
			},
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
		})
	}
}
