package transforms

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/plugins/plugintest"
	"github.com/tetratelabs/wazero"
)

// The guest's own cost: the stock plugins on their benchmark inputs (the
// same as their BenchmarkWasm* in plugins/*/wasm_test.go) through the real
// host as production runs them (instrumented for interrupts).
//
// To compare with an earlier tree, build its plugins to a directory
// (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o DIR/howxm-nps.wasm
// ./plugins/howxm-nps, and so on, named by the package directory's last
// element) and set HOOKGATE_GUEST_VARIANTS=base=DIR (several: a=DIR1,b=DIR2):
// every case then runs each variant that has its .wasm, then this tree's
// build as v=now, interleaved under -count, ready for `benchstat -col /v`.

type guestCase struct {
	name    string
	dir     string // plugin package, from the module root
	asc     bool   // dir is an AssemblyScript project, not a Go package
	body    []byte
	config  string
	targets []string
}

func guestCases(tb testing.TB) []guestCase {
	howxm := readRoot(tb, "testdata/howxm_entry_submitted.json")
	low := bytes.Replace(howxm, []byte(`"field_1": 10`), []byte(`"field_1": 3`), 1)
	chat := readRoot(tb, "testdata/smartsupp_chat_closed.json")
	return []guestCase{
		{name: "howxm-nps/ticket", dir: "plugins/howxm-nps", body: low,
			config: `{"max_score": 6, "target": "crm"}`, targets: []string{"crm"}},
		{name: "howxm-nps/drop", dir: "plugins/howxm-nps", body: howxm,
			config: `{"max_score": 6, "target": "crm"}`, targets: []string{"crm"}},
		// The same plugin in AssemblyScript: what the toolchain costs.
		{name: "howxm-nps-as/ticket", dir: "plugins/howxm-nps/assemblyscript", asc: true, body: low,
			config: `{"max_score": 6, "target": "crm"}`, targets: []string{"crm"}},
		{name: "howxm-nps-as/drop", dir: "plugins/howxm-nps/assemblyscript", asc: true, body: howxm,
			config: `{"max_score": 6, "target": "crm"}`, targets: []string{"crm"}},
		{name: "filter", dir: "plugins/filter", body: howxm,
			config: `{"rules":[{"path":"event_type","op":"eq","value":"entry_submitted"},{"path":"entry.fields.field_1","op":"gte","value":6}]}`},
		{name: "template/coupon", dir: "plugins/template", body: []byte(`{"amount": 250, "user": {"id": "u1"}}`),
			config:  `{"body": "{\"amount\": ${amount}, \"user\": \"${user.id|guest}\"}", "params": {"amount": {"type": "integer", "default": 100}}, "target": "coupons"}`,
			targets: []string{"coupons"}},
		// The load harness's chain3 step: two headers read from the body.
		{name: "template/headers", dir: "plugins/template", body: howxm,
			config: `{"headers": {"X-Survey": "${campaign.name}", "X-Customer": "${entry.customer.email}"}}`},
		{name: "smartsupp-chat", dir: "plugins/smartsupp-chat", body: chat,
			config:  `{"crm_target":"crm-transcripts","survey_target":"surveylab","collector_id":"C1"}`,
			targets: []string{"crm-transcripts", "surveylab"}},
		{name: "threshold", dir: "plugins/threshold", body: []byte(`{"visitor": {"id": 27671}}`),
			config:  `{"name": "bench", "key": "visitor.id", "count": 3, "window": "24h", "target": "crm"}`,
			targets: []string{"crm"}},
	}
}

// caseWasm builds this tree's plugin for c, with Go or AssemblyScript.
func caseWasm(tb testing.TB, c guestCase) []byte {
	tb.Helper()
	if c.asc {
		return plugintest.AssemblyScript(tb, c.dir)
	}
	wasm, err := os.ReadFile(plugintest.Build(tb, c.dir))
	if err != nil {
		tb.Fatal(err)
	}
	return wasm
}

// guestEvent is the event wasmtest builds for an sdktest.Input with
// defaults: the plugins' wasm tests and these benchmarks see the same.
func guestEvent(body []byte) *delivery.Event {
	return &delivery.Event{
		ID:         []byte("evt_test"),
		Route:      "test",
		ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano(),
		Method:     []byte("POST"),
		Path:       []byte("/hooks/test"),
		Body:       append([]byte(nil), body...),
		Headers:    []delivery.KV{{Key: []byte("Content-Type"), Value: []byte("application/json")}},
	}
}

// guestChain loads wasm as a one-instance plugin and returns a chain
// running it with the case's config.
func guestChain(tb testing.TB, c guestCase, wasm []byte) *Chain {
	tb.Helper()
	// HOOKGATE_GUEST_RAW=1 loads modules uninstrumented, to see what the
	// interrupt checks cost.
	h, err := NewHost(context.Background(), Options{CacheDir: testCacheDir(), noInterrupt: os.Getenv("HOOKGATE_GUEST_RAW") != ""})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close(context.Background()) })
	load(tb, h, PluginSpec{Name: "p", Wasm: wasm, Instances: 1, Timeout: 10 * time.Second})
	return chain(tb, h, "test", c.targets, Step{Plugin: "p", Config: []byte(c.config)})
}

