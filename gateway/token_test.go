package gateway

import (
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/gateway/config"
)

// TestSyncTokenFailureAnswer: when a sync route's target needs an OAuth2
// token and its token endpoint is down, the sender gets 502
// target_unreachable saying no token could be had, without the token
// endpoint's address or answer (those are the operator's).
func TestSyncTokenFailureAnswer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/oauth2/token"
	l.Close() // nothing listens there: the token endpoint is down
	tok, _ := url.Parse(down)
	crm := targetAt(t, "crm", unusedURL)
	crm.Auth = config.Auth{Type: config.AuthOAuth2, TokenURL: tok, ClientID: "hookgate",
		ClientSecret: config.NewSecret("oat-test-client-secret-6b1d", ""), AuthStyle: config.OAuth2StyleHeader}
	cfg := &config.Config{Server: testServer(), Targets: []config.Target{crm}, Routes: []config.Route{syncRoute("s", "/s", "crm")}}
	_, base := startGateway(t, cfg, newDeps(t, cfg))

	a := post(t, base+"/s", `{}`, nil)
	if a.status != 502 || a.errCode != "target_unreachable" || !strings.Contains(a.errMsg, "could not get an access token") {
		t.Fatalf("%d %s %q; want 502 target_unreachable saying no token could be had", a.status, a.errCode, a.errMsg)
	}
	if strings.Contains(a.body, l.Addr().String()) || strings.Contains(a.body, "oauth2") {
		t.Errorf("the answer shows the token endpoint: %s", a.body)
	}
}
