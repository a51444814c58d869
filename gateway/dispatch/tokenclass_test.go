package dispatch

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/metrics"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/target"
)

// attemptsByClass sums hookgate_target_attempts_total of tgt by class.
func attemptsByClass(t *testing.T, reg *metrics.Registry, tgt string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "hookgate_target_attempts_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var target, class string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "target":
					target = l.GetValue()
				case "class":
					class = l.GetValue()
				}
			}
			if target == tgt {
				out[class] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// TestTokenFailureClass: an attempt not sent because the target's OAuth2
// token endpoint refused hookgate counts under class="token" in
// hookgate_target_attempts_total, apart from the target's own failures
// (class="none": no answer from the target). Before, it was class="none",
// so an operator could not tell a broken credential from a target down.
func TestTokenFailureClass(t *testing.T) {
	var tokenRequests atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"invalid_client"}`))
	}))
	t.Cleanup(idp.Close)
	crm := startSwitchable(t, 200)
	c := crm.target("crm")
	c.Retry = config.Retry{MaxAttempts: 1000, Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxAge: time.Hour}
	tokenURL, _ := url.Parse(idp.URL + "/oauth2/token")
	c.Auth = config.Auth{Type: config.AuthOAuth2, TokenURL: tokenURL, ClientID: "hookgate",
		ClientSecret: config.NewSecret("class-test-client-secret", ""), AuthStyle: config.OAuth2StyleHeader}

	st, err := queue.Open(queue.Options{Path: t.TempDir(), Sync: queue.SyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	set, err := target.NewSet([]config.Target{c})
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.New("test")
	r := &rig{t: t, store: st, set: set, d: New(st, set, []config.Target{c}, Options{Poll: 20 * time.Millisecond, Recorder: reg.Recorder()})}
	r.d.Start()
	t.Cleanup(r.stop)
	r.enqueue(del("evt_a.0", "crm"))

	// The token endpoint backs off (1s after the first failure): several
	// attempts fail at once with its reason, then it is asked again.
	deadline := time.Now().Add(10 * time.Second) // a failure timeout only
	for attemptsByClass(t, reg, "crm")["token"] < 3 || tokenRequests.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("attempts by class: %v; token requests %d", attemptsByClass(t, reg, "crm"), tokenRequests.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := attemptsByClass(t, reg, "crm")
	if got["none"] != 0 || len(got) != 1 {
		t.Fatalf("attempts by class: %v, want class token only", got)
	}
	if n := len(crm.requests()); n != 0 {
		t.Fatalf("the target got %d requests without a token", n)
	}
}
