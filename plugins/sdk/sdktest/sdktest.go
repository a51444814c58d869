// Package sdktest runs a plugin's handler under plain `go test`, against an
// in-process fake of the hookgate host that follows plugins/ABI.md rule by
// rule (buffer sizes, handles, error codes, max_output), so a plugin that
// passes here behaves the same inside the gateway.
//
//	func TestLowScoreEmitsTicket(t *testing.T) {
//		res, err := sdktest.Run(handle, sdktest.Input{
//			Body:   body,
//			Config: []byte(`{"max_score": 6, "target": "crm"}`),
//		})
//		if err != nil {
//			t.Fatal(err)
//		}
//		if len(res.Emitted) != 1 || res.Emitted[0].Target != "crm" { ... }
//	}
//
// # Notes
//
// There is one fake host per test binary: Run holds a lock for the
// duration of a call, so parallel tests are serialized, not mixed up.
package sdktest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/plugins/sdk"
	"github.com/hookgate/hookgate/plugins/sdk/internal/hostcall"
)

// Input is the event and environment of one call. Zero fields get the
// defaults noted.
type Input struct {
	Method     string            // default "POST"
	Path       string            // default "/hooks/test"
	Query      string            // raw query string, without '?'
	Headers    map[string]string // default Content-Type: application/json when Body is set
	Body       []byte
	Route      string    // default "test"
	EventID    string    // default "evt_test"
	ReceivedAt time.Time // default 2026-01-02T03:04:05Z
	Now        time.Time // what sdk.Now returns and KV expiry uses; default ReceivedAt
	Config     []byte    // the step's config JSON; default {}
	KV         *Store    // default a fresh store; share one to keep state across calls
	Targets    []string  // targets the route's config defines; nil accepts any name
	MaxOutput  int64     // the plugin's max_output in bytes; 0 means unlimited
}

// Result is what the call decided.
type Result struct {
	Dropped    bool
	DropReason string

	// The event (handle 0) after the call: what later plugins see and what
	// goes to the route's targets when nothing was emitted.
	Method  string
	Path    string
	Headers map[string]string
	Query   map[string]string
	Body    []byte
	Delay   time.Duration // delay set on the event: applies to every delivery

	Emitted  []Delivery
	Response *Response // nil unless the plugin called Respond
	Logs     []Log
}

// Delivery is one emitted delivery.
type Delivery struct {
	Target  string
	Method  string // "" means the target's configured method
	Path    string // "" means the path of the target's URL
	Headers map[string]string
	Query   map[string]string
	Body    []byte
	Delay   time.Duration // this delivery's own delay
}

// Response is the plugin's answer to the sender.
type Response struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

// Log is one sdk.Log call.
type Log struct {
	Level sdk.Level
	Msg   string
}

// FailError is a call that failed: the handler returned an error, the SDK
// found a refused outcome call, the handler panicked, or max_output was hit.
type FailError struct {
	Msg string
}

func (e *FailError) Error() string { return e.Msg }

// ErrOutputLimit is returned (wrapped in a FailError's chain) when the call
// produced more than Input.MaxOutput bytes.
var ErrOutputLimit = errors.New("sdktest: the call exceeded max_output")

// ErrABI is returned when the plugin called a host function with a bad
// argument (an empty header name, a KV key over 1 KiB, ...): the host
// fails such a call whatever the handler returns.
var ErrABI = errors.New("sdktest: a host function was called with a bad argument")

var (
	mu        sync.Mutex
	configIDs = map[string]int32{}
)

// configID gives equal configs the same id, as the host does for one
// loaded step, so a plugin's config cache is exercised across calls.
func configID(cfg []byte) int32 {
	id, ok := configIDs[string(cfg)]
	if !ok {
		id = int32(len(configIDs) + 1)
		configIDs[string(cfg)] = id
	}
	return id
}

