// Package abitest is the conformance kit of the plugin ABI v1
// (plugins/ABI.md, package abi): a table of what a guest observes through
// each hookgate_v1 function, and what each outcome function does to the
// event and the outcome. A host runs it against itself from a test:
//
//	func TestABI(t *testing.T) { abitest.Run(t, myHost{}, nil) }
//
// where myHost implements Host over the real host. With a nil guest the
// kit uses its own Go guest (package guest beside this one: raw
// //go:wasmimport declarations, no SDK, so it pins the ABI itself, not the
// SDK's reading of it). A guest written in another language implements the
// same "mode" protocol (see the guest's package documentation) and runs the
// same table by passing its module to Run.
//
// # Notes
//
// Every case runs on a host of its own (Host.Load), because the
// key-value and log cases count from an empty store and an empty log.
// Error texts are compared in full: they are part of the ABI
// (plugins/ABI.md, "Limits").
package abitest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/plugins/plugintest"
)

// Host is the host under test, as the kit drives it.
type Host interface {
	// Load starts a new host, with an empty key-value store and an empty
	// log, and loads guest into it as the plugin named name. Give the
	// plugin at least two instances and a timeout no loaded CI machine
	// reaches (the kit tests behaviour, not speed). Load fails t when the
	// host refuses the guest, and closes the host when t ends.
	Load(t *testing.T, name string, guest []byte) Plugin

	// Kind is the kind (abi.Kind*) of a failed call's error, "" when err
	// is not a plugin's failure.
	Kind(err error) string
}

// Plugin is a guest loaded by Host.Load.
type Plugin interface {
	// Chain builds the chain of route that calls the plugin once per
	// config, in order (config is the step's configuration, JSON), and may
	// deliver to targets. It fails t when the host refuses.
	Chain(t *testing.T, route string, targets []string, configs ...[]byte) Chain

	// Logs returns the lines the plugin wrote with the log host function
	// since Load, in order; not its stdout or stderr, nor the host's own
	// lines.
	Logs(t *testing.T) []LogLine
}

// Chain is a route's chain of plugin steps.
type Chain interface {
	// Run runs the steps over ev, changing ev and filling out as the ABI
	// says; a failed call returns an error naming the plugin.
	Run(ctx context.Context, ev *delivery.Event, out *delivery.Outcome) error
	// ConfigIDs are the config_id of each step, in order.
	ConfigIDs() []uint32
}

// LogLine is one call of the log host function, as the host logged it.
type LogLine struct {
	Level   slog.Level // abi.LogDebug is slog.LevelDebug, abi.LogInfo slog.LevelInfo, ...
	Msg     string
	Plugin  string // the plugin's name
	Route   string // the route of the chain
	EventID string
}

// GuestDir is the kit's own guest, a path from the module root.
const GuestDir = "plugins/abi/abitest/guest"

// Guest builds the kit's own guest (GuestDir) with plugintest.Build and
// returns the module. It needs the hookgate module's source tree and the
// Go toolchain.
func Guest(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(plugintest.Build(tb, GuestDir))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// plugin is the name the kit loads the guest under.
const plugin = "conf"

// Run runs the conformance table against h with guest, which must speak
// the kit guest's mode protocol; nil means Guest(t).
func Run(t *testing.T, h Host, guest []byte) {
	t.Helper()
	if guest == nil {
		guest = Guest(t)
	}
	k := &kit{h: h, guest: guest}
	t.Run("read event", k.readEvent)
	t.Run("change event", k.changeEvent)
	t.Run("emit fan-out", k.emitFanOut)
	t.Run("outcomes", k.outcomes)
	t.Run("key-value", k.keyValue)
	t.Run("log", k.log)
	t.Run("json_get", k.jsonGet)
}

type kit struct {
	h     Host
	guest []byte
}

// Event is the event every case runs: a POST of {"score":3} to route "r",
// with a query and two headers.
func Event() *delivery.Event {
	return &delivery.Event{
		ID:         []byte("evt_01TEST"),
		Route:      "r",
		ReceivedAt: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC).UnixNano(),
		Method:     []byte("POST"),
		Path:       []byte("/hooks/test"),
		Query:      []byte("a=1&email=x%40y.z"),
		Headers: []delivery.KV{
			{Key: []byte("Content-Type"), Value: []byte("application/json")},
			{Key: []byte("X-Seq"), Value: []byte("7")},
		},
		Body: []byte(`{"score":3}`),
	}
}

// load is a new host with the guest loaded.
func (k *kit) load(t *testing.T) Plugin {
	t.Helper()
	return k.h.Load(t, plugin, k.guest)
}

