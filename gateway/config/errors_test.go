package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Shared pieces of the table cases: two targets and one plugin, so cases
// only write what they break.
const (
	targetsTOML = `
[[target]]
name = "crm"
url = "http://127.0.0.1:9000/crm"

[[target]]
name = "survey"
url = "http://127.0.0.1:9000/survey"
`
	pluginTOML = `
[[plugin]]
name = "filter"
wasm = "filter.wasm"
`
	routeTOML = `
[[route]]
name = "howxm"
path = "/hooks/howxm"
targets = ["crm"]
`
)

// parseIn parses src as dir/config.toml, with dir holding filter.wasm.
func parseIn(t *testing.T, src string, env map[string]string) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "filter.wasm"), []byte("\x00asm"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Parse([]byte(src), filepath.Join(dir, "config.toml"), mapEnv(env))
}

func mapEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// problems returns the *Error's problems, with the temp dir shown as $DIR.
func problems(t *testing.T, err error, dir string) []string {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error is %T (%v), want *config.Error", err, err)
	}
	out := make([]string, len(ce.Problems))
	for i, p := range ce.Problems {
		out[i] = strings.ReplaceAll(p, dir, "$DIR")
	}
	return out
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want []string
	}{
		{
			name: "unknown top-level key",
			src:  "lgo = { level = \"info\" }\n" + targetsTOML + routeTOML,
			want: []string{`unknown key "lgo" (did you mean "log"?)`},
		},
		{
			name: "unknown key in a section",
			src:  "[server]\nlisten = \"127.0.0.1:8080\"\nmax_bdy = \"1MiB\"\n" + targetsTOML + routeTOML,
			want: []string{`server: unknown key "max_bdy" (did you mean "max_body"?)`},
		},
		{
			name: "unknown key in a route",
			src:  targetsTOML + "[[route]]\nname = \"howxm\"\npath = \"/hooks/howxm\"\ntragets = [\"crm\"]\n",
			want: []string{
				`route "howxm": unknown key "tragets" (did you mean "targets"?)`,
				`route "howxm": has no targets and no transforms; add targets = ["..."] naming a [[target]]`,
			},
		},
		{
			name: "unknown key in a nested table",
			src: `
[[target]]
name = "crm"
url = "http://127.0.0.1:9000/crm"
auth = { type = "hmac", secret = "s", hedaer = "X-Sig" }
` + routeTOML,
			want: []string{`target "crm": auth: unknown key "hedaer" (did you mean "header"?)`},
		},
		{
			name: "unknown key without a near match",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\ncolour = \"blue\"\n" + routeTOML,
			want: []string{`target "crm": unknown key "colour"`},
		},
		{
			name: "unknown target in a route",
			src:  targetsTOML + "[[route]]\nname = \"howxm\"\npath = \"/hooks/howxm\"\ntargets = [\"crm2\"]\n",
			want: []string{`route "howxm": target "crm2" is not defined (defined targets: crm, survey)`},
		},
		{
			name: "unknown plugin in a transform step",
			src: targetsTOML + pluginTOML + `
[[route]]
name = "howxm"
path = "/hooks/howxm"
targets = ["crm"]
transforms = [{ plugin = "filter" }, { plugin = "nps" }]
`,
			want: []string{`route "howxm": transforms[1]: plugin "nps" is not defined (defined plugins: filter)`},
		},
		{
			name: "transform step without plugin and with a bad config",
			src: targetsTOML + pluginTOML + `
[[route]]
name = "howxm"
path = "/hooks/howxm"
transforms = [{ config = { a = 1 } }, { plugin = "filter", config = "x" }]
`,
			want: []string{
				`route "howxm": transforms[0]: plugin: is missing; name a [[plugin]], e.g. { plugin = "filter", config = { ... } }`,
				`route "howxm": transforms[1]: config: must be a table like { key = "value" }, not a string`,
			},
		},
		{
			name: "duplicate route path and method",
			src: targetsTOML + `
[[route]]
name = "a"
path = "/hooks/x"
targets = ["crm"]

[[route]]
name = "b"
path = "/hooks/x"
targets = ["survey"]

[[route]]
name = "c"
method = "PUT"
path = "/hooks/x"
targets = ["survey"]
`,
			want: []string{`route "b": path "/hooks/x" is already used by route "a"`},
		},
		{
			name: "duplicate names",
			src: targetsTOML + `
[[target]]
name = "crm"
url = "http://127.0.0.1:9000/other"
` + pluginTOML + pluginTOML + routeTOML + routeTOML,
			want: []string{
				`target #3: name "crm" is already used by target #1; target names must be unique`,
				`plugin #2: name "filter" is already used by plugin #1; plugin names must be unique`,
				`route #2: name "howxm" is already used by route #1; route names must be unique`,
				`route "howxm": path "/hooks/howxm" is already used by route "howxm"`,
			},
		},
		{
			name: "bad duration",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\ntimeout = \"5 seconds\"\n" + routeTOML,
			want: []string{`target "crm": timeout: "5 seconds" is not a duration (use e.g. "5s", "250ms")`},
		},
		{
			name: "duration given as a number",
			src:  "[server]\nread_timeout = 5\n" + targetsTOML + routeTOML,
			want: []string{`server: read_timeout: 5 is not a duration (use a string such as "5s", "250ms")`},
		},
		{
			name: "negative and zero durations",
			src:  "[server]\nread_timeout = \"-1s\"\nidle_timeout = \"0s\"\n" + targetsTOML + routeTOML,
			want: []string{
				`server: read_timeout: "-1s" must not be negative`,
				`server: idle_timeout: must be more than 0s`,
			},
		},
		{
			name: "plugin start_timeout zero or not a duration",
			src: targetsTOML + "[[plugin]]\nname = \"filter\"\nwasm = \"filter.wasm\"\nstart_timeout = \"0s\"\n" +
				"[[plugin]]\nname = \"slow\"\nwasm = \"filter.wasm\"\nstart_timeout = 5\n" + routeTOML,
			want: []string{
				`plugin "filter": start_timeout: must be more than 0s`,
				`plugin "slow": start_timeout: 5 is not a duration (use a string such as "5s", "250ms")`,
			},
		},
		{
			name: "bad size",
			src:  "[server]\nmax_body = \"lots\"\n" + targetsTOML + routeTOML,
			want: []string{`server: max_body: "lots" is not a size (use e.g. "1MiB", "512KiB", "64KB" or a number of bytes)`},
		},
		{
			name: "bad URL",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://[::1\"\n" + routeTOML,
			want: []string{`target "crm": url "http://[::1": not a valid URL`},
		},
		{
			name: "bad URL scheme",
			src:  "[[target]]\nname = \"crm\"\nurl = \"ftp://x\"\n" + routeTOML,
			want: []string{`target "crm": url "ftp://x": scheme must be http or https`},
		},
		{
			name: "URL without host",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http:///path\"\n" + routeTOML,
			want: []string{`target "crm": url "http:///path": has no host`},
		},
		{
			name: "URL with credentials",
			src:  "[[target]]\nname = \"crm\"\nurl = \"https://bob:pa55@crm.example.com/\"\n" + routeTOML,
			want: []string{`target "crm": url: credentials in the URL are not allowed; use auth = { type = "basic", username = "...", password = "${env:NAME}" }`},
		},
		{
			name: "missing url",
			src:  "[[target]]\nname = \"crm\"\n" + routeTOML,
			want: []string{`target "crm": url: is missing (e.g. url = "https://crm.example.com/hooks")`},
		},
		{
			name: "missing and invalid names",
			src:  "[[target]]\nurl = \"http://127.0.0.1:9000/crm\"\n[[target]]\nname = \"a b\"\nurl = \"http://127.0.0.1:9000/crm\"\n",
			want: []string{
				`target #1: name: is missing; every [[target]] needs a name`,
				`target #2: name: "a b" is not a valid name (use letters, digits, '.', '_' and '-', starting with a letter or digit)`,
			},
		},
		{
			name: "bad method",
			src:  targetsTOML + "[[route]]\nname = \"howxm\"\nmethod = \"FETCH\"\npath = \"/hooks/howxm\"\ntargets = [\"crm\"]\n",
			want: []string{`route "howxm": method: "FETCH" is not an HTTP method (use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)`},
		},
		{
			name: "path not starting with a slash",
			src:  targetsTOML + "[[route]]\nname = \"howxm\"\npath = \"hooks/howxm\"\ntargets = [\"crm\"]\n",
			want: []string{`route "howxm": path: "hooks/howxm" must start with "/"`},
		},
		{
			name: "path with a star in the middle",
			src:  targetsTOML + "[[route]]\nname = \"howxm\"\npath = \"/hooks/*/x\"\ntargets = [\"crm\"]\n",
			want: []string{`route "howxm": path: "/hooks/*/x" may hold "*" only as a final "/*" (prefix match)`},
		},
		{
			name: "missing path",
			src:  targetsTOML + "[[route]]\nname = \"howxm\"\ntargets = [\"crm\"]\n",
			want: []string{`route "howxm": path: is missing (e.g. path = "/hooks/howxm")`},
		},
		{
			name: "mode not sync or async",
			src:  targetsTOML + "[[route]]\nname = \"howxm\"\npath = \"/hooks/howxm\"\nmode = \"later\"\ntargets = [\"crm\"]\n",
			want: []string{`route "howxm": mode: "later" is not a mode (use "async": queue and answer 202, or "sync": forward now and answer with the target's reply)`},
		},
		{
			name: "sync route with delay",
			src:  targetsTOML + "[[route]]\nname = \"howxm\"\npath = \"/hooks/howxm\"\nmode = \"sync\"\ndelay = \"1h\"\ntargets = [\"crm\"]\n",
			want: []string{`route "howxm": delay: is not allowed on a sync route: the sender waits for the answer; use mode = "async" or remove delay`},
		},
		{
			name: "route with no targets and no transforms",
			src:  targetsTOML + "[[route]]\nname = \"howxm\"\npath = \"/hooks/howxm\"\n",
			want: []string{`route "howxm": has no targets and no transforms; add targets = ["..."] naming a [[target]]`},
		},
		{
			name: "target listed twice",
			src:  targetsTOML + "[[route]]\nname = \"howxm\"\npath = \"/hooks/howxm\"\ntargets = [\"crm\", \"crm\"]\n",
			want: []string{`route "howxm": targets: "crm" is listed twice`},
		},
		{
			name: "auth type unknown",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nauth = { type = \"oauth\" }\n" + routeTOML,
			want: []string{`target "crm": auth: type: "oauth" is not supported (use none, basic, bearer, header, hmac, standard-webhooks or oauth2)`},
		},
		{
			name: "basic auth needs username and password",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nauth = { type = \"basic\" }\n" + routeTOML,
			want: []string{
				`target "crm": auth: type "basic" needs username (e.g. username = "hookgate")`,
				`target "crm": auth: type "basic" needs password (e.g. password = "${env:CRM_PASSWORD}")`,
			},
		},
		{
			name: "bearer auth needs a token",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nauth = { type = \"bearer\", token = \"\" }\n" + routeTOML,
			want: []string{`target "crm": auth: token: must not be empty`},
		},
		{
			name: "header auth needs header and value",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nauth = { type = \"header\", header = \"X Key\" }\n" + routeTOML,
			want: []string{
				`target "crm": auth: header: "X Key" is not a valid header name`,
				`target "crm": auth: type "header" needs value (e.g. value = "${env:CRM_API_KEY}")`,
			},
		},
		{
			name: "hmac auth needs a secret",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nauth = { type = \"hmac\" }\n" + routeTOML,
			want: []string{`target "crm": auth: type "hmac" needs secret (e.g. secret = "${env:CRM_SIGNING_SECRET}")`},
		},
		{
			name: "standard-webhooks needs a whsec_ secret",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nauth = { type = \"standard-webhooks\", secret = \"not-base64!\" }\n" + routeTOML,
			want: []string{`target "crm": auth: secret: must be "whsec_" followed by base64, as Standard Webhooks secrets are issued`},
		},
		{
			name: "auth key of another type",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nauth = { type = \"basic\", username = \"u\", password = \"p\", token = \"t\" }\n" + routeTOML,
			want: []string{`target "crm": auth: key "token" does not apply to type "basic" (it uses username, password)`},
		},
		{
			name: "max_conns below one",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nmax_conns = 0\n" + routeTOML,
			want: []string{`target "crm": max_conns: must be at least 1, not 0`},
		},
		{
			name: "success status out of range",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nsuccess = { status = [200, 700] }\n" + routeTOML,
			want: []string{`target "crm": success: status: 700 is not an HTTP status (use 100 to 599)`},
		},
		{
			name: "success json_path without json_equals",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nsuccess = { json_path = \"status\" }\n" + routeTOML,
			want: []string{`target "crm": success: json_equals: is missing: json_path needs the JSON value that means success (e.g. json_equals = "true")`},
		},
		{
			name: "retry max below initial and jitter out of range",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nretry = { initial = \"1m\", max = \"10s\", jitter = 1.5 }\n" + routeTOML,
			want: []string{
				`target "crm": retry: max: 10s must not be less than initial (1m0s)`,
				`target "crm": retry: jitter: 1.5 is out of range (use 0 to 1, a fraction of each interval)`,
			},
		},
		{
			name: "wrong value types",
			src:  "[log]\naccess = \"yes\"\n[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nmax_conns = \"8\"\nheaders = { X-Num = 5 }\n" + routeTOML,
			want: []string{
				`log: access: must be true or false, not a string`,
				`target "crm": header "X-Num": must be a string, not an integer`,
				`target "crm": max_conns: must be an integer, not a string`,
			},
		},
		{
			name: "bad static headers",
			src:  "[[target]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9000/crm\"\nid_header = \"Host\"\nheaders = { Content-Length = \"1\", X-A = \"1\", x-a = \"2\" }\n" + routeTOML,
			want: []string{
				`target "crm": header "Content-Length" is set by hookgate and cannot be configured`,
				`target "crm": header "x-a" is also written as "X-A"; header names ignore case, keep one`,
				`target "crm": id_header: "Host" cannot carry the delivery id (use a header name such as "Idempotency-Key"; "" turns it off)`,
			},
		},
		{
			name: "missing env var",
			src: targetsTOML + `
[[target]]
name = "surveylab"
url = "http://127.0.0.1:9000/surveylab"
query = { apiToken = "${env:SURVEYLAB_TOKEN}" }
` + routeTOML,
			want: []string{`target "surveylab": query "apiToken": environment variable SURVEYLAB_TOKEN is not set`},
		},
		{
			name: "empty env var and bad references",
			src: `
[[target]]
name = "crm"
url = "${env:CRM_URL}"
auth = { type = "bearer", token = "${env:bad-name}" }
headers = { X-A = "${env:UNCLOSED" }
` + routeTOML,
			env: map[string]string{"CRM_URL": ""},
			want: []string{
				`target "crm": url: environment variable CRM_URL is set but empty`,
				`target "crm": header "X-A": ${env: is not closed (write ${env:NAME})`,
				`target "crm": auth: token: "bad-name" is not a valid environment variable name (use letters, digits and _)`,
			},
		},
		{
			name: "plugin wasm file missing",
			src:  targetsTOML + "[[plugin]]\nname = \"nps\"\nwasm = \"plugins/bin/nps.wasm\"\n" + routeTOML,
			want: []string{`plugin "nps": wasm "plugins/bin/nps.wasm": file $DIR/plugins/bin/nps.wasm does not exist; run "make plugins" to build the stock plugins`},
		},
		{
			name: "plugin without wasm",
			src:  targetsTOML + "[[plugin]]\nname = \"nps\"\n" + routeTOML,
			want: []string{`plugin "nps": wasm: is missing (e.g. wasm = "plugins/bin/nps.wasm")`},
		},
		{
			name: "queue sync not always or batch",
			src:  "[queue]\nsync = \"sometimes\"\n" + targetsTOML + routeTOML,
			want: []string{`queue: sync: "sometimes" is not a sync policy (use "always": fsync before every 202, or "batch": background flush)`},
		},
		{
			name: "admin off loopback without a token",
			src:  "[admin]\nlisten = \"0.0.0.0:8081\"\n" + targetsTOML + routeTOML,
			want: []string{`admin: listen: "0.0.0.0:8081" is reachable from other machines but admin.token is not set; set token = "${env:HOOKGATE_ADMIN_TOKEN}" or listen on 127.0.0.1`},
		},
		{
			name: "admin on the server's address",
			src:  "[server]\nlisten = \"127.0.0.1:9999\"\n[admin]\nlisten = \"127.0.0.1:9999\"\n" + targetsTOML + routeTOML,
			want: []string{`admin: listen: "127.0.0.1:9999" is also server.listen; give the admin listener its own port`},
		},
		{
			name: "bad listen address",
			src:  "[server]\nlisten = \"8080\"\n" + targetsTOML + routeTOML,
			want: []string{`server: listen: "8080" is not host:port (use e.g. "127.0.0.1:8080", or ":8080" for every interface)`},
		},
		{
			name: "section of the wrong shape",
			src:  "server = 5\n[target]\nname = \"crm\"\n",
			want: []string{
				`server: must be a table, not an integer`,
				`target: must be an array of tables like [[target]], not a table`,
			},
		},
		{
			name: "TOML syntax error",
			src:  "[server\nlisten = 1\n",
			want: []string{`line 2: expected '.' or ']' to end table name, but got '\n' instead`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "filter.wasm"), []byte("\x00asm"), 0o644); err != nil {
				t.Fatal(err)
			}
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

// TestParseManyErrors checks that one pass reports every mistake, each
// line prefixed with the file, in a stable order.
func TestParseManyErrors(t *testing.T) {
	src := `
[server]
read_timeout = "soon"

[queue]
sync = "never"

[[target]]
name = "crm"
url = "ftp://crm"
max_conns = -1

[[route]]
name = "howxm"
path = "hooks/howxm"
targets = ["crm2"]
tragets = ["crm"]
`
	_, err := Parse([]byte(src), "config.toml", mapEnv(nil))
	want := `config.toml: server: read_timeout: "soon" is not a duration (use e.g. "5s", "250ms")
config.toml: queue: sync: "never" is not a sync policy (use "always": fsync before every 202, or "batch": background flush)
config.toml: target "crm": url "ftp://crm": scheme must be http or https
config.toml: target "crm": max_conns: must be at least 1, not -1
config.toml: route "howxm": path: "hooks/howxm" must start with "/"
config.toml: route "howxm": unknown key "tragets" (did you mean "targets"?)
config.toml: route "howxm": target "crm2" is not defined (defined targets: crm)`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

// TestSecretsNeverInErrors breaks a config around literal secrets in every
// secret-typed place and checks no value shows up in the message.
func TestSecretsNeverInErrors(t *testing.T) {
	const leak = "s3cr3t-LEAK"
	src := `
[admin]
listen = "0.0.0.0:8081"
token = 42

[[target]]
name = "a"
url = "https://user:` + leak + `@crm.example.com/x"
headers = { Authorization = "` + leak + `", "Bad Name" = "` + leak + `" }
query = { token = "` + leak + `" }
auth = { type = "basic", username = "u", password = "` + leak + `", token = "` + leak + `" }
timeout = "bad"

[[target]]
name = "b"
url = "https://[` + leak + `@crm"
auth = { type = "standard-webhooks", secret = "` + leak + `" }
scret = "` + leak + `"

[[target]]
name = "c"
url = "http://127.0.0.1:9000/c"
auth = { type = "hmac", secret = "` + leak + `", secert = "` + leak + `", value = "` + leak + `" }

[[route]]
name = "r"
path = "/r"
targets = ["zzz"]
`
	_, err := Parse([]byte(src), "config.toml", mapEnv(nil))
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) < 10 {
		t.Fatalf("want at least 10 problems, got %v", err)
	}
	t.Logf("%v", err)
	if strings.Contains(err.Error(), leak) {
		t.Errorf("error text leaks the secret:\n%v", err)
	}
}

// TestSecretsNeverPrinted: a valid config printed or marshalled in any
// usual way shows no secret value.
func TestSecretsNeverPrinted(t *testing.T) {
	const leak = "s3cr3t-LEAK"
	const whsec = "czNjcjN0LUxFQUs=" // base64 of leak
	src := `
[admin]
listen = "0.0.0.0:8081"
token = "` + leak + `-admin"

[[target]]
name = "a"
url = "https://crm.example.com/x"
headers = { Authorization = "Bearer ` + leak + `" }
query = { token = "${env:TOKEN}" }
auth = { type = "basic", username = "u", password = "` + leak + `" }

[[target]]
name = "b"
url = "https://crm.example.com/y"
auth = { type = "standard-webhooks", secret = "whsec_` + whsec + `" }

[[route]]
name = "r"
path = "/r"
targets = ["a", "b"]
`
	c, err := parseIn(t, src, map[string]string{"TOKEN": leak + "-env"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Targets[0].Query["token"].Reveal(); got != leak+"-env" {
		t.Fatalf("Reveal = %q", got)
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), string(js), strings.Join(c.Warnings, "\n")} {
		if strings.Contains(out, leak) || strings.Contains(out, whsec) {
			t.Errorf("output shows a secret:\n%s", out)
		}
	}
}
