package dispatch

import (
	"net/http"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
)

func TestJudge(t *testing.T) {
	surveylab := config.Success{Status: []int{200}, JSONPath: "status", JSONEquals: "true"}
	surveylabRetry := surveylab
	surveylabRetry.RetryOnFailed = true
	tests := []struct {
		name   string
		cfg    config.Success
		status int
		body   string
		want   Verdict
	}{
		{"200 default", config.Success{}, 200, "", Delivered},
		{"204 default", config.Success{}, 204, "", Delivered},
		{"299 default", config.Success{}, 299, "", Delivered},
		{"301 default", config.Success{}, 301, "", GiveUp},
		{"400", config.Success{}, 400, "", GiveUp},
		{"401", config.Success{}, 401, "", GiveUp},
		{"404", config.Success{}, 404, "", GiveUp},
		{"408 retried", config.Success{}, 408, "", RetryLater},
		{"409", config.Success{}, 409, "", GiveUp},
		{"429 retried", config.Success{}, 429, "", RetryLater},
		{"500 retried", config.Success{}, 500, "", RetryLater},
		{"503 retried", config.Success{}, 503, "", RetryLater},
		{"599 retried", config.Success{}, 599, "", RetryLater},
		{"201 not in list", config.Success{Status: []int{200}}, 201, "", GiveUp},
		{"202 in list", config.Success{Status: []int{200, 202}}, 202, "", Delivered},
		{"500 in list", config.Success{Status: []int{500}}, 500, "", Delivered},
		{"surveylab ok", surveylab, 200, `{"status":true}`, Delivered},
		{"surveylab failed", surveylab, 200, `{"status":false}`, GiveUp},
		{"surveylab failed retried", surveylabRetry, 200, `{"status":false}`, RetryLater},
		{"surveylab string true is not true", surveylab, 200, `{"status":"true"}`, GiveUp},
		{"surveylab missing field", surveylab, 200, `{"ok":true}`, GiveUp},
		{"surveylab not json", surveylab, 200, `<html>`, GiveUp},
		{"surveylab 429 still retried", surveylab, 429, `{"status":false}`, RetryLater},
		{"surveylab 404 dead", surveylab, 404, `{"status":false}`, GiveUp},
		{"nested path", config.Success{JSONPath: "result.code", JSONEquals: "0"}, 200, `{"result":{"code":0}}`, Delivered},
		{"bare string", config.Success{JSONPath: "state", JSONEquals: "ok"}, 200, `{"state":"ok"}`, Delivered},
		{"quoted string", config.Success{JSONPath: "state", JSONEquals: `"ok"`}, 200, `{"state":"ok"}`, Delivered},
		{"other string", config.Success{JSONPath: "state", JSONEquals: "ok"}, 200, `{"state":"failed"}`, GiveUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Judge(tt.cfg, tt.status, []byte(tt.body)); got != tt.want {
				t.Fatalf("Judge(%d, %s) = %v, want %v", tt.status, tt.body, got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	p := config.Retry{Initial: time.Second, Max: 10 * time.Second}
	pj := p
	pj.Jitter = 0.2
	tests := []struct {
		name string
		p    config.Retry
		n    int
		r    float64
		want time.Duration
	}{
		{"first", p, 1, 0, time.Second},
		{"second", p, 2, 0, 2 * time.Second},
		{"fourth", p, 4, 0, 8 * time.Second},
		{"capped", p, 5, 0, 10 * time.Second},
		{"capped far out", p, 500, 0, 10 * time.Second},
		{"jitter low", pj, 2, 0, 1600 * time.Millisecond},
		{"jitter mid", pj, 2, 0.5, 2 * time.Second},
		{"jitter high", pj, 2, 0.75, 2200 * time.Millisecond},
		{"jitter never past max", pj, 9, 0.99, 10 * time.Second},
		{"defaults", config.Retry{}, 1, 0, config.DefaultRetryInitial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Backoff(tt.p, tt.n, tt.r); got != tt.want {
				t.Fatalf("Backoff(n=%d, r=%v) = %v, want %v", tt.n, tt.r, got, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	p := config.Retry{Initial: time.Second, Max: time.Minute}
	tests := []struct {
		name   string
		header string
		ok     bool
		parsed time.Duration
		wait   time.Duration // retryWait for attempt 1
	}{
		{"none", "", false, 0, time.Second},
		{"seconds", "30", true, 30 * time.Second, 30 * time.Second},
		{"spaces", " 5 ", true, 5 * time.Second, 5 * time.Second},
		{"zero kept within initial", "0", true, 0, time.Second},
		{"clamped to max", "3600", true, time.Hour, time.Minute},
		{"http date", now.Add(20 * time.Second).Format(http.TimeFormat), true, 20 * time.Second, 20 * time.Second},
		{"date in the past", now.Add(-time.Hour).Format(http.TimeFormat), true, 0, time.Second},
		{"garbage falls back to backoff", "soon", false, 0, time.Second},
		{"negative", "-5", false, 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RetryAfter([]byte(tt.header), now)
			if ok != tt.ok || got != tt.parsed {
				t.Fatalf("RetryAfter(%q) = %v %v, want %v %v", tt.header, got, ok, tt.parsed, tt.ok)
			}
			if w := retryWait(p, 1, 0.5, []byte(tt.header), now); w != tt.wait {
				t.Fatalf("retryWait(%q) = %v, want %v", tt.header, w, tt.wait)
			}
		})
	}
}

func TestBreakerStates(t *testing.T) {
	b := newBreaker(config.Breaker{Failures: 2, Cooldown: time.Second})
	t0 := time.Unix(1000, 0)
	steps := []struct {
		name  string
		act   func() bool // returns allow's ok where relevant
		want  bool
		state string
	}{
		{"closed allows", func() bool { ok, _, _ := b.allow(t0); return ok }, true, BreakerClosed},
		{"one failure stays closed", func() bool { b.record(true, t0); return true }, true, BreakerClosed},
		{"success resets the count", func() bool { b.record(false, t0); b.record(true, t0); return true }, true, BreakerClosed},
		{"second consecutive failure opens", func() bool { b.record(true, t0); return true }, true, BreakerOpen},
		{"open refuses within cool-down", func() bool { ok, _, _ := b.allow(t0.Add(999 * time.Millisecond)); return ok }, false, BreakerOpen},
		{"after cool-down one probe", func() bool { ok, _, _ := b.allow(t0.Add(time.Second)); return ok }, true, BreakerHalfOpen},
		{"only one probe", func() bool { ok, _, _ := b.allow(t0.Add(time.Second)); return ok }, false, BreakerHalfOpen},
		{"probe fails: open again", func() bool { b.record(true, t0.Add(2*time.Second)); return true }, true, BreakerOpen},
		{"new cool-down counts from the probe", func() bool { ok, _, _ := b.allow(t0.Add(2500 * time.Millisecond)); return ok }, false, BreakerOpen},
		{"probe again", func() bool { ok, _, _ := b.allow(t0.Add(3 * time.Second)); return ok }, true, BreakerHalfOpen},
		{"probe found nothing to send", func() bool { b.unprobe(); ok, _, _ := b.allow(t0.Add(3 * time.Second)); return ok }, true, BreakerHalfOpen},
		{"probe succeeds: closed", func() bool { b.record(false, t0.Add(3*time.Second)); return true }, true, BreakerClosed},
	}
	for _, s := range steps {
		if got := s.act(); got != s.want || b.State() != s.state {
			t.Fatalf("%s: got %v in state %s, want %v in %s", s.name, got, b.State(), s.want, s.state)
		}
	}
}
