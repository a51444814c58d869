package gateway

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/admin"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/internal/syncbuf"
)

// TestSecretsNeverLogged runs a representative slice of hookgate with
// secrets in every place one can be (verify secrets, target credentials,
// the admin token; literal and from the environment), at debug level with
// the access log on, through verify failures, malformed requests, target
// failures and the admin API, and checks that no secret shows up in the
// log, in any answer, or in the config's printed forms.
func TestSecretsNeverLogged(t *testing.T) {
	const (
		lit       = "sec-test-literal-3e9b"
		env       = "sec-test-env-8d21"
		tokenLit  = "sec-test-token-4f70"
		basicPass = "sec-test-basic-a612"
		targetPW  = "sec-test-target-pw-c3d8"
		adminTok  = "sec-test-admin-e5b4"
	)
	whsecRaw := "sec-test-whsec-91ff"
	whsec := base64.StdEncoding.EncodeToString([]byte(whsecRaw))
	leaks := []string{lit, env, tokenLit, basicPass, targetPW, adminTok, whsecRaw, whsec,
		base64.StdEncoding.EncodeToString([]byte("howxm:" + basicPass)),
		base64.StdEncoding.EncodeToString([]byte("hookgate:" + targetPW))}

	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + down.Addr().String() + "/crm"
	down.Close()
	up := startSink(t, sink.Options{Status: 500, Body: `{"error":"nope"}`})

	src := fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:1"
token = "${env:ADMIN}"
[log]
level = "debug"
access = true

[[target]]
name = "down"
url = "%s"
query = { apiToken = "%s" }
headers = { "X-Api-Key" = "${env:ENV_SECRET}" }
auth = { type = "basic", username = "hookgate", password = "%s" }

[[target]]
name = "up"
url = "%s/in"
auth = { type = "hmac", secret = "%s" }

[[route]]
name = "signed"
path = "/signed"
mode = "sync"
targets = ["down"]
verify = { type = "hmac", secrets = ["%s", "${env:ENV_SECRET}"] }

[[route]]
name = "swh"
path = "/swh"
mode = "sync"
targets = ["up"]
verify = { type = "standard-webhooks", secrets = ["whsec_%s"] }

[[route]]
name = "basic"
path = "/basic"
mode = "sync"
targets = ["up"]
json = true
verify = { type = "basic", username = "howxm", secrets = ["%s"] }

[[route]]
name = "token"
path = "/token"
mode = "sync"
targets = ["up"]
verify = { type = "token", query = "token", secrets = ["%s"] }
`, downURL, tokenLit, targetPW, up.URL(), lit, lit, whsec, basicPass, tokenLit)
	envs := map[string]string{"ENV_SECRET": env, "ADMIN": adminTok}
	cfg, err := config.Parse([]byte(src), t.TempDir()+"/config.toml", func(k string) (string, bool) { v, ok := envs[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	set, err := target.NewSet(cfg.Targets)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	_, base := startGateway(t, cfg, Deps{Targets: set, Logger: log})

	var answers []string
	keep := func(resp *http.Response, err error) {
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers = append(answers, fmt.Sprint(resp.StatusCode, resp.Header, string(b)))
	}
	postWith := func(path, body string, h map[string]string) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		for k, v := range h {
			req.Header.Set(k, v)
		}
		keep(http.DefaultClient.Do(req))
	}
	const body = `{"a":1}`
	// Verify failures: wrong signature, a correct one to a target that is
	// down, an expired standard-webhooks message, wrong and right basic
	// credentials (the right ones with a bad body), a token in the query.
	postWith("/signed", body, map[string]string{"X-Hookgate-Signature": hmacHex("guess", body)})
	postWith("/signed", body, map[string]string{"X-Hookgate-Signature": hmacHex(lit, body)})
	postWith("/signed", body, map[string]string{"X-Hookgate-Signature": hmacHex(env, body)})
	past := time.Now().Add(-time.Hour).Unix()
	postWith("/swh", body, map[string]string{"webhook-id": "m1", "webhook-timestamp": fmt.Sprint(past), "webhook-signature": "v1,AAAA"})
	postWith("/basic", body, map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("howxm:"+basicPass+"x"))})
	postWith("/basic", "not json", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("howxm:"+basicPass))})
	postWith("/basic", body, map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("howxm:"+basicPass))})
	postWith("/token?token="+tokenLit+"&x=1", body, nil)
	postWith("/token?token="+tokenLit+"x", body, nil)
	postWith("/nowhere?token="+tokenLit, body, map[string]string{"Authorization": "Bearer " + adminTok})
	// A request fasthttp cannot parse, carrying a secret in a header.
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "POST /signed HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "+basicPass+"\r\nContent-Length: zz\r\n\r\n")
	raw, _ := io.ReadAll(c)
	c.Close()
	answers = append(answers, string(raw))

	// The admin API, with and without the token.
	adm, err := admin.New(cfg.Admin, log, admin.Describer(func() *config.Config { return cfg }))
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go adm.Serve(aln)
	t.Cleanup(func() { adm.Shutdown(t.Context()) })
	for _, tok := range []string{adminTok, "wrong-" + adminTok[:4]} {
		req, _ := http.NewRequest("GET", "http://"+aln.Addr().String()+"/admin/routes", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		keep(http.DefaultClient.Do(req))
	}
	if !strings.Contains(answers[len(answers)-2], `"verify":{"type":"hmac","secrets":2`) {
		t.Errorf("admin routes answer lacks the verify summary: %s", answers[len(answers)-2])
	}

	js, _ := json.Marshal(cfg)
	printed := []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), string(js), strings.Join(cfg.Warnings, "\n")}
	for _, r := range cfg.Routes {
		printed = append(printed, fmt.Sprintf("%+v %#v", r, r), fmt.Sprintf("%+v %#v", r.Verify, r.Verify), r.Verify.Spec().String())
	}
	for _, tg := range cfg.Targets {
		printed = append(printed, fmt.Sprintf("%+v %#v", tg, tg))
	}
	// Bad configs: a missing variable, a verify secret that is not whsec.
	for _, bad := range []string{
		strings.Replace(src, "${env:ADMIN}", "${env:MISSING}", 1),
		strings.Replace(src, "whsec_"+whsec, lit, 1),
	} {
		if _, err := config.Parse([]byte(bad), "config.toml", func(k string) (string, bool) { v, ok := envs[k]; return v, ok }); err == nil {
			t.Error("a broken config loaded")
		} else {
			printed = append(printed, err.Error())
		}
	}

	out := logs.String()
	if !strings.Contains(out, `"code":"bad_signature"`) || !strings.Contains(out, "sync delivery failed") {
		t.Fatalf("the log lacks the refusals and failures it should hold:\n%s", out)
	}
	for _, leak := range leaks {
		if strings.Contains(out, leak) {
			t.Errorf("the log shows %q:\n%s", leak, out)
		}
		for _, a := range answers {
			if strings.Contains(a, leak) {
				t.Errorf("an answer shows %q: %s", leak, a)
			}
		}
		for _, p := range printed {
			if strings.Contains(p, leak) {
				t.Errorf("a printed config shows %q: %s", leak, p)
			}
		}
	}
}