// runGuest runs c b.N times, restoring the event before each call as
// wasmtest.Benchmark does. Besides wall time it reports the thread's CPU
// time per call (cpu-ns/op), which a machine shared with other work
// disturbs less.
func runGuest(b *testing.B, ch *Chain, body []byte) {
	src := guestEvent(body)
	var ev delivery.Event
	var out delivery.Outcome
	ctx := context.Background()
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	for b.Loop() {
		refill(&ev, src)
		out.Reset()
		if err := ch.Run(ctx, &ev, &out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// refill makes ev a copy of src (a guestEvent: one header) in ev's own
// buffers, since a plugin may change them; once they have grown it
// allocates nothing, so the copy is not charged to the call.
func refill(ev, src *delivery.Event) {
	ev.ID, ev.Route, ev.ReceivedAt = src.ID, src.Route, src.ReceivedAt
	ev.Method = append(ev.Method[:0], src.Method...)
	ev.Path = append(ev.Path[:0], src.Path...)
	ev.Query = ev.Query[:0]
	ev.Body = append(ev.Body[:0], src.Body...)
	// One header, reusing the element's buffers (a zero KV in its place
	// would make the copies below allocate).
	if len(ev.Headers) == 0 {
		ev.Headers = append(ev.Headers, delivery.KV{})
	}
	ev.Headers = ev.Headers[:1]
	ev.Headers[0].Key = append(ev.Headers[0].Key[:0], src.Headers[0].Key...)
	ev.Headers[0].Value = append(ev.Headers[0].Value[:0], src.Headers[0].Value...)
}

// threadCPU is the calling thread's CPU time in nanoseconds.
func threadCPU() int64 {
	var ts syscall.Timespec
	// CLOCK_THREAD_CPUTIME_ID
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

func BenchmarkGuest(b *testing.B) {
	type variant struct{ name, dir string }
	var extra []variant
	for _, f := range strings.Split(os.Getenv("HOOKGATE_GUEST_VARIANTS"), ",") {
		if name, dir, ok := strings.Cut(f, "="); ok {
			extra = append(extra, variant{name, dir})
		}
	}
	for _, c := range guestCases(b) {
		var variants []struct{ name, path string }
		for _, v := range extra {
			if c.asc {
				break // variants are Go builds
			}
			p := filepath.Join(v.dir, filepath.Base(c.dir)+".wasm")
			if _, err := os.Stat(p); err == nil {
				variants = append(variants, struct{ name, path string }{v.name, p})
			}
		}
		variants = append(variants, struct{ name, path string }{"now", ""})
		for _, v := range variants {
			b.Run(c.name+"/v="+v.name, func(b *testing.B) {
				var wasm []byte
				if v.path == "" {
					wasm = caseWasm(b, c)
				} else {
					var err error
					if wasm, err = os.ReadFile(v.path); err != nil {
						b.Fatal(err)
					}
				}
				runGuest(b, guestChain(b, c, wasm), c.body)
			})
		}
	}
}

// BenchmarkGuestOverhead splits the cost of a call that does nothing:
// wazero alone calling a hand-assembled guest that returns 0, then the
// same guest through the host (adds hookgate's own work), a Go export
// returning 0 (adds Go's wasmexport entry and exit), the SDK with a
// handler returning nil (adds the SDK's per-call setup), then reading the
// config through LoadConfig, then the body.
func BenchmarkGuestOverhead(b *testing.B) {
	body := readRoot(b, "testdata/howxm_entry_submitted.json")
	b.Run("wazero-call", func(b *testing.B) {
		// The floor: wazero calling a guest that returns 0, no hookgate.
		ctx := context.Background()
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
		defer rt.Close(ctx)
		mod, err := rt.Instantiate(ctx, handleModule(i32const(0)))
		if err != nil {
			b.Fatal(err)
		}
		fn := mod.ExportedFunction(abi.ExportHandle)
		stack := make([]uint64, 2)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cpu0 := threadCPU()
		for b.Loop() {
			stack[0], stack[1] = 0, 1
			if err := fn.CallWithStack(ctx, stack); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	})
	for _, bc := range []struct {
		name   string
		wasm   func(testing.TB) []byte
		config string
	}{
		{"wat", func(testing.TB) []byte { return handleModule(i32const(0)) }, ""},
		{"go-export", func(tb testing.TB) []byte { return guestWasm(tb, "trivial") }, ""},
		{"sdk-bare", func(tb testing.TB) []byte { return pluginWasm(tb, "plugins/sdk/internal/bareguest") }, ""},
		{"sdk-config", func(tb testing.TB) []byte { return pluginWasm(tb, "plugins/sdk/internal/testguest") }, `{"mode":"nothing"}`},
		{"sdk-config-body", func(tb testing.TB) []byte { return pluginWasm(tb, "plugins/sdk/internal/testguest") }, `{"mode":"body"}`},
		// For scale: one sdk.Get to the end of the body (the host walks it
		// all), a Scanner skipping it all in the guest, one emit.
		{"sdk-get", func(tb testing.TB) []byte { return pluginWasm(tb, "plugins/sdk/internal/testguest") }, `{"mode":"get"}`},
		{"sdk-scan", func(tb testing.TB) []byte { return pluginWasm(tb, "plugins/sdk/internal/testguest") }, `{"mode":"scan"}`},
		{"sdk-emit", func(tb testing.TB) []byte { return pluginWasm(tb, "plugins/sdk/internal/testguest") }, `{"mode":"emit"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := guestCase{config: bc.config, targets: []string{"crm"}}
			runGuest(b, guestChain(b, c, bc.wasm(b)), body)
		})
	}
}

func pluginWasm(tb testing.TB, dir string) []byte {
	wasm, err := os.ReadFile(plugintest.Build(tb, dir))
	if err != nil {
		tb.Fatal(err)
	}
	return wasm
}
