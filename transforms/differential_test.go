package transforms

// The differential test: instrumenting a module for interruption must not
// change anything it does. Every stock plugin, every test guest of the
// host and of the SDK, and the AssemblyScript and wat feature guests run
// the same events in a host that loads modules unmodified (noInterrupt)
// and in instrumented hosts at several budgets, from 1 (every check calls
// yield) to the default; the outcomes (the event as the chain left it,
// drop, deliveries with bodies, headers, query and delays, the response,
// and the error, if any) must be byte-identical.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi/abitest"
	"github.com/hookgate/hookgate/plugins/plugintest"
)

// diffBudgets are the instrumented hosts' budgets: 1 and 7 make yield run
// at (nearly) every check, 1<<10 every few loops, 0 is the default.
var diffBudgets = []int32{1, 7, 1 << 10, 0}

// diffGuest is one module under test and the events it gets, run in order
// (some guests keep state in the key-value store: every host sees the same
// sequence).
type diffGuest struct {
	name    string
	wasm    func(t testing.TB) []byte
	targets []string
	events  []diffEvent
}

type diffEvent struct {
	name    string
	configs []string // one chain step per config, all of this guest
	body    []byte
	query   string
}

func ev1(name, config string, body []byte) diffEvent {
	return diffEvent{name: name, configs: []string{config}, body: body}
}

