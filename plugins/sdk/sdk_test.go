package sdk_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/plugins/sdk"
	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
)

func TestEventReadsMetadata(t *testing.T) {
	var got struct {
		method, path, route, id, raw, q, missingQ, ct, missingH string
		hasQ, hasH                                              bool
		recv                                                    time.Time
		config                                                  string
	}
	h := func(e *sdk.Event) error {
		got.method, got.path, got.route, got.id = e.Method(), e.Path(), e.Route(), e.ID()
		got.raw = e.RawQuery()
		got.q = e.Query("name")
		_, got.hasQ = e.LookupQuery("missing")
		got.ct = e.Header("content-type")
		_, got.hasH = e.LookupHeader("X-Missing")
		got.recv = e.ReceivedAt()
		got.config = string(e.Config())
		return nil
	}
	recv := time.Date(2026, 11, 21, 14, 0, 0, 123000000, time.UTC)
	_, err := sdktest.Run(h, sdktest.Input{
		Method:     "PUT",
		Path:       "/hooks/howxm",
		Query:      "name=J%C3%BCrgen+K&x=1",
		Headers:    map[string]string{"Content-Type": "application/json"},
		Route:      "howxm",
		EventID:    "evt_01",
		ReceivedAt: recv,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.method != "PUT" || got.path != "/hooks/howxm" || got.route != "howxm" || got.id != "evt_01" {
		t.Fatalf("method/path/route/id = %q %q %q %q", got.method, got.path, got.route, got.id)
	}
	if got.raw != "name=J%C3%BCrgen+K&x=1" || got.q != "Jürgen K" || got.hasQ {
		t.Fatalf("query: raw %q, name %q, missing present %v", got.raw, got.q, got.hasQ)
	}
	if got.ct != "application/json" || got.hasH {
		t.Fatalf("header: %q, missing present %v", got.ct, got.hasH)
	}
	if !got.recv.Equal(recv) {
		t.Fatalf("ReceivedAt = %v, want %v", got.recv, recv)
	}
	if got.config != "{}" {
		t.Fatalf("Config() = %q, want {} when none", got.config)
	}
}

// TestBodyLargerThanBuffers crosses the SDK's initial buffer sizes, so the
// buffer-limit-and-retry path runs for the body, a header and the config.
func TestBodyLargerThanBuffers(t *testing.T) {
	body := []byte(`{"text":"` + strings.Repeat("x", 5000) + `"}`)
	long := strings.Repeat("v", 1000)
	cfg := []byte(`{"pad":"` + strings.Repeat("c", 3000) + `"}`)
	var gotBody, gotHeader, gotConfig string
	h := func(e *sdk.Event) error {
		gotBody = string(e.Body())
		gotHeader = e.Header("X-Long")
		gotConfig = string(e.Config())
		return nil
	}
	for i := 0; i < 2; i++ { // the second call reuses the grown buffers
		_, err := sdktest.Run(h, sdktest.Input{Body: body, Headers: map[string]string{"X-Long": long}, Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if gotBody != string(body) || gotHeader != long || gotConfig != string(cfg) {
			t.Fatalf("call %d: body %d bytes, header %d, config %d; want %d, %d, %d",
				i, len(gotBody), len(gotHeader), len(gotConfig), len(body), len(long), len(cfg))
		}
	}
}

func TestOutcomes(t *testing.T) {
	h := func(e *sdk.Event) error {
		e.SetBody([]byte(`{"a":1}`))
		e.SetMethod("PATCH")
		e.SetPath("/v2/items")
		e.SetHeader("X-One", "1")
		e.DelHeader("X-Gone")
		e.SetQuery("page", "2")
		e.DelQuery("drop")
		e.Delay(1500 * time.Millisecond)
		e.Emit("crm").SetBody([]byte("ticket")).SetMethod("PUT").SetPath("/t").
			SetHeader("X-Score", "3").SetQuery("k", "v w").Delay(time.Minute)
		e.Emit("sms").DelHeader("Content-Type")
		e.Respond(201).SetBody([]byte("ok")).SetHeader("X-R", "r")
		return nil
	}
	res, err := sdktest.Run(h, sdktest.Input{
		Body:    []byte(`{}`),
		Query:   "drop=1&keep=2",
		Headers: map[string]string{"Content-Type": "application/json", "X-Gone": "g"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != `{"a":1}` || res.Method != "PATCH" || res.Path != "/v2/items" || res.Delay != 1500*time.Millisecond {
		t.Fatalf("event: body %s method %s path %s delay %v", res.Body, res.Method, res.Path, res.Delay)
	}
	wantHeaders := map[string]string{"Content-Type": "application/json", "X-One": "1"}
	if !equalMaps(res.Headers, wantHeaders) {
		t.Fatalf("event headers = %v, want %v", res.Headers, wantHeaders)
	}
	if wantQuery := map[string]string{"keep": "2", "page": "2"}; !equalMaps(res.Query, wantQuery) {
		t.Fatalf("event query = %v, want %v", res.Query, wantQuery)
	}
	if len(res.Emitted) != 2 {
		t.Fatalf("emitted %d deliveries, want 2", len(res.Emitted))
	}
	crm := res.Emitted[0]
	if crm.Target != "crm" || string(crm.Body) != "ticket" || crm.Method != "PUT" || crm.Path != "/t" || crm.Delay != time.Minute {
		t.Fatalf("crm delivery = %+v", crm)
	}
	if want := map[string]string{"Content-Type": "application/json", "X-Score": "3"}; !equalMaps(crm.Headers, want) {
		t.Fatalf("crm headers = %v, want %v", crm.Headers, want)
	}
	if want := map[string]string{"k": "v w"}; !equalMaps(crm.Query, want) {
		t.Fatalf("crm query = %v, want %v", crm.Query, want)
	}
	// An emitted delivery starts with the event's current body.
	sms := res.Emitted[1]
	if sms.Target != "sms" || string(sms.Body) != `{"a":1}` || len(sms.Headers) != 0 || sms.Method != "" {
		t.Fatalf("sms delivery = %+v", sms)
	}
	if res.Response == nil || res.Response.Status != 201 || string(res.Response.Body) != "ok" || res.Response.Headers["X-R"] != "r" {
		t.Fatalf("response = %+v", res.Response)
	}
}

func TestDrop(t *testing.T) {
	res, err := sdktest.Run(func(e *sdk.Event) error { return e.Drop("score above 6") }, sdktest.Input{Body: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Dropped || res.DropReason != "score above 6" {
		t.Fatalf("dropped %v reason %q", res.Dropped, res.DropReason)
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name      string
		h         sdk.Handler
		in        sdktest.Input
		wantErr   string
		wantIsErr error
	}{
		{
			name:    "handler error",
			h:       func(e *sdk.Event) error { return errors.New("myplugin: no score in the body") },
			wantErr: "myplugin: no score in the body",
		},
		{
			name:      "unknown target fails even when the handler returns nil",
			h:         func(e *sdk.Event) error { e.Emit("nope").SetBody([]byte("x")); return nil },
			in:        sdktest.Input{Targets: []string{"crm"}},
			wantErr:   `sdk: emit("nope"): unknown target`,
			wantIsErr: sdk.ErrUnknownTarget,
		},
		{
			name:      "bad status",
			h:         func(e *sdk.Event) error { e.Respond(42).SetBody([]byte("x")); return nil },
			wantErr:   `sdk: respond("42"): bad argument`,
			wantIsErr: sdk.ErrBadArgument,
		},
		{
			name:    "panic",
			h:       func(e *sdk.Event) error { var m map[string]int; m["x"] = 1; return nil },
			wantErr: "panic: assignment to entry in nil map",
		},
		{
			name:    "no handler",
			h:       nil,
			wantErr: "sdk: no handler registered: call sdk.Handle(yourFunc) in an init function of package main",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hostErr error
			h := tt.h
			if h != nil {
				h = func(e *sdk.Event) error {
					err := tt.h(e)
					hostErr = e.Err()
					return err
				}
			}
			_, err := sdktest.Run(h, tt.in)
			var fe *sdktest.FailError
			if !errors.As(err, &fe) || fe.Msg != tt.wantErr {
				t.Fatalf("err = %v, want FailError %q", err, tt.wantErr)
			}
			if tt.wantIsErr != nil && !errors.Is(hostErr, tt.wantIsErr) {
				t.Fatalf("e.Err() = %v, want %v", hostErr, tt.wantIsErr)
			}
		})
	}
}

func TestMaxOutput(t *testing.T) {
	h := func(e *sdk.Event) error {
		e.Emit("crm").SetBody(bytes.Repeat([]byte("x"), 100))
		return nil
	}
	_, err := sdktest.Run(h, sdktest.Input{MaxOutput: 50})
	if !errors.Is(err, sdktest.ErrOutputLimit) {
		t.Fatalf("err = %v, want ErrOutputLimit", err)
	}
	if _, err := sdktest.Run(h, sdktest.Input{MaxOutput: 200}); err != nil {
		t.Fatalf("within the limit: %v", err)
	}
}

type testConfig struct{ target string }

func TestLoadConfigParsesOncePerConfig(t *testing.T) {
	parses := 0
	parse := func(raw []byte) (testConfig, error) {
		parses++
		r := sdk.Get(raw, "target")
		if !r.Exists() {
			return testConfig{}, errors.New("test: config needs a target")
		}
		return testConfig{target: r.String()}, nil
	}
	var got string
	h := func(e *sdk.Event) error {
		cfg, err := sdk.LoadConfig(e, parse)
		if err != nil {
			return err
		}
		got = cfg.target
		return nil
	}
	// The cache outlives Run, like the guest's memory outlives a call: use
	// configs no other test uses.
	a := []byte(`{"target":"load-a"}`)
	b := []byte(`{"target":"load-b"}`)
	bad := []byte(`{"nope":"load-bad"}`)
	for i, c := range [][]byte{a, a, b, a, b} {
		if _, err := sdktest.Run(h, sdktest.Input{Config: c}); err != nil {
			t.Fatal(err)
		}
		if want := sdk.Get(c, "target").String(); got != want {
			t.Fatalf("call %d: target %q, want %q", i, got, want)
		}
	}
	if parses != 2 {
		t.Fatalf("parsed %d times for 2 configs over 5 calls, want 2", parses)
	}
	for i := 0; i < 2; i++ {
		_, err := sdktest.Run(h, sdktest.Input{Config: bad})
		if err == nil || err.Error() != "test: config needs a target" {
			t.Fatalf("bad config call %d: err = %v", i, err)
		}
	}
	if parses != 3 {
		t.Fatalf("a bad config was parsed %d times in total, want the error cached (3)", parses)
	}
}

func TestConfigCache(t *testing.T) {
	var cache sdk.ConfigCache[*testConfig]
	parses := 0
	parse := func(raw []byte) (*testConfig, error) {
		parses++
		return &testConfig{target: sdk.Get(raw, "target").String()}, nil
	}
	var got []string
	h := func(e *sdk.Event) error {
		cfg, err := cache.Load(e, parse)
		if err != nil {
			return err
		}
		got = append(got, cfg.target)
		return nil
	}
	for _, c := range []string{`{"target":"cc-a"}`, `{"target":"cc-a"}`, `{"target":"cc-b"}`, `{"target":"cc-a"}`} {
		if _, err := sdktest.Run(h, sdktest.Input{Config: []byte(c)}); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(got, ",") != "cc-a,cc-a,cc-b,cc-a" || parses != 2 {
		t.Fatalf("got %v with %d parses, want cc-a,cc-a,cc-b,cc-a with 2", got, parses)
	}
}

func TestServices(t *testing.T) {
	store := sdktest.NewStore()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type seen struct {
		now        time.Time
		n          int64
		val        string
		had, after bool
	}
	var s seen
	h := func(e *sdk.Event) error {
		s.now = sdk.Now()
		s.n = sdk.KV.Incr("count", 2, time.Hour)
		v, ok := sdk.KV.Get("name")
		s.val, s.had = string(v), ok
		if err := sdk.KV.Set("name", []byte("alice"), 0); err != nil {
			return err
		}
		if err := sdk.KV.Set("tmp", []byte("x"), time.Second); err != nil {
			return err
		}
		if err := sdk.KV.Delete("tmp"); err != nil {
			return err
		}
		_, s.after = sdk.KV.Get("tmp")
		sdk.Log(sdk.LevelWarn, "plain")
		sdk.Logf(sdk.LevelInfo, "n=%d", s.n)
		return nil
	}
	res, err := sdktest.Run(h, sdktest.Input{KV: store, Now: start})
	if err != nil {
		t.Fatal(err)
	}
	if !s.now.Equal(start) || s.n != 2 || s.had || s.after {
		t.Fatalf("first call: %+v", s)
	}
	if len(res.Logs) != 2 || res.Logs[0] != (sdktest.Log{Level: sdk.LevelWarn, Msg: "plain"}) ||
		res.Logs[1] != (sdktest.Log{Level: sdk.LevelInfo, Msg: "n=2"}) {
		t.Fatalf("logs = %+v", res.Logs)
	}
	if _, err := sdktest.Run(h, sdktest.Input{KV: store, Now: start.Add(59 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if s.n != 4 || !s.had || s.val != "alice" {
		t.Fatalf("second call within the TTL: %+v", s)
	}
	// The counter's TTL runs from its creation: an hour after the first call
	// it starts over.
	if _, err := sdktest.Run(h, sdktest.Input{KV: store, Now: start.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if s.n != 2 {
		t.Fatalf("after the TTL the counter is %d, want 2", s.n)
	}
}

func TestJSONHelpers(t *testing.T) {
	body := []byte(`{"a":{"b":[1,"two",{"c":true}]},"s":"x\"y"}`)
	if got := sdk.Get(body, "a.b.1").String(); got != "two" {
		t.Fatalf("Get a.b.1 = %q", got)
	}
	if got := sdk.Get(body, "s").String(); got != `x"y` {
		t.Fatalf("Get s = %q", got)
	}
	raw := sdk.GetBytes(body, "a.b.2")
	if string(raw) != `{"c":true}` || &raw[0] != &body[bytes.Index(body, []byte(`{"c"`))] {
		t.Fatalf("GetBytes = %s, want a view into body", raw)
	}
	if got := sdk.GetBytes(body, "missing"); got != nil {
		t.Fatalf("GetBytes missing = %q, want nil", got)
	}
	if got := string(sdk.GetBytes(body, "a.b.#")); got != "3" {
		t.Fatalf("GetBytes computed = %q, want 3", got)
	}
	var items []string
	sdk.ForEach(body, "a.b", func(_, v sdk.Result) bool {
		items = append(items, v.Raw)
		return true
	})
	if strings.Join(items, "|") != `1|"two"|{"c":true}` {
		t.Fatalf("ForEach = %v", items)
	}
	many := sdk.GetMany(body, "s", "a.b.0")
	if len(many) != 2 || many[0].String() != `x"y` || many[1].Int() != 1 {
		t.Fatalf("GetMany = %v", many)
	}
	if !sdk.Parse(body).Get("a.b.2.c").Bool() || !sdk.Valid(body) || sdk.Valid([]byte(`{"a":`)) {
		t.Fatal("Parse/Valid")
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestBadArgumentFailsCall: an empty header name is a bad argument, which
// the host turns into a failed call whatever the handler returns.
func TestBadArgumentFailsCall(t *testing.T) {
	h := func(e *sdk.Event) error {
		e.SetHeader("", "x")
		return nil
	}
	_, err := sdktest.Run(h, sdktest.Input{})
	if !errors.Is(err, sdktest.ErrABI) || !strings.Contains(err.Error(), "set_header") {
		t.Fatalf("err = %v, want ErrABI naming set_header", err)
	}
}

func TestAllocsHelper(t *testing.T) {
	n, err := sdktest.Allocs(func(e *sdk.Event) error {
		e.Emit("crm").SetBody(e.Body())
		return nil
	}, sdktest.Input{Body: []byte(`{"a":1}`)}, 50)
	if err != nil || n != 0 {
		t.Fatalf("allocs %v err %v, want 0", n, err)
	}
	if _, err := sdktest.Allocs(func(*sdk.Event) error { return errors.New("x: broken") }, sdktest.Input{}, 5); err == nil || err.Error() != "x: broken" {
		t.Fatalf("err = %v, want the handler's error", err)
	}
}
