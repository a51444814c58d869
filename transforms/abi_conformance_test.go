package transforms

// ABI v1 conformance: what a guest observes through each hookgate_v1
// function, and what each outcome function does to the event and the
// outcome. The guest is testdata/guests/conformance (raw //go:wasmimport, no
// SDK); each case names the mode it runs and the exact result. Another host
// implementing plugins/ABI.md should pass the same table.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// lockedBuffer collects log output from concurrent calls.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// logLines decodes the JSON log lines with the given source attribute.
func logLines(t *testing.T, logs *lockedBuffer, source string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["source"] == source {
			delete(m, "time")
			out = append(out, m)
		}
	}
	return out
}

type confHost struct {
	h    *Host
	logs *lockedBuffer
}

func newConfHost(t *testing.T) confHost {
	t.Helper()
	logs := &lockedBuffer{}
	h := newTestHost(t)
	h.logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// A timeout no loaded CI machine reaches: these tests are about
	// behaviour, not speed.
	load(t, h, PluginSpec{Name: "conf", Wasm: guestWasm(t, "conformance"), Instances: 2, Timeout: 10 * time.Second})
	return confHost{h: h, logs: logs}
}

// run runs a chain of conformance steps (one per mode) over the test event.
func (c confHost) run(t *testing.T, modes ...string) (*delivery.Event, *delivery.Outcome, *Chain, error) {
	t.Helper()
	var steps []Step
	for _, m := range modes {
		steps = append(steps, Step{Plugin: "conf", Config: []byte(`{"mode":"` + m + `"}`)})
	}
	ch := chain(t, c.h, "r", []string{"crm", "surveylab"}, steps...)
	ev := testEvent()
	out := &delivery.Outcome{}
	err := ch.Run(context.Background(), ev, out)
	return ev, out, ch, err
}

func kvs(pairs ...string) []delivery.KV {
	var out []delivery.KV
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, delivery.KV{Key: []byte(pairs[i]), Value: []byte(pairs[i+1])})
	}
	return out
}

func fmtKVs(k []delivery.KV) string {
	var b strings.Builder
	for _, kv := range k {
		fmt.Fprintf(&b, "%s=%s;", kv.Key, kv.Value)
	}
	return b.String()
}

// fmtDelivery renders the fields a test compares.
func fmtDelivery(d *delivery.Delivery) string {
	return fmt.Sprintf("route=%s target=%s event=%s method=%s path=%s query=%s headers=%s not_before=%d body=%q",
		d.Route, d.Target, d.EventID, d.Method, d.Path, fmtKVs(d.Query), fmtKVs(d.Headers), d.NotBefore, d.Body)
}

func TestABIReadEvent(t *testing.T) {
	c := newConfHost(t)
	_, out, ch, err := c.run(t, "echo")
	if err != nil {
		t.Fatal(err)
	}
	rx := testEvent().ReceivedAt
	wantBody := "body={\"score\":3} n=11\n" +
		"method=POST\npath=/hooks/test\nquery=a=1&email=x%40y.z\n" +
		"route=r\nevent=evt_01TEST\nconfig={\"mode\":\"echo\"}\n" +
		"headers=Content-Type: application/json\nX-Seq: 7\n" +
		"x-seq=7 absent=-1\n" +
		"email=x@y.z absent=-1\n" +
		fmt.Sprintf("received_at=%d\n", rx) +
		fmt.Sprintf("config_id=%d\n", ch.ConfigIDs()[0])
	want := fmtDelivery(&delivery.Delivery{Route: "r", Target: "crm", EventID: []byte("evt_01TEST"),
		Headers: kvs("Content-Type", "application/json"), Body: []byte(wantBody)})
	if !out.Emitted || len(out.Deliveries) != 1 {
		t.Fatalf("emitted %v, %d deliveries; want 1", out.Emitted, len(out.Deliveries))
	}
	if got := fmtDelivery(&out.Deliveries[0]); got != want {
		t.Fatalf("delivery\n got %s\nwant %s", got, want)
	}
}