// WithDefaults returns in with every zero field that has a default set to
// it (see Input). Config stays nil when unset: the host reads it as {}.
func (in Input) WithDefaults() Input {
	in.Method = or(in.Method, "POST")
	in.Path = or(in.Path, "/hooks/test")
	in.Route = or(in.Route, "test")
	in.EventID = or(in.EventID, "evt_test")
	if in.ReceivedAt.IsZero() {
		in.ReceivedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	if in.Now.IsZero() {
		in.Now = in.ReceivedAt
	}
	if in.Headers == nil && len(in.Body) > 0 {
		in.Headers = map[string]string{"Content-Type": "application/json"}
	}
	if in.KV == nil {
		in.KV = NewStore()
	}
	return in
}

// SortedHeaders returns the headers in name order: the order the fake host
// (and sdktest/wasmtest) present them in.
func (in Input) SortedHeaders() [][2]string {
	keys := slices.Sorted(maps.Keys(in.Headers))
	out := make([][2]string, len(keys))
	for i, k := range keys {
		out[i] = [2]string{k, in.Headers[k]}
	}
	return out
}

func (in *Input) fake() *hostcall.Fake {
	d := in.WithDefaults()
	f := &hostcall.Fake{
		Method:     d.Method,
		Path:       d.Path,
		RawQuery:   d.Query,
		Route:      d.Route,
		EventID:    d.EventID,
		Body:       append([]byte(nil), d.Body...),
		Config:     d.Config,
		Targets:    d.Targets,
		MaxOutput:  d.MaxOutput,
		ReceivedAt: d.ReceivedAt.UnixNano(),
		Clock:      d.Now.UnixNano(),
		Store:      d.KV,
	}
	for _, h := range d.SortedHeaders() {
		f.Headers = append(f.Headers, hostcall.KV{Key: h[0], Value: h[1]})
	}
	return f
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Run calls h once with in, as the host calls a plugin's hookgate_handle,
// and returns the outcome. The error is non-nil when the call failed; the
// Result then still shows what the call did before failing.
//
// Run registers h with sdk.Handle, replacing what the plugin's init
// registered (usually the same function).
func Run(h sdk.Handler, in Input) (Result, error) {
	mu.Lock()
	defer mu.Unlock()
	sdk.Handle(h)
	f := in.fake()
	rc := f.Call(configID(f.Config))
	res := result(f)
	switch {
	case f.OutputExceeded:
		return res, fmt.Errorf("%w (%d bytes)", ErrOutputLimit, in.MaxOutput)
	case f.BadFunc != "":
		return res, fmt.Errorf("%w: %s", ErrABI, f.BadFunc)
	case rc != 0 && rc != 1:
		return res, &FailError{Msg: fmt.Sprintf("sdktest: hookgate_handle returned %d, want 0 or 1", rc)}
	case rc == 1 && !f.Failed:
		return res, &FailError{Msg: "sdktest: hookgate_handle returned 1 without calling fail"}
	case rc == 1:
		return res, &FailError{Msg: f.FailMsg}
	case f.Failed:
		return res, &FailError{Msg: "sdktest: fail was called but hookgate_handle returned 0: " + f.FailMsg}
	}
	return res, nil
}

func result(f *hostcall.Fake) Result {
	r := Result{
		Dropped:    f.Dropped,
		DropReason: f.DropReason,
		Method:     f.Method,
		Path:       f.Path,
		Headers:    toMap(f.Headers),
		Query:      toMap(f.Query),
		Body:       f.Body,
		Delay:      time.Duration(f.Delay) * time.Millisecond,
	}
	for _, d := range f.Emitted {
		r.Emitted = append(r.Emitted, Delivery{
			Target:  d.Target,
			Method:  d.Method,
			Path:    d.Path,
			Headers: toMap(d.Headers),
			Query:   toMap(d.Query),
			Body:    d.Body,
			Delay:   time.Duration(d.Delay) * time.Millisecond,
		})
	}
	if f.Responded {
		r.Response = &Response{Status: int(f.RespStatus), Headers: toMap(f.RespHeaders), Body: f.RespBody}
	}
	for _, l := range f.Logs {
		r.Logs = append(r.Logs, Log{Level: sdk.Level(l.Level), Msg: l.Msg})
	}
	return r
}

// toMap turns a list into a map, first value winning, as the host reads
// headers and query parameters. An empty list gives an empty, non-nil map
// so expected values can be written as map literals.
func toMap(l []hostcall.KV) map[string]string {
	m := make(map[string]string, len(l))
	for _, kv := range l {
		if _, ok := m[kv.Key]; !ok {
			m[kv.Key] = kv.Value
		}
	}
	return m
}

// Benchmark calls h b.N times with in, reusing one fake host so that what is
// measured is the plugin and the SDK. It fails b if a call fails.
func Benchmark(b *testing.B, h sdk.Handler, in Input) {
	b.Helper()
	mu.Lock()
	defer mu.Unlock()
	sdk.Handle(h)
	f := in.fake()
	f.NoCopy = true
	id := configID(f.Config)
	body := f.Body
	headers := append([]hostcall.KV(nil), f.Headers...)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f.Body, f.Headers = body, append(f.Headers[:0], headers...)
		f.ResetOutcome()
		if f.Call(id) != 0 || f.BadFunc != "" || f.OutputExceeded {
			b.Fatalf("sdktest: call failed: %s%s", f.FailMsg, f.BadFunc)
		}
	}
}

// Allocs returns the average number of heap allocations of one call of h
// on in, after a warm-up call, measured like testing.AllocsPerRun with the
// fake host's own copying turned off. A plugin on the hot path should get
// 0. The error is the warm-up call's failure, if it failed.
func Allocs(h sdk.Handler, in Input, runs int) (float64, error) {
	mu.Lock()
	defer mu.Unlock()
	sdk.Handle(h)
	f := in.fake()
	f.NoCopy = true
	id := configID(f.Config)
	body := f.Body
	headers := append([]hostcall.KV(nil), f.Headers...)
	var failed error
	call := func() {
		f.Body, f.Headers = body, append(f.Headers[:0], headers...)
		f.ResetOutcome()
		if f.Call(id) != 0 && failed == nil {
			failed = &FailError{Msg: f.FailMsg}
		}
	}
	call()
	if failed != nil {
		return 0, failed
	}
	return testing.AllocsPerRun(runs, call), failed
}
