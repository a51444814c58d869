// Package wasmtest runs a plugin built to WebAssembly in the real hookgate
// host (package transforms), with the same Input and Result types as
// sdktest. A plugin's tests use it to check that what passed under the fake
// host also holds in the gateway, and to measure the real per-call cost:
//
//	func TestWasm(t *testing.T) {
//		in := sdktest.Input{Body: body, Config: cfg, Targets: []string{"crm"}}
//		wasmtest.Compare(t, "plugins/howxm-nps", handle, in)
//	}
//
// # Notes
//
//   - The first use builds the plugin (plugintest.Build, cached on disk by
//     source hash) and compiles it, which takes seconds.
//   - Targets must list every target the plugin emits to: the real host
//     refuses unknown ones.
//   - The real host keeps its own key-value store and clock: Input.KV and
//     Input.Now are ignored, and counters persist across calls of one test
//     binary. Logs go to the host's logger and are not in the Result.
//   - The real host folds a delay on the event into the deliveries: with no
//     emit it creates one delivery per target (see ABI.md), so compare
//     Delivery.Delay, not Result.Delay, which stays 0.
package wasmtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/plugintest"
	"github.com/hookgate/hookgate/plugins/sdk"
	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
	"github.com/hookgate/hookgate/transforms"
)

var (
	mu     sync.Mutex
	host   *transforms.Host
	chains = map[string]*transforms.Chain{}
	// names maps a module's identity (its directory, or a hash of its
	// bytes) and max_output to the name it was loaded under: two modules
	// with the same base name never share one.
	names = map[string]string{}
	taken = map[string]bool{}
)

// chain returns a chain running the plugin at dir with in's config,
// loading the plugin on first use.
func chain(tb testing.TB, dir string, in sdktest.Input) *transforms.Chain {
	tb.Helper()
	return chainOf(tb, filepath.Base(dir), "dir:"+filepath.Clean(dir), func() []byte {
		wasm, err := os.ReadFile(plugintest.Build(tb, dir))
		if err != nil {
			tb.Fatalf("wasmtest: %v", err)
		}
		return wasm
	}, in)
}

// moduleID identifies a module given as bytes.
func moduleID(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return "module:" + hex.EncodeToString(sum[:])
}

// chainOf is chain for the module wasm returns, identified by id and
// loaded under name (with a suffix when another module has it).
func chainOf(tb testing.TB, name, id string, wasm func() []byte, in sdktest.Input) *transforms.Chain {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	ctx := context.Background()
	if host == nil {
		h, err := transforms.NewHost(ctx, transforms.Options{})
		if err != nil {
			tb.Fatalf("wasmtest: %v", err)
		}
		host = h
	}
	id = fmt.Sprintf("%s\x00%d", id, in.MaxOutput)
	loadedName, ok := names[id]
	if !ok {
		loadedName = fmt.Sprintf("%s-%d", name, in.MaxOutput)
		for n := 2; taken[loadedName]; n++ {
			loadedName = fmt.Sprintf("%s-%d-%d", name, in.MaxOutput, n)
		}
		spec := transforms.PluginSpec{Name: loadedName, Wasm: wasm(), Instances: 1, MaxOutput: in.MaxOutput, Timeout: 5 * time.Second}
		if err := host.Load(ctx, spec); err != nil {
			tb.Fatalf("wasmtest: loading %s: %v", loadedName, err)
		}
		names[id], taken[loadedName] = loadedName, true
	}
	name = loadedName
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%s", name, in.Route, in.Config, strings.Join(in.Targets, ","))
	if c := chains[key]; c != nil {
		return c
	}
	c, err := host.Chain(in.Route, []transforms.Step{{Plugin: name, Config: in.Config}}, in.Targets)
	if err != nil {
		tb.Fatalf("wasmtest: %v", err)
	}
	chains[key] = c
	return c
}

