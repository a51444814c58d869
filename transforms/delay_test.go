package transforms

import (
	"context"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
)

// TestEventDelayWithoutEmit: set_delay on the event with no emit makes no
// deliveries in the host; it becomes Outcome.NotBefore, and the default
// deliveries the caller makes from it carry the forwarded headers. (The
// host used to emit the event itself, with its Content-Type alone.)
func TestEventDelayWithoutEmit(t *testing.T) {
	h := newTestHost(t)
	setDelay := wasmImport{module: abi.HostModule, name: abi.FuncSetDelay, params: []byte{tI32, tI64}, results: []byte{tI32}}
	body := cat(i32const(abi.HandleEvent), i64const(60000), call(0), opDrop, i32const(0))
	load(t, h, PluginSpec{Name: "delay", Wasm: handleModule(body, setDelay), Instances: 1, Timeout: 10 * time.Second})
	c := chain(t, h, "r", []string{"crm", "sms"}, Step{Plugin: "delay"})

	ev := testEvent()
	ev.Headers = delivery.Append(ev.Headers, []byte("Authorization"), []byte("Bearer sender-secret"))
	in := delivery.Original{Method: append([]byte(nil), ev.Method...), Path: append([]byte(nil), ev.Path...), Query: append([]byte(nil), ev.Query...)}
	var out delivery.Outcome
	if err := c.Run(context.Background(), ev, &out); err != nil {
		t.Fatal(err)
	}
	want := ev.ReceivedAt + int64(time.Minute)
	if out.Emitted || len(out.Deliveries) != 0 || out.NotBefore != want {
		t.Fatalf("emitted %v, %d deliveries, not before %d; want none emitted, not before %d", out.Emitted, len(out.Deliveries), out.NotBefore, want)
	}
	ds := delivery.Defaults(nil, ev, in, out.NotBefore, []string{"crm", "sms"})
	if len(ds) != 2 {
		t.Fatalf("%d default deliveries; want 2", len(ds))
	}
	for _, d := range ds {
		ct, _ := delivery.Lookup(d.Headers, []byte("Content-Type"))
		seq, _ := delivery.Lookup(d.Headers, []byte("X-Seq"))
		_, auth := delivery.Lookup(d.Headers, []byte("Authorization"))
		if string(ct) != "application/json" || string(seq) != "7" || auth || d.NotBefore != want || len(d.Query) != 0 || string(d.Body) != `{"score":3}` {
			t.Errorf("%s: headers %v, not before %d, query %v, body %s; want the forwarded headers (not Authorization), the event's delay, the target's query",
				d.Target, d.Headers, d.NotBefore, d.Query, d.Body)
		}
	}
}
