package main

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
)

const points = `{"key": "visitor.id", "count": 3, "window": "24h", "target": "crm", "delay": "10m", "body": {"points": 100}}`

func TestNthOccurrence(t *testing.T) {
	store := sdktest.NewStore()
	start := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	call := func(user string, at time.Time) sdktest.Result {
		t.Helper()
		res, err := sdktest.Run(handle, sdktest.Input{
			Body:   []byte(fmt.Sprintf(`{"visitor": {"id": %s}, "event": "add_to_cart"}`, user)),
			Config: []byte(points),
			KV:     store,
			Now:    at,
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for i, want := range []string{
		"threshold: occurrence 1 of threshold:27671, acting on occurrence 3",
		"threshold: occurrence 2 of threshold:27671, acting on occurrence 3",
		"",
		"threshold: occurrence 4 of threshold:27671, acting on occurrence 3",
	} {
		res := call("27671", start.Add(time.Duration(i)*time.Hour))
		if want != "" {
			if !res.Dropped || res.DropReason != want || len(res.Emitted) != 0 {
				t.Fatalf("event %d: dropped %v %q emitted %d; want drop %q", i+1, res.Dropped, res.DropReason, len(res.Emitted), want)
			}
			continue
		}
		if res.Dropped || len(res.Emitted) != 1 {
			t.Fatalf("event %d: dropped %v (%s), emitted %d; want one delivery", i+1, res.Dropped, res.DropReason, len(res.Emitted))
		}
		d := res.Emitted[0]
		if d.Target != "crm" || string(d.Body) != `{"points": 100}` || d.Delay != 10*time.Minute {
			t.Fatalf("delivery %+v", d)
		}
	}
	// Another user counts separately; a string key works like a number.
	if res := call(`"anna"`, start); res.DropReason != "threshold: occurrence 1 of threshold:anna, acting on occurrence 3" {
		t.Fatalf("other user: %q", res.DropReason)
	}
	// The window runs from the first occurrence: 24h later counting restarts.
	if res := call("27671", start.Add(24*time.Hour)); res.DropReason != "threshold: occurrence 1 of threshold:27671, acting on occurrence 3" {
		t.Fatalf("after the window: %q", res.DropReason)
	}
}

func TestPassEventAndCountOne(t *testing.T) {
	body := []byte(`{"visitor": {"id": 1}}`)
	for _, tt := range []struct {
		name, config string
		wantDelay    time.Duration
	}{
		{"pass the event", `{"key": "visitor.id", "count": 1, "name": "pass-a"}`, 0},
		{"pass the event delayed", `{"key": "visitor.id", "count": 1, "delay": "90s", "name": "pass-b"}`, 90 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := sdktest.Run(handle, sdktest.Input{Body: body, Config: []byte(tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Dropped || len(res.Emitted) != 0 || string(res.Body) != string(body) || res.Delay != tt.wantDelay {
				t.Fatalf("result %+v", res)
			}
		})
	}
	res, err := sdktest.Run(handle, sdktest.Input{Body: body, Config: []byte(`{"key": "visitor.id", "count": 1, "target": "crm"}`)})
	if err != nil || len(res.Emitted) != 1 || string(res.Emitted[0].Body) != string(body) || res.Emitted[0].Delay != 0 {
		t.Fatalf("emit the event itself: err %v result %+v", err, res)
	}
	res, err = sdktest.Run(handle, sdktest.Input{Body: body, Config: []byte(`{"key": "visitor.id", "count": 1, "body": "plain text", "name": "text"}`)})
	if err != nil || string(res.Body) != "plain text" {
		t.Fatalf("string body: err %v body %q", err, res.Body)
	}
}

func TestMissingKey(t *testing.T) {
	for _, body := range []string{`{}`, `{"visitor": {"id": ""}}`, `{"visitor": {"id": null}}`, `{"visitor": {"id": {"a": 1}}}`, ``} {
		res, err := sdktest.Run(handle, sdktest.Input{Body: []byte(body), Config: []byte(points)})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Dropped || res.DropReason != "threshold: no user key at visitor.id" {
			t.Fatalf("body %s: dropped %v %q", body, res.Dropped, res.DropReason)
		}
	}
}

func TestBadConfig(t *testing.T) {
	tests := []struct{ name, config, want string }{
		{"no key", `{"count": 3}`, `threshold: config needs key (JSON path of the user key) and count, e.g. {"key": "visitor.id", "count": 3}`},
		{"no count", `{"key": "a"}`, `threshold: config needs key (JSON path of the user key) and count, e.g. {"key": "visitor.id", "count": 3}`},
		{"zero count", `{"key": "a", "count": 0}`, `threshold: count is 0; want a whole number >= 1`},
		{"fractional count", `{"key": "a", "count": 2.5}`, `threshold: count is 2.5; want a whole number >= 1`},
		{"count as string", `{"key": "a", "count": "3"}`, `threshold: count is "3"; want a whole number >= 1`},
		{"bad window", `{"key": "a", "count": 3, "window": "1 day"}`, `threshold: window is "1 day"; want a duration such as "24h" or "90s"`},
		{"window as number", `{"key": "a", "count": 3, "window": 86400}`, `threshold: window is 86400; want a duration such as "24h" or "90s"`},
		{"negative delay", `{"key": "a", "count": 3, "delay": "-1s"}`, `threshold: delay is "-1s"; want a duration such as "24h" or "90s"`},
		{"unknown key", `{"key": "a", "count": 3, "cnt": 3}`, `threshold: unknown config key "cnt" (want key, count, window, target, delay, body, name)`},
		{"empty key", `{"key": "", "count": 3}`, `threshold: key must be the JSON path of the user key, e.g. "visitor.id"`},
		{"not JSON", `{"key"`, `threshold: config is not valid JSON`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdktest.Run(handle, sdktest.Input{Body: []byte(`{"a": 1}`), Config: []byte(tt.config)})
			var fe *sdktest.FailError
			if !errors.As(err, &fe) || fe.Msg != tt.want {
				t.Fatalf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func BenchmarkCount(b *testing.B) {
	sdktest.Benchmark(b, handle, sdktest.Input{Body: []byte(`{"visitor": {"id": 27671}}`), Config: []byte(`{"key": "visitor.id", "count": 3, "window": "24h", "target": "crm"}`)})
}
