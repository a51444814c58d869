package dispatch

import (
	"bytes"
	"math"
	"net/http"
	"strconv"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/hookgate/hookgate/gateway/config"
)

// Verdict is what an answer means for a delivery.
type Verdict uint8

const (
	// Delivered: the target accepted it; the delivery is acked.
	Delivered Verdict = iota
	// RetryLater: a passing failure (408, 429, 5xx, or a failed body check
	// when retry_body_failure is set); the delivery is retried.
	RetryLater
	// GiveUp: the target refused it for good (other statuses, or a failed
	// body check); the delivery goes to the dead letters at once.
	GiveUp
)

func (v Verdict) String() string {
	switch v {
	case Delivered:
		return "delivered"
	case RetryLater:
		return "retry"
	case GiveUp:
		return "dead"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Judge decides what an answer with status and body means under cfg. It is
// pure: the same inputs always give the same verdict.
//
// A status counts as success when it is in cfg.Status, or is 2xx when
// cfg.Status is empty; then, if cfg.JSONPath is set, the JSON value at that
// path must equal cfg.JSONEquals (compared as raw JSON, so `true` and
// `"true"` differ). A failed body check is RetryLater when
// cfg.RetryOnFailed, else GiveUp. Any other status is RetryLater if
// retryable (408, 429, 5xx) and GiveUp otherwise.
func Judge(cfg config.Success, status int, body []byte) Verdict {
	if !statusOK(cfg.Status, status) {
		if Retryable(status) {
			return RetryLater
		}
		return GiveUp
	}
	if cfg.JSONPath == "" || bodyOK(cfg, body) {
		return Delivered
	}
	if cfg.RetryOnFailed {
		return RetryLater
	}
	return GiveUp
}

func statusOK(list []int, status int) bool {
	if len(list) == 0 {
		return status >= 200 && status <= 299
	}
	for _, s := range list {
		if s == status {
			return true
		}
	}
	return false
}

func bodyOK(cfg config.Success, body []byte) bool {
	if !gjson.ValidBytes(body) {
		return false
	}
	// A string view, not GetBytes, which copies the result; nothing of r
	// outlives this call.
	r := gjson.Get(unsafe.String(unsafe.SliceData(body), len(body)), cfg.JSONPath)
	if !r.Exists() {
		return false
	}
	if r.Raw == cfg.JSONEquals {
		return true
	}
	// json_equals = "ok" (not JSON by itself) means the string "ok"; but
	// json_equals = "true" means the boolean, never the string "true".
	return r.Type == gjson.String && !gjson.Valid(cfg.JSONEquals) && r.Str == cfg.JSONEquals
}

// Retryable reports whether a status means "try again later": 408, 429 and
// every 5xx.
func Retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || (status >= 500 && status <= 599)
}

// Backoff is the wait before retry number n (1 for the first retry):
// initial doubled each time, capped at max, then spread by ±jitter (a
// fraction) using r, a random number in [0, 1).
func Backoff(p config.Retry, n int, r float64) time.Duration {
	initial, maxWait := p.Initial, p.Max
	if initial <= 0 {
		initial = config.DefaultRetryInitial
	}
	if maxWait <= 0 {
		maxWait = config.DefaultRetryMax
	}
	d := initial
	for i := 1; i < n && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	if p.Jitter > 0 {
		f := 1 + p.Jitter*(2*r-1)
		d = time.Duration(math.Round(float64(d) * f))
	}
	return min(max(d, 0), maxWait)
}

// RetryAfter parses a Retry-After value (delay seconds or an HTTP date,
// relative to now) and reports whether it was valid.
func RetryAfter(v []byte, now time.Time) (time.Duration, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 0, false
	}
	if secs, err := strconv.ParseUint(string(v), 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(string(v))
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// retryWait is how long to wait before the next attempt: the target's
// Retry-After when it sent one, kept within the policy's initial and max,
// else the backoff.
func retryWait(p config.Retry, n int, r float64, retryAfter []byte, now time.Time) time.Duration {
	if ra, ok := RetryAfter(retryAfter, now); ok {
		initial, maxWait := p.Initial, p.Max
		if initial <= 0 {
			initial = config.DefaultRetryInitial
		}
		if maxWait <= 0 {
			maxWait = config.DefaultRetryMax
		}
		return min(max(ra, initial), maxWait)
	}
	return Backoff(p, n, r)
}
