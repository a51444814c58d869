package admin

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
)

// adminToken is the test token; .ci/secrets-scan looks for it in test logs.
const adminToken = "adm-test-token-5c07f1"

func TestToken(t *testing.T) {
	a, base := startAdmin(t, config.Admin{Token: config.NewSecret(adminToken, "${env:HOOKGATE_ADMIN_TOKEN}")},
		Routes{{"GET", "/admin/routes", HandlerFunc(func(*http.Request) (any, error) {
			return map[string]string{"ok": "yes"}, nil
		})}})
	a.SetReady(true)
	tests := []struct {
		name, path, auth string
		status           int
	}{
		{"bearer token", "/admin/routes", "Bearer " + adminToken, 200},
		{"scheme in any case", "/admin/routes", "bearer " + adminToken, 200},
		{"no header", "/admin/routes", "", 401},
		{"wrong token", "/admin/routes", "Bearer adm-test-token-5c07f2", 401},
		{"token prefix", "/admin/routes", "Bearer " + adminToken[:len(adminToken)-1], 401},
		{"token with more after it", "/admin/routes", "Bearer " + adminToken + "x", 401},
		{"token as basic", "/admin/routes", "Basic " + adminToken, 401},
		{"token without scheme", "/admin/routes", adminToken, 401},
		{"unknown endpoint needs the token too", "/admin/nope", "", 401},
		{"metrics need the token", "/metrics", "", 401},
		{"healthz is open", "/healthz", "", 200},
		{"readyz is open", "/readyz", "", 200},
		{"a path that only looks like healthz", "/healthz/../admin/routes", "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+tc.path, nil)
			req.URL.Opaque = tc.path // send the path as written, unclean
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("got %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") != `Bearer realm="hookgate-admin"` {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// fakeAddrListener is a loopback listener that says it listens elsewhere,
// so Serve's check can be tested without binding a public address.
type fakeAddrListener struct {
	net.Listener
	addr net.Addr
}

func (l fakeAddrListener) Addr() net.Addr { return l.addr }

func TestServeRefusesOpenListenerWithoutToken(t *testing.T) {
	tests := []struct {
		name  string
		ip    net.IP
		token string
		want  error
	}{
		{"every interface, no token", net.IPv4zero, "", ErrNoToken},
		{"a public address, no token", net.IPv4(192, 0, 2, 7), "", ErrNoToken},
		{"every interface, with a token", net.IPv4zero, adminToken, nil},
		{"loopback, no token", net.IPv4(127, 0, 0, 1), "", nil},
		{"ipv6 loopback, no token", net.IPv6loopback, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cfg := config.Admin{}
			if tc.token != "" {
				cfg.Token = config.NewSecret(tc.token, "")
			}
			a, err := New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- a.Serve(fakeAddrListener{ln, &net.TCPAddr{IP: tc.ip, Port: 8081}}) }()
			if tc.want != nil {
				if err := <-done; !errors.Is(err, tc.want) {
					t.Fatalf("Serve = %v, want %v", err, tc.want)
				}
				return
			}
			select {
			case err := <-done:
				t.Fatalf("Serve returned %v, want it serving", err)
			case <-time.After(50 * time.Millisecond):
			}
			a.Shutdown(t.Context())
			if err := <-done; err != nil {
				t.Errorf("Serve after Shutdown = %v", err)
			}
		})
	}
}

func TestRoutesShowVerifyWithoutSecrets(t *testing.T) {
	const leak = "adm-test-verify-secret-77a0"
	cfg := &config.Config{Routes: []config.Route{{
		Name: "gh", Method: "POST", Path: "/gh", Mode: "async", Targets: []string{"crm"},
		Verify: &config.Verify{Type: "hmac", Secrets: []config.Secret{config.NewSecret(leak+"-new", ""), config.NewSecret(leak+"-old", "${env:GH_OLD}")},
			Header: "X-Hub-Signature-256", Algorithm: "sha256", Encoding: "hex", AllowIPs: []string{"192.0.2.0/24"}},
		Dedupe: &config.Dedupe{Header: "X-GitHub-Delivery", TTL: 24 * time.Hour, MaxEntries: 1000},
	}}}
	_, base := startAdmin(t, config.Admin{}, Describer(func() *config.Config { return cfg }))
	st, body := get(t, base+"/admin/routes", "")
	if st != 200 || strings.Contains(body, leak) {
		t.Fatalf("%d %s", st, body)
	}
	var got RoutesResponse
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	v, d := got.Routes[0].Verify, got.Routes[0].Dedupe
	if v == nil || v.Type != "hmac" || v.Secrets != 2 || v.Header != "X-Hub-Signature-256" || len(v.AllowIPs) != 1 {
		t.Errorf("verify = %+v", v)
	}
	if d == nil || d.Header != "X-GitHub-Delivery" || d.TTL != "24h0m0s" || d.MaxEntries != 1000 {
		t.Errorf("dedupe = %+v", d)
	}
}
