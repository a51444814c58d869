package delivery

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestAttemptOutcomeText(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    AttemptOutcome
		want string
	}{
		{"success", AttemptSuccess, "success"},
		{"retry", AttemptRetry, "retry"},
		{"dead", AttemptDead, "dead"},
		{"error", AttemptError, "error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.o.MarshalText()
			if err != nil || string(b) != tt.want || tt.o.String() != tt.want {
				t.Fatalf("MarshalText = %q, %v; String = %q; want %q", b, err, tt.o.String(), tt.want)
			}
			var back AttemptOutcome
			if err := back.UnmarshalText(b); err != nil || back != tt.o {
				t.Fatalf("UnmarshalText(%q) = %v, %v", b, back, err)
			}
		})
	}
	if _, err := AttemptOutcome(9).MarshalText(); err == nil {
		t.Fatal("an unknown outcome marshals")
	}
	if s := AttemptOutcome(9).String(); s != "AttemptOutcome(9)" {
		t.Fatalf("String of an unknown outcome = %q", s)
	}
	var o AttemptOutcome
	if err := o.UnmarshalText([]byte("maybe")); err == nil {
		t.Fatal(`"maybe" unmarshals`)
	}
}

// TestAttemptJSON pins the shape GET /admin/events/{id} and GET
// /admin/dead answer (the README shows it): duration as text, status,
// error and body left out when empty, body as text, no HTML escaping.
func TestAttemptJSON(t *testing.T) {
	at := time.Date(2026, 11, 21, 15, 2, 11, 500_000_000, time.UTC)
	for _, tt := range []struct {
		name string
		a    Attempt
		want string
	}{
		{"success", Attempt{At: at, Duration: 900 * time.Microsecond, Status: 200},
			`{"at":"2026-11-21T15:02:11.5Z","status":200,"duration":"900µs","outcome":"success"}`},
		{"retry", Attempt{At: at, Duration: 1200 * time.Microsecond, Status: 503, Error: "status 503: will retry", Outcome: AttemptRetry},
			`{"at":"2026-11-21T15:02:11.5Z","status":503,"error":"status 503: will retry","duration":"1.2ms","outcome":"retry"}`},
		{"dead with body", Attempt{At: at, Duration: time.Millisecond, Status: 400, Error: "status 400: refused", Body: []byte(`{"error":"<a&b>"}`), Outcome: AttemptDead},
			`{"at":"2026-11-21T15:02:11.5Z","status":400,"error":"status 400: refused","duration":"1ms","outcome":"dead","body":"{\"error\":\"<a&b>\"}"}`},
		{"no answer", Attempt{At: at, Error: "dial tcp 127.0.0.1:9: connection refused", Outcome: AttemptError},
			`{"at":"2026-11-21T15:02:11.5Z","error":"dial tcp 127.0.0.1:9: connection refused","duration":"0s","outcome":"error"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.a.MarshalJSON()
			if err != nil || string(b) != tt.want {
				t.Fatalf("MarshalJSON =\n%s, %v\nwant\n%s", b, err, tt.want)
			}
			var back Attempt
			if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, tt.a) {
				t.Fatalf("round trip = %+v, %v\nwant %+v", back, err, tt.a)
			}
		})
	}
	if _, err := json.Marshal(Attempt{Outcome: 7}); err == nil {
		t.Fatal("an attempt with an unknown outcome marshals")
	}
}