func event(in sdktest.Input) *delivery.Event {
	ev := &delivery.Event{
		ID:         []byte(in.EventID),
		Route:      in.Route,
		ReceivedAt: in.ReceivedAt.UnixNano(),
		Method:     []byte(in.Method),
		Path:       []byte(in.Path),
		Query:      []byte(in.Query),
		Body:       append([]byte(nil), in.Body...),
	}
	for _, h := range in.SortedHeaders() {
		ev.Headers = append(ev.Headers, delivery.KV{Key: []byte(h[0]), Value: []byte(h[1])})
	}
	return ev
}

// Run runs the plugin at dir (a path from the module root, such as
// "plugins/filter") once on in, in the real host. The error is the host's
// (*transforms.PluginError) when the call failed.
func Run(tb testing.TB, dir string, in sdktest.Input) (sdktest.Result, error) {
	tb.Helper()
	in = in.WithDefaults()
	c := chain(tb, dir, in)
	ev := event(in)
	var out delivery.Outcome
	err := c.Run(context.Background(), ev, &out)
	return result(ev, &out), err
}

// RunModule is Run for a module already built (by another toolchain, for
// instance), loaded under name (with a suffix when another module has
// it).
func RunModule(tb testing.TB, name string, wasm []byte, in sdktest.Input) (sdktest.Result, error) {
	tb.Helper()
	in = in.WithDefaults()
	c := chainOf(tb, name, moduleID(wasm), func() []byte { return wasm }, in)
	ev := event(in)
	var out delivery.Outcome
	err := c.Run(context.Background(), ev, &out)
	return result(ev, &out), err
}

func result(ev *delivery.Event, out *delivery.Outcome) sdktest.Result {
	r := sdktest.Result{
		Dropped:    out.Dropped,
		DropReason: string(out.DropReason),
		Method:     string(ev.Method),
		Path:       string(ev.Path),
		Headers:    toMap(ev.Headers),
		Query:      map[string]string{},
		Body:       append([]byte(nil), ev.Body...),
	}
	if out.NotBefore != 0 {
		r.Delay = time.Duration(out.NotBefore - ev.ReceivedAt)
	}
	if q, err := url.ParseQuery(string(ev.Query)); err == nil {
		for k, v := range q {
			r.Query[k] = v[0]
		}
	}
	for i := range out.Deliveries {
		d := &out.Deliveries[i]
		sd := sdktest.Delivery{
			Target:  d.Target,
			Method:  string(d.Method),
			Path:    string(d.Path),
			Headers: toMap(d.Headers),
			Query:   toMap(d.Query),
			Body:    append([]byte(nil), d.Body...),
		}
		if d.NotBefore != 0 {
			sd.Delay = time.Duration(d.NotBefore - ev.ReceivedAt)
		}
		r.Emitted = append(r.Emitted, sd)
	}
	if out.Response.Set {
		r.Response = &sdktest.Response{Status: out.Response.Status, Headers: toMap(out.Response.Headers), Body: append([]byte(nil), out.Response.Body...)}
	}
	return r
}

func toMap(kvs []delivery.KV) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if _, ok := m[string(kv.Key)]; !ok {
			m[string(kv.Key)] = string(kv.Value)
		}
	}
	return m
}

// Compare runs h under sdktest and the plugin at dir in the real host on
// the same input and fails t where the outcomes differ: drop and reason,
// the event's body, method, path, headers, query and delay, each delivery, the
// response, and whether the call failed (with the fail message contained in
// the host's error).
func Compare(t *testing.T, dir string, h sdk.Handler, in sdktest.Input) {
	t.Helper()
	want, wantErr := sdktest.Run(h, in)
	got, gotErr := Run(t, dir, in)
	if (wantErr == nil) != (gotErr == nil) || wantErr != nil && !strings.Contains(gotErr.Error(), wantErr.Error()) {
		t.Fatalf("wasmtest: error: sdktest %v, real host %v", wantErr, gotErr)
	}
	if wantErr != nil {
		return
	}
	if d := Diff(want, got, "sdktest", "real host"); d != "" {
		t.Fatalf("wasmtest: %s: sdktest and the real host differ:\n%s", dir, d)
	}
}