func buildGuest(dir string) func(t testing.TB) []byte {
	return func(t testing.TB) []byte {
		t.Helper()
		b, err := os.ReadFile(plugintest.Build(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func diffGuests(t testing.TB) []diffGuest {
	howxm := readRoot(t, "testdata/howxm_entry_submitted.json")
	low := bytes.Replace(howxm, []byte(`"field_1": 10`), []byte(`"field_1": 3`), 1)
	chat := readRoot(t, "testdata/smartsupp_chat_closed.json")
	noEmail := bytes.Replace(chat, []byte(`"dusan@domain.com"`), []byte(`""`), 1)
	const coupon = `{"body": "{\"amount\": ${amount}, \"user\": \"${user.id|guest}\"}", "params": {"amount": {"type": "integer", "default": 100}}, "target": "coupons"}`
	const crm = `{"max_score": 6, "target": "crm"}`
	const chatCfg = `{"crm_target":"crm-transcripts","survey_target":"surveylab","collector_id":"C1"}`
	const points = `{"name": "diff", "key": "visitor.id", "count": 2, "window": "1h", "target": "crm", "delay": "5m", "body": {"points": 1}}`
	mode := func(m string) string { return `{"mode":"` + m + `"}` }
	var sdkModes, confModes []diffEvent
	for _, m := range []string{"nothing", "body", "get", "foreach", "get100", "deep", "scan", "walk", "emit"} {
		sdkModes = append(sdkModes, ev1(m, mode(m), howxm))
	}
	// Every mode the conformance guest has, read from its source so a new
	// one is covered at once; but "short", which reads a key set with a
	// 1 ms TTL by an earlier call, so its result depends on the clock.
	for _, m := range conformanceModes(t) {
		if m != "short" {
			confModes = append(confModes, ev1(m, mode(m), testEvent().Body))
		}
	}
	confModes = append(confModes,
		diffEvent{name: "set then echo", configs: []string{mode("set"), mode("echo")}, body: testEvent().Body, query: "a=1&email=x%40y.z"},
		diffEvent{name: "emit2 then kv then echo", configs: []string{mode("emit2"), mode("kv"), mode("echo")}, body: testEvent().Body},
		diffEvent{name: "drop then echo", configs: []string{mode("drop"), mode("echo")}, body: testEvent().Body},
	)
	return []diffGuest{
		{name: "filter", wasm: buildGuest("plugins/filter"), events: []diffEvent{
			ev1("drop", `{"rules":[{"path":"entry.fields.field_1","op":"lte","value":6}]}`, howxm),
			ev1("keep", `{"mode":"any","rules":[{"path":"entry.platform","op":"eq","value":"Mac"},{"path":"x","op":"exists"}]}`, howxm),
			ev1("two rules", `{"rules":[{"path":"event_type","op":"eq","value":"entry_submitted"},{"path":"entry.fields.field_1","op":"gte","value":6}]}`, howxm),
			ev1("bad config", `{"rules":[{"path":"a","op":"lessthan","value":1}]}`, howxm),
		}},
		{name: "template", wasm: buildGuest("plugins/template"), targets: []string{"coupons", "sms", "crm"}, events: []diffEvent{
			ev1("coupon", coupon, []byte(`{"amount": 250, "user": {"id": "u1"}}`)),
			ev1("coupon defaults", coupon, []byte(`{"user": {}}`)),
			ev1("bad integer", coupon, []byte(`{"amount": "abc"}`)),
			ev1("query and method", `{"target": "coupons", "method": "GET", "query": {"u": "${user.id|x}", "c": "c-1"}, "headers": {"X-U": "${user.id}"}}`, []byte(`{"user": {"id": "u 1"}}`)),
			ev1("event changed", `{"body": "{\"ref\": \"${id}\"}", "query": {"ref": "${id}"}, "headers": {"X-Ref": "r-${id}"}, "method": "PUT"}`, []byte(`{"id": 7}`)),
			ev1("escapes", `{"body": "{\"text\": \"Hi ${name}\"}", "target": "sms"}`, []byte(`{"name": "A \"B\"\nC\\ 张"}`)),
			ev1("raw object", `{"body": "{\"u\": ${user}}", "target": "crm"}`, []byte(`{"user": {"name": "Ann", "tags": [1, 2]}}`)),
			ev1("undefined param", `{"body": "{\"a\": ${param:nope}}"}`, []byte(`{}`)),
		}},
		{name: "howxm-nps", wasm: buildGuest("plugins/howxm-nps"), targets: []string{"crm"}, events: []diffEvent{
			ev1("seed payload dropped", crm, howxm),
			ev1("low score emits a ticket", crm, low),
			ev1("no target replaces the body", `{"max_score": 6}`, low),
			ev1("wrong type", crm, bytes.Replace(low, []byte(`"field_1": 3`), []byte(`"field_1": "great"`), 1)),
			ev1("bad config fails", `{"max_score": "six"}`, low),
			ev1("unknown target fails", `{"target": "nope"}`, low),
		}},
		{name: "howxm-nps in AssemblyScript", wasm: func(t testing.TB) []byte { return plugintest.AssemblyScript(t, "plugins/howxm-nps/assemblyscript") }, targets: []string{"crm"}, events: []diffEvent{
			ev1("seed payload dropped", crm, howxm),
			ev1("low score emits a ticket", crm, low),
			ev1("no target replaces the body", `{"max_score": 6}`, low),
			ev1("wrong type", crm, bytes.Replace(low, []byte(`"field_1": 3`), []byte(`"field_1": "great"`), 1)),
			ev1("escapes", crm, bytes.Replace(low, []byte(`"type": "NpsField"`), []byte(`"type": "\u004epsField"`), 1)),
			ev1("bad config fails", `{"max_score": "six"}`, low),
			ev1("unknown target fails", `{"target": "nope"}`, low),
		}},
		{name: "smartsupp-chat", wasm: buildGuest("plugins/smartsupp-chat"), targets: []string{"crm-transcripts", "surveylab"}, events: []diffEvent{
			ev1("seed chat", chatCfg, chat),
			ev1("no email", chatCfg, noEmail),
			ev1("not a chat", chatCfg, []byte(`{"accountId": 1}`)),
			ev1("bad config", `{"survey_target": "surveylab"}`, chat),
		}},
		{name: "threshold", wasm: buildGuest("plugins/threshold"), targets: []string{"crm"}, events: []diffEvent{
			ev1("first occurrence dropped", points, []byte(`{"visitor": {"id": 7}}`)),
			ev1("second acts, delayed", points, []byte(`{"visitor": {"id": 7}}`)),
			ev1("third dropped", points, []byte(`{"visitor": {"id": 7}}`)),
			ev1("another key", points, []byte(`{"visitor": {"id": 8}}`)),
			ev1("bad config", `{"key": "a", "count": 0}`, []byte(`{"visitor": {"id": 7}}`)),
		}},
		{name: "sdk testguest", wasm: buildGuest("plugins/sdk/internal/testguest"), events: sdkModes},
		{name: "sdk bareguest", wasm: buildGuest("plugins/sdk/internal/bareguest"), events: []diffEvent{ev1("nothing", "", featureBody)}},
		{name: "conformance", wasm: func(t testing.TB) []byte { return abitest.Guest(t) }, targets: []string{"crm", "surveylab"}, events: confModes},
		// Not the modes that never return ("loop", "spin"): uninstrumented,
		// only the process's end would stop them. Nor "membomb": the same
		// kind of failure as "bigoutput" for this test, at many times the
		// cost under the race detector.
		{name: "hostile", wasm: func(t testing.TB) []byte { return guestWasm(t, "hostile") }, events: []diffEvent{
			ev1("ok", mode("ok"), featureBody),
			ev1("features", mode("features"), howxm),
			ev1("panic", mode("panic"), featureBody),
			ev1("bigoutput", mode("bigoutput"), featureBody),
			ev1("badptr", mode("badptr"), featureBody),
			ev1("exit", mode("exit"), featureBody),
			ev1("recurse", mode("recurse"), featureBody),
			ev1("ok after failures", mode("ok"), featureBody),
		}},
		{name: "trivial", wasm: func(t testing.TB) []byte { return guestWasm(t, "trivial") }, events: []diffEvent{ev1("nothing", "", featureBody)}},
		{name: "assemblyscript plugin", wasm: func(t testing.TB) []byte { return plugintest.AssemblyScript(t, "plugins/assemblyscript") }, events: []diffEvent{
			ev1("kept", `{"contains":"entry_submitted","header":"X-Kind","value":"submitted"}`, howxm),
			ev1("kept again", `{"contains":"entry_submitted"}`, howxm),
			ev1("dropped", `{"contains":"chat_closed"}`, howxm),
			ev1("bad config", `{"header":"X"}`, howxm),
		}},
		{name: "assemblyscript features", wasm: func(t testing.TB) []byte { return asGuest(t, "as-hostile") }, events: []diffEvent{
			ev1("features", mode("features"), featureBody),
			ev1("unknown mode", mode("nope"), featureBody),
		}},
		{name: "wat features", wasm: func(t testing.TB) []byte { return watGuest(t, "features") }, events: []diffEvent{ev1("features", "", featureBody)}},
		{name: "wat tail calls", wasm: func(t testing.TB) []byte { return watGuest(t, "tailcall", "--enable-tail-call") }, events: []diffEvent{ev1("sum", "", featureBody)}},
		{name: "wat atomics", wasm: func(t testing.TB) []byte { return watGuest(t, "atomics", "--enable-threads") }, events: []diffEvent{ev1("counter", "", featureBody)}},
	}
}

func TestDifferential(t *testing.T) {
	guests := diffGuests(t)
	type host struct {
		name string
		h    *Host
	}
	newHost := func(name string, opts Options) host {
		opts.CacheDir = testCacheDir()
		h, err := NewHost(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close(context.Background()) })
		return host{name: name, h: h}
	}
	ref := newHost("uninstrumented", Options{noInterrupt: true})
	var hosts []host
	for _, b := range diffBudgets {
		name := "budget " + strconv.Itoa(int(b))
		if b == 0 {
			name = fmt.Sprintf("default budget (%d)", DefaultBudget)
		}
		hosts = append(hosts, newHost(name, Options{interruptBudget: b}))
	}
	events := 0
	for gi, g := range guests {
		t.Run(g.name, func(t *testing.T) {
			wasm := g.wasm(t)
			plugin := fmt.Sprintf("g%d", gi)
			// A timeout no run reaches even at budget 1 under the race
			// detector: this test is about results, not time.
			spec := PluginSpec{Name: plugin, Wasm: wasm, Instances: 1, Timeout: time.Minute, MaxMemory: 32 << 20}
			for _, h := range append([]host{ref}, hosts...) {
				load(t, h.h, spec)
			}
			for _, e := range g.events {
				events++
				want := diffRun(t, ref.h, plugin, g.targets, e)
				for _, h := range hosts {
					if got := diffRun(t, h.h, plugin, g.targets, e); got != want {
						t.Errorf("%s, %s: instrumented and uninstrumented differ\n%s:\n%s\nuninstrumented:\n%s", e.name, h.name, h.name, got, want)
					}
				}
			}
			// The comparison means something only if the instrumented
			// hosts really ran instrumented code: yield runs at an
			// instance's first check, whatever the budget.
			if y := yieldsOf(t, ref.h, plugin); y != 0 {
				t.Errorf("the uninstrumented host's instance yielded %d times", y)
			}
			var ys []string
			for _, h := range hosts {
				y := yieldsOf(t, h.h, plugin)
				if y == 0 {
					t.Errorf("%s: yield never ran: the module was not instrumented", h.name)
				}
				ys = append(ys, fmt.Sprintf("%s: %d", h.name, y))
			}
			t.Logf("yields of the last instance: %s", strings.Join(ys, ", "))
		})
	}
	t.Logf("%d guests, %d events, each uninstrumented and at %d budgets", len(guests), events, len(diffBudgets))
}

// diffRun runs e through a chain of plugin and returns everything the
// chain decided, as text: the event after the chain, the outcome, and the
// error. Config ids differ between hosts (they are never reused), so they
// are named by step.
func diffRun(t *testing.T, h *Host, plugin string, targets []string, e diffEvent) string {
	t.Helper()
	var steps []Step
	for _, c := range e.configs {
		steps = append(steps, Step{Plugin: plugin, Config: []byte(c)})
	}
	c := chain(t, h, "r", targets, steps...)
	ev := testEvent()
	ev.Body = append([]byte(nil), e.body...)
	if e.query != "" {
		ev.Query = []byte(e.query)
	}
	var out delivery.Outcome
	err := c.Run(context.Background(), ev, &out)
	var b strings.Builder
	fmt.Fprintf(&b, "error: %v\n", err)
	if pe, ok := err.(*PluginError); ok {
		fmt.Fprintf(&b, "kind: %s\n", pe.Kind)
	}
	fmt.Fprintf(&b, "event: %q %q %q\n", ev.Method, ev.Path, ev.Query)
	writeKVs(&b, "event header", ev.Headers)
	fmt.Fprintf(&b, "event body: %q\n", ev.Body)
	fmt.Fprintf(&b, "dropped: %v %q emitted: %v not before: %d\n", out.Dropped, out.DropReason, out.Emitted, out.NotBefore)
	for i := range out.Deliveries {
		d := &out.Deliveries[i]
		fmt.Fprintf(&b, "delivery %d: id %q event %q route %q target %q %q %q not before %d\n", i, d.ID, d.EventID, d.Route, d.Target, d.Method, d.Path, d.NotBefore)
		writeKVs(&b, "  query", d.Query)
		writeKVs(&b, "  header", d.Headers)
		fmt.Fprintf(&b, "  body: %q\n", d.Body)
	}
	r := &out.Response
	fmt.Fprintf(&b, "response: set %v status %d body %q\n", r.Set, r.Status, r.Body)
	writeKVs(&b, "  response header", r.Headers)
	s := b.String()
	for i, id := range c.ConfigIDs() {
		s = strings.ReplaceAll(s, "config_id="+strconv.FormatUint(uint64(id), 10), fmt.Sprintf("config_id=<step %d>", i))
	}
	return s
}

func writeKVs(b *strings.Builder, what string, kvs []delivery.KV) {
	for _, kv := range kvs {
		fmt.Fprintf(b, "%s: %q = %q\n", what, kv.Key, kv.Value)
	}
}

// yieldsOf returns how often yield handed a budget to plugin's idle
// instance (the differential test runs one instance, idle between events).
func yieldsOf(t *testing.T, h *Host, plugin string) uint64 {
	t.Helper()
	h.mu.Lock()
	p := h.plugins[plugin]
	h.mu.Unlock()
	select {
	case in := <-p.ready:
		y := in.st.yields
		p.ready <- in
		return y
	default:
		t.Fatalf("plugin %s has no idle instance: its last event must succeed", plugin)
		return 0
	}
}

// conformanceModes lists the `case "mode":` labels of the conformance kit's guest.
func conformanceModes(t testing.TB) []string {
	src, err := os.ReadFile(filepath.Join("..", abitest.GuestDir, "main.go")) // tests run in transforms/
	if err != nil {
		t.Fatal(err)
	}
	var modes []string
	for _, m := range regexp.MustCompile(`(?m)^\tcase "(\w+)":`).FindAllSubmatch(src, -1) {
		modes = append(modes, string(m[1]))
	}
	if len(modes) < 10 {
		t.Fatalf("found only the conformance modes %v", modes)
	}
	return modes
}