func TestABIChangeEvent(t *testing.T) {
	c := newConfHost(t)
	ev, out, ch, err := c.run(t, "set", "echo")
	if err != nil {
		t.Fatal(err)
	}
	wantBody := "body={\"new\":true} n=12\n" +
		"method=PUT\npath=/changed\nquery=email=a+b%40c&z=1\n" +
		"route=r\nevent=evt_01TEST\nconfig={\"mode\":\"echo\"}\n" +
		"headers=Content-Type: application/json\nX-Added: yes\n" +
		"x-seq= absent=-1\n" +
		"email=a b@c absent=-1\n" +
		fmt.Sprintf("received_at=%d\n", ev.ReceivedAt) +
		fmt.Sprintf("config_id=%d\n", ch.ConfigIDs()[1])
	if len(out.Deliveries) != 1 || string(out.Deliveries[0].Body) != wantBody {
		t.Fatalf("the second step saw\n%s\nwant\n%s", out.Deliveries[0].Body, wantBody)
	}
	got := fmt.Sprintf("%s %s %s %s %s", ev.Method, ev.Path, ev.Query, fmtKVs(ev.Headers), ev.Body)
	want := `PUT /changed email=a+b%40c&z=1 Content-Type=application/json;X-Added=yes; {"new":true}`
	if got != want {
		t.Fatalf("event after Run\n got %s\nwant %s", got, want)
	}
}

func TestABIEmitFanOut(t *testing.T) {
	c := newConfHost(t)
	ev, out, _, err := c.run(t, "emit2")
	if err != nil {
		t.Fatal(err)
	}
	rx := ev.ReceivedAt
	want := []string{
		fmtDelivery(&delivery.Delivery{Route: "r", Target: "crm", EventID: []byte("evt_01TEST"),
			Headers: kvs("Content-Type", "application/json", "X-Score", "3"), Body: []byte(`{"ticket":1}`),
			NotBefore: rx + int64(60*time.Second)}),
		fmtDelivery(&delivery.Delivery{Route: "r", Target: "surveylab", EventID: []byte("evt_01TEST"),
			Method: []byte("GET"), Path: []byte("/api.php"), Query: kvs("email", "x@y.z", "crk", "abc"),
			NotBefore: rx + int64(1500*time.Millisecond)}),
	}
	if !out.Emitted || len(out.Deliveries) != 2 {
		t.Fatalf("emitted %v with %d deliveries; want 2", out.Emitted, len(out.Deliveries))
	}
	for i := range want {
		if got := fmtDelivery(&out.Deliveries[i]); got != want[i] {
			t.Errorf("delivery %d\n got %s\nwant %s", i+1, got, want[i])
		}
	}
	lines := logLines(t, c.logs, "guest")
	if len(lines) != 1 || lines[0]["msg"] != "fanned out" || lines[0]["plugin"] != "conf" ||
		lines[0]["route"] != "r" || lines[0]["event_id"] != "evt_01TEST" || lines[0]["level"] != "INFO" {
		t.Fatalf("log lines %v", lines)
	}
}