// Diff lists, one per line, where two results differ (drop and reason, the
// event, each delivery, the response), naming them a and b; "" when they
// are the same. A delivery without a delay of its own compares with
// want's event delay, as the real host folds it in.
func Diff(want, got sdktest.Result, a, b string) string {
	var diffs []string
	diff := func(what string, x, y any) {
		if fmt.Sprint(x) != fmt.Sprint(y) {
			diffs = append(diffs, fmt.Sprintf("%s: %s %v, %s %v", what, a, x, b, y))
		}
	}
	diff("dropped", want.Dropped, got.Dropped)
	diff("drop reason", want.DropReason, got.DropReason)
	diff("event body", string(want.Body), string(got.Body))
	diff("event method", want.Method, got.Method)
	diff("event path", want.Path, got.Path)
	diff("event headers", want.Headers, got.Headers)
	diff("event query", want.Query, got.Query)
	diff("event delay", want.Delay, got.Delay)
	diff("deliveries", len(want.Emitted), len(got.Emitted))
	for i := 0; i < len(want.Emitted) && i < len(got.Emitted); i++ {
		w, g := want.Emitted[i], got.Emitted[i]
		if w.Delay == 0 {
			w.Delay = want.Delay // the host gives the event's delay to deliveries without their own
		}
		p := fmt.Sprintf("delivery %d ", i)
		diff(p+"target", w.Target, g.Target)
		diff(p+"method", w.Method, g.Method)
		diff(p+"path", w.Path, g.Path)
		diff(p+"headers", w.Headers, g.Headers)
		diff(p+"query", w.Query, g.Query)
		diff(p+"delay", w.Delay, g.Delay)
		if !bytes.Equal(w.Body, g.Body) {
			diffs = append(diffs, fmt.Sprintf("%sbody:\n%s: %s\n%s: %s", p, a, w.Body, b, g.Body))
		}
	}
	diff("response", fmt.Sprint(want.Response), fmt.Sprint(got.Response))
	return strings.Join(diffs, "\n")
}

// Benchmark measures one call of the plugin at dir on in, in the real host
// (borrowing an instance, the call, the host functions), with allocations
// reported. Resetting the event from in before each call (a few copies
// into reused buffers) is inside the timed loop; it is small.
func Benchmark(b *testing.B, dir string, in sdktest.Input) {
	b.Helper()
	in = in.WithDefaults()
	benchmark(b, chain(b, dir, in), in)
}

// BenchmarkModule is Benchmark for a module already built, loaded under
// name (as RunModule).
func BenchmarkModule(b *testing.B, name string, wasm []byte, in sdktest.Input) {
	b.Helper()
	in = in.WithDefaults()
	benchmark(b, chainOf(b, name, moduleID(wasm), func() []byte { return wasm }, in), in)
}

func benchmark(b *testing.B, c *transforms.Chain, in sdktest.Input) {
	ev := event(in)
	body, method, path, query := ev.Body, ev.Method, ev.Path, ev.Query
	headers := ev.Headers
	var work delivery.Event
	var out delivery.Outcome
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		work.ID, work.Route, work.ReceivedAt = ev.ID, ev.Route, ev.ReceivedAt
		work.Method = append(work.Method[:0], method...)
		work.Path = append(work.Path[:0], path...)
		work.Query = append(work.Query[:0], query...)
		work.Body = append(work.Body[:0], body...)
		work.Headers = copyKVs(work.Headers, headers)
		out.Reset()
		if err := c.Run(ctx, &work, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// copyKVs deep-copies src into dst's buffers: the host may rewrite header
// values in place, which must not reach the next iteration's input.
func copyKVs(dst, src []delivery.KV) []delivery.KV {
	for len(dst) < len(src) {
		dst = append(dst, delivery.KV{})
	}
	dst = dst[:len(src)]
	for i := range src {
		dst[i].Key = append(dst[i].Key[:0], src[i].Key...)
		dst[i].Value = append(dst[i].Value[:0], src[i].Value...)
	}
	return dst
}