// run runs a chain of guest steps (one per mode) over Event on route "r",
// which may deliver to "crm" and "surveylab".
func run(t *testing.T, p Plugin, modes ...string) (*delivery.Event, *delivery.Outcome, Chain, error) {
	t.Helper()
	var configs [][]byte
	for _, m := range modes {
		configs = append(configs, []byte(`{"mode":"`+m+`"}`))
	}
	ch := p.Chain(t, "r", []string{"crm", "surveylab"}, configs...)
	ev := Event()
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

// readEvent: everything a guest can read about the event, reported by
// "echo" in a delivery's body.
func (k *kit) readEvent(t *testing.T) {
	p := k.load(t)
	_, out, ch, err := run(t, p, "echo")
	if err != nil {
		t.Fatal(err)
	}
	rx := Event().ReceivedAt
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

// changeEvent: what "set" changes on the event, as the next step and the
// host see it.
func (k *kit) changeEvent(t *testing.T) {
	p := k.load(t)
	ev, out, ch, err := run(t, p, "set", "echo")
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

// emitFanOut: two deliveries, each its own request, and a log line.
func (k *kit) emitFanOut(t *testing.T) {
	p := k.load(t)
	ev, out, _, err := run(t, p, "emit2")
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
	if out.NotBefore != rx+int64(time.Minute) {
		t.Errorf("outcome not before %d; want the event-wide %d", out.NotBefore, rx+int64(time.Minute))
	}
	lines := p.Logs(t)
	if len(lines) != 1 || lines[0].Msg != "fanned out" || lines[0].Plugin != plugin ||
		lines[0].Route != "r" || lines[0].EventID != "evt_01TEST" || lines[0].Level != slog.LevelInfo {
		t.Fatalf("log lines %v", lines)
	}
}

// outcomes: respond, drop, every error code, and the failed calls.
func (k *kit) outcomes(t *testing.T) {
	p := k.load(t)
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
		{name: "event-wide delay without emit", modes: []string{"delay", "echo"}, check: func(t *testing.T, out *delivery.Outcome) {
			// echo emits after the delay was set: it gets the event's delay.
			rx := Event().ReceivedAt
			if len(out.Deliveries) != 1 || out.Deliveries[0].NotBefore != rx+int64(time.Minute) {
				t.Fatalf("%d deliveries; want echo's, delayed by the event's minute", len(out.Deliveries))
			}
		}},
		{name: "event-wide delay alone", modes: []string{"delay"}, check: func(t *testing.T, out *delivery.Outcome) {
			// The host makes no deliveries for a delay: the caller's default
			// deliveries (delivery.Defaults) carry it.
			rx := Event().ReceivedAt
			got := fmt.Sprintf("emitted=%v %d not_before=%+d", out.Emitted, len(out.Deliveries), out.NotBefore-rx)
			if want := fmt.Sprintf("emitted=false 0 not_before=%+d", int64(time.Minute)); got != want {
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
		{name: "fail", modes: []string{"fail", "echo"}, kind: abi.KindFailed,
			wantErr: `plugin "conf": failed: config: missing score`},
		{name: "fail without a reason", modes: []string{"failquiet"}, kind: abi.KindFailed,
			wantErr: `plugin "conf": failed (the plugin gave no reason)`},
		{name: "result other than 0 or 1", modes: []string{"badresult"}, kind: abi.KindABI,
			wantErr: `plugin "conf": hookgate_handle returned 7; want 0 (done) or 1 (failed)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, _, err := run(t, p, tt.modes...)
			if tt.wantErr != "" {
				if err == nil || k.h.Kind(err) != tt.kind || err.Error() != tt.wantErr {
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

// keyValue: the store counts across calls, and a key past its TTL is gone.
func (k *kit) keyValue(t *testing.T) {
	p := k.load(t)
	for i, want := range []string{
		"incr=1 get=1 v1=v1 v2=v2 deleted=-1",
		"incr=2 get=2 v1=v1 v2=v2 deleted=-1",
	} {
		_, out, _, err := run(t, p, "kv")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(out.Deliveries[0].Body); got != want {
			t.Fatalf("run %d: got %q, want %q", i+1, got, want)
		}
	}
	time.Sleep(10 * time.Millisecond) // past the 1 ms TTL of "short"
	_, out, _, err := run(t, p, "short")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out.Deliveries[0].Body); got != "short=-1" {
		t.Fatalf("expired key: got %q, want short=-1", got)
	}
}

// log: each level, with the plugin, route and event id.
func (k *kit) log(t *testing.T) {
	p := k.load(t)
	if _, _, _, err := run(t, p, "log"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range p.Logs(t) {
		got = append(got, fmt.Sprintf("%s %s %s %s %s", l.Level, l.Msg, l.Plugin, l.Route, l.EventID))
	}
	want := []string{"DEBUG line 0 conf r evt_01TEST", "INFO line 1 conf r evt_01TEST", "WARN line 2 conf r evt_01TEST"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("log lines\n got %q\nwant %q", got, want)
	}
}

// jsonGet: json_get (capability "json_get") looks up paths in any
// JSON of guest memory and answers with records; a buffer too small is
// left untouched; what it does not answer is -5 without failing the call;
// a pointer outside memory fails it.
func (k *kit) jsonGet(t *testing.T) {
	p := k.load(t)
	_, out, _, err := run(t, p, "json")
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

	_, _, _, err = run(t, p, "jsonbad")
	if err == nil || k.h.Kind(err) != abi.KindABI || err.Error() != `plugin "conf": json_get: pointer or length outside the plugin's memory` {
		t.Fatalf("err = %v, want a KindABI error naming json_get", err)
	}
}
