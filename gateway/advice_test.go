package gateway

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/verify"
	"github.com/hookgate/hookgate/internal/sink"
)

// TestRefusalAdvice: each 401 tells the sender what to do about its own
// cause. A stale timestamp (a clock that is off, or a replay) and an
// address outside allow_ips are not answered "check the secret".
func TestRefusalAdvice(t *testing.T) {
	s := startSink(t, sink.Options{})
	swh := syncRoute("swh", "/swh", "crm")
	swh.Verify = &config.Verify{Type: "standard-webhooks", Secrets: secrets("whsec_" + whsecKey)}
	office := syncRoute("office", "/office", "crm")
	office.Verify = &config.Verify{AllowIPs: []string{"192.0.2.0/24"}}
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "crm", s.URL())},
		Routes:  []config.Route{swh, office},
	}
	_, base := startGateway(t, cfg, newDeps(t, cfg))

	const body = `{"type":"invoice.paid"}`
	stale := time.Now().Unix() - 3600
	signed := func(id string, ts int64) map[string]string {
		return map[string]string{"webhook-id": id, "webhook-timestamp": strconv.FormatInt(ts, 10), "webhook-signature": standardSig(id, ts, body)}
	}
	forged := signed("msg_1", time.Now().Unix())
	forged["webhook-signature"] = standardSig("msg_other", time.Now().Unix(), body)
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		want    *verify.Error
		has     string
	}{
		{"stale timestamp", "/swh", signed("msg_1", stale), verify.ErrTimestampTolerance, "clock"},
		{"wrong signature", "/swh", forged, verify.ErrBadSignature, "secret"},
		{"unsigned", "/swh", nil, verify.ErrMissingSignature, "sign"},
		{"address not allowed", "/office", nil, verify.ErrIPNotAllowed, "allow_ips"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, base+tc.path, body, tc.headers)
			if a.status != 401 || a.errCode != tc.want.Reason || a.errMsg != tc.want.Advice || !strings.Contains(a.errMsg, tc.has) {
				t.Errorf("got %d %s\nwant 401 %s with %q", a.status, a.body, tc.want.Reason, tc.want.Advice)
			}
		})
	}
	if n := s.Count(); n != 0 {
		t.Errorf("the target got %d refused requests", n)
	}
}
