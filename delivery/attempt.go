package delivery

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// Attempt is one try at sending a delivery: what the queue stores with a
// delivery that failed (gateway/queue), what the journal shows of a recent
// event (gateway/journal), what the metrics count (gateway/metrics), and
// what GET /admin/dead and GET /admin/events/{id} answer.
//
// Its JSON is
//
//	{"at":"2026-11-21T15:02:11.5Z","status":503,"error":"status 503: will retry","duration":"1.2ms","outcome":"retry","body":"..."}
//
// with Duration as time.Duration's text, and status, error and body left
// out when empty. It decodes back the same way.
//
// # Notes
//
//   - Outcome is not stored by the queue: a dead letter's attempts read
//     back as AttemptRetry, the last one AttemptDead.
//   - Body aliases the buffer it was set from (the target client's answer
//     buffer): a holder that outlives the attempt copies it, as the queue
//     does when it stores it.
type Attempt struct {
	At       time.Time
	Duration time.Duration
	Status   int    // HTTP status; 0 when the target did not answer
	Error    string // the transport error or the verdict; "" on success
	Body     []byte // the start of the target's answer; only dead letters keep it
	Outcome  AttemptOutcome
	// NoToken: not sent, because the target's OAuth2 token endpoint gave
	// no token (target.ErrToken). The metrics count it apart from the
	// target's own failures.
	NoToken bool
}

// AttemptOutcome is what an attempt led to. Its text ("success", "retry",
// "dead", "error") is the outcome label of hookgate_target_attempts_total
// and the "outcome" field of the admin API.
type AttemptOutcome uint8

const (
	AttemptSuccess AttemptOutcome = iota // the target accepted it
	AttemptRetry                         // it failed and will be tried again
	AttemptDead                          // it failed for good: it is a dead letter
	AttemptError                         // a sync route's forward failed: the sender got the error, nothing is retried
)

var attemptOutcomes = [...]string{"success", "retry", "dead", "error"}

// String is the outcome's text; it allocates nothing for the four
// outcomes.
func (o AttemptOutcome) String() string {
	if int(o) < len(attemptOutcomes) {
		return attemptOutcomes[o]
	}
	return "AttemptOutcome(" + strconv.Itoa(int(o)) + ")"
}

// MarshalText is String; an outcome that is not one of the four is an
// error.
func (o AttemptOutcome) MarshalText() ([]byte, error) {
	if int(o) >= len(attemptOutcomes) {
		return nil, errors.New("delivery: unknown attempt outcome " + strconv.Itoa(int(o)))
	}
	return []byte(attemptOutcomes[o]), nil
}

// UnmarshalText accepts what MarshalText writes.
func (o *AttemptOutcome) UnmarshalText(b []byte) error {
	for i, s := range attemptOutcomes {
		if string(b) == s {
			*o = AttemptOutcome(i)
			return nil
		}
	}
	return errors.New("delivery: unknown attempt outcome " + strconv.Quote(string(b)))
}

// attemptJSON is Attempt's JSON shape. Body is text: a target's answer is
// read by people, and JSON would write a []byte as base64.
type attemptJSON struct {
	At       time.Time      `json:"at"`
	Status   int            `json:"status,omitempty"`
	Error    string         `json:"error,omitempty"`
	Duration string         `json:"duration"`
	Outcome  AttemptOutcome `json:"outcome"`
	Body     string         `json:"body,omitempty"`
}

// MarshalJSON writes the shape in Attempt's documentation. It does not
// escape HTML, so an error or a body keeps its '&' and '<' as they are.
func (a Attempt) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(attemptJSON{At: a.At, Status: a.Status, Error: a.Error, Duration: a.Duration.String(), Outcome: a.Outcome, Body: string(a.Body)})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), err
}

// UnmarshalJSON reads what MarshalJSON writes.
func (a *Attempt) UnmarshalJSON(b []byte) error {
	var j attemptJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d, err := time.ParseDuration(j.Duration)
	if err != nil {
		return errors.New("delivery: attempt duration: " + err.Error())
	}
	*a = Attempt{At: j.At, Duration: d, Status: j.Status, Error: j.Error, Outcome: j.Outcome}
	if j.Body != "" {
		a.Body = []byte(j.Body)
	}
	return nil
}