func TestABIOutcomes(t *testing.T) {
	c := newConfHost(t)
	tests := []struct {
		name    string
		modes   []string
		check   func(t *testing.T, out *delivery.Outcome)
		wantErr string
		kind    string
	}{
		{name: "respond", modes: []string{"respond"}, check: func(t *testing.T, out *delivery.Outcome) {
			r := out.Response
			got := fmt.Sprintf("%v %d %s %s emitted=%v", r.Set, r.Status, fmtKVs(r.Headers), r.Body, out.Emitted)
			if want := `true 201 X-Reply=ok; {"accepted":true} emitted=false`; got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		}},
		{name: "drop stops the chain and clears emits", modes: []string{"drop", "echo"}, check: func(t *testing.T, out *delivery.Outcome) {
			got := fmt.Sprintf("%v %q %v %d", out.Dropped, out.DropReason, out.Emitted, len(out.Deliveries))
			if want := `true "score above 6" false 0`; got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		}},
		{name: "error codes", modes: []string{"errors"}, check: func(t *testing.T, out *delivery.Outcome) {
			if got, want := string(out.Deliveries[0].Body), "-4 -2 -2 -5 -2 -5 -5 -5 -2 -2 -5 -5 -5 -5 -5 -5 -5 -5 0 0 "; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}},
		{name: "fail", modes: []string{"fail", "echo"}, kind: KindFailed,
			wantErr: `plugin "conf": failed: config: missing score`},
		{name: "fail without a reason", modes: []string{"failquiet"}, kind: KindFailed,
			wantErr: `plugin "conf": failed (the plugin gave no reason)`},
		{name: "result other than 0 or 1", modes: []string{"badresult"}, kind: KindABI,
			wantErr: `plugin "conf": hookgate_handle returned 7; want 0 (done) or 1 (failed)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, _, err := c.run(t, tt.modes...)
			if tt.wantErr != "" {
				var pe *PluginError
				if !errors.As(err, &pe) || pe.Kind != tt.kind || err.Error() != tt.wantErr {
					t.Fatalf("err = %v; want %s error %q", err, tt.kind, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, out)
		})
	}
}

func TestABIKeyValue(t *testing.T) {
	c := newConfHost(t)
	for i, want := range []string{
		"incr=1 get=1 v1=v1 v2=v2 deleted=-1",
		"incr=2 get=2 v1=v1 v2=v2 deleted=-1",
	} {
		_, out, _, err := c.run(t, "kv")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(out.Deliveries[0].Body); got != want {
			t.Fatalf("run %d: got %q, want %q", i+1, got, want)
		}
	}
	time.Sleep(10 * time.Millisecond) // past the 1 ms TTL of "short"
	_, out, _, err := c.run(t, "short")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out.Deliveries[0].Body); got != "short=-1" {
		t.Fatalf("expired key: got %q, want short=-1", got)
	}
}

func TestABILog(t *testing.T) {
	c := newConfHost(t)
	if _, _, _, err := c.run(t, "log"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range logLines(t, c.logs, "guest") {
		got = append(got, fmt.Sprintf("%s %s %s %s %s", l["level"], l["msg"], l["plugin"], l["route"], l["event_id"]))
	}
	want := []string{"DEBUG line 0 conf r evt_01TEST", "INFO line 1 conf r evt_01TEST", "WARN line 2 conf r evt_01TEST"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("log lines\n got %q\nwant %q", got, want)
	}
}

// TestABIJSONGet: json_get (capability "json_get") looks up paths in any
// JSON of guest memory and answers with records; a buffer too small is
// left untouched; what it does not answer is -5 without failing the call;
// a pointer outside memory fails it.
func TestABIJSONGet(t *testing.T) {
	c := newConfHost(t)
	_, out, _, err := c.run(t, "json")
	if err != nil {
		t.Fatal(err)
	}
	// jsonDoc is {"score":3,"tags":["a","b"],"who":{"na\u006de":"A\"B"},"n":-1.5e2}
	want := "n=360\n" +
		"0: type=2 flags=0 num=3 start=9 len=1 a=0 b=0 stride=0\n" + // score
		"1: type=5 flags=0 num=0 start=18 len=9 a=7 b=2 stride=1\n" + // tags.#: 2 elements from record 7
		"2: type=-1 flags=0 num=0 start=0 len=0 a=0 b=0 stride=0\n" + // nope: absent
		"3: type=3 flags=1 num=0 start=47 len=6 a=0 b=0 stride=0\n" + // who.name: the key is escaped, the value holds \"
		"4: type=2 flags=0 num=-150 start=59 len=6 a=0 b=0 stride=0\n" + // n
		"5: type=3 flags=0 num=0 start=23 len=3 a=0 b=0 stride=0\n" + // tags.1
		"6: type=-2 flags=0 num=0 start=0 len=0 a=0 b=0 stride=0\n" + // a*: not answered
		"7: type=3 flags=0 num=0 start=19 len=3 a=-1 b=-1 stride=0\n" + // tags element 0
		"8: type=3 flags=0 num=0 start=23 len=3 a=-1 b=-1 stride=0\n" + // tags element 1
		"small=360 untouched=true\n" +
		"body=40 0: type=2 flags=0 num=3 start=9 len=1 a=0 b=0 stride=0\n" +
		"badlist=-5 invalid=-5 many=-5 nopaths=0\n"
	if len(out.Deliveries) != 1 {
		t.Fatalf("%d deliveries", len(out.Deliveries))
	}
	if got := string(out.Deliveries[0].Body); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}

	_, _, _, err = c.run(t, "jsonbad")
	var pe *PluginError
	if !errors.As(err, &pe) || pe.Kind != KindABI || err.Error() != `plugin "conf": json_get: pointer or length outside the plugin's memory` {
		t.Fatalf("err = %v, want a KindABI error naming json_get", err)
	}
}
