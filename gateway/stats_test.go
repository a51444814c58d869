package gateway

import (
	"testing"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/metrics"
	"github.com/hookgate/hookgate/gateway/record"
	"github.com/hookgate/hookgate/gateway/verify"
)

// TestRefusalsCounted: refusals reach both Gateway.Counts and, with
// the metrics recorder, hookgate_route_rejected_total under the route and reason.
func TestRefusalsCounted(t *testing.T) {
	r := syncRoute("gh", "/gh", "crm")
	r.Verify = &config.Verify{Type: "hmac", Secrets: secrets(hmacSecretNew)}
	r.Dedupe = &config.Dedupe{Header: "Idempotency-Key"}
	r.Mode = config.ModeAsync
	cfg := &config.Config{Server: testServer(), Targets: []config.Target{targetAt(t, "crm", unusedURL)}, Routes: []config.Route{r}}
	reg := metrics.New("test")
	deps := newDeps(t, cfg)
	deps.Recorder = record.Tee(record.Log(deps.Logger, false), reg.Recorder())
	deps.Queue = &memQueue{}
	g, base := startGateway(t, cfg, deps)

	sig := map[string]string{"X-Hookgate-Signature": hmacHex(hmacSecretNew, "{}"), "Idempotency-Key": "k"}
	post(t, base+"/gh", "{}", map[string]string{"X-Hookgate-Signature": "00"})
	post(t, base+"/gh", "{}", nil)
	post(t, base+"/gh", "{}", sig)
	post(t, base+"/gh", "{}", sig)
	post(t, base+"/nope", "{}", nil)

	got := map[string]float64{}
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				got[key] = c.GetValue()
			}
		}
	}
	want := map[string]float64{
		"hookgate_route_requests_total route=gh":                       4,
		"hookgate_route_rejected_total reason=unauthorized route=gh":   2,
		"hookgate_route_duplicates_total route=gh":                     1,
		"hookgate_route_requests_total route=":                         1,
		"hookgate_route_rejected_total reason=not_found route=":        1,
		"hookgate_route_rejected_total reason=body_too_large route=gh": 0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	c := g.Counts()
	if c[0].Route != "gh" || c[0].Refused["malformed_header"] != 1 || c[0].Refused["missing_signature"] != 1 || c[0].Duplicates != 1 {
		t.Errorf("Counts()[0] = %+v", c[0])
	}
	if c[1].Route != "" || c[1].Refused["route_not_found"] != 1 {
		t.Errorf("Counts()[1] = %+v", c[1])
	}
}

// TestEveryCodeHasAReason: each error code ingest answers with is one
// metrics.CodeReasons knows, so it counts under its own reason label
// rather than "other" (a new code must be added there).
func TestEveryCodeHasAReason(t *testing.T) {
	codes := []string{codeRouteNotFound, codeMethodNotAllowed, codeBodyTooLarge, codeInvalidJSON, codeHeadersTooLarge,
		codeRequestTimeout, codeBadRequest, codePluginFailed, codeUnknownTarget, codeTargetUnreachable, codeQueueFull,
		codeQueueUnavailable, codeOverloaded, codeInternal, codeInProgress, codeVersionNotSupported,
		verify.ReasonMissingSignature, verify.ReasonMissingCredentials, verify.ReasonMalformedHeader, verify.ReasonBadSignature,
		verify.ReasonBadCredentials, verify.ReasonTimestampTolerance, verify.ReasonIPNotAllowed}
	other := len(metrics.CodeReasons) - 1
	for _, c := range codes {
		if metrics.CodeIndex(c) == other {
			t.Errorf("code %q is not in metrics.CodeReasons: it would count as \"other\"", c)
		}
	}
}
