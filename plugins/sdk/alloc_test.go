//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package sdk

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/plugins/sdk/internal/hostcall"
	"github.com/hookgate/hookgate/plugins/sdk/jsonw"
)

type allocConfig struct{ target string }

var allocW jsonw.Writer

// allocHandler uses the SDK the way the stock plugins do: everything on it
// is meant to allocate nothing once buffers have grown.
func allocHandler(e *Event) error {
	cfg, err := LoadConfig(e, func(raw []byte) (allocConfig, error) {
		return allocConfig{target: Get(raw, "target").String()}, nil
	})
	if err != nil {
		return err
	}
	body := e.Body()
	score := Get(body, "entry.fields.field_1")
	_ = e.Method()
	_ = e.Path()
	_ = e.Route()
	allocW.Reset()
	allocW.ObjectStart()
	allocW.Key("score")
	allocW.Raw(GetBytes(body, "entry.fields.field_1"))
	allocW.Key("name")
	allocW.String(Get(body, "entry.customer.name").String())
	allocW.ObjectEnd()
	e.Emit(cfg.target).SetBody(allocW.Bytes()).SetHeader("X-Score", score.Raw).Delay(time.Second)
	e.SetHeader("X-Seen", "1")
	return nil
}

func TestCallAllocatesNothing(t *testing.T) {
	Handle(allocHandler)
	f := &hostcall.Fake{
		Method:  "POST",
		Path:    "/hooks/howxm",
		Route:   "howxm",
		EventID: "evt_1",
		Headers: []hostcall.KV{{Key: "Content-Type", Value: "application/json"}},
		Body:    []byte(`{"entry":{"fields":{"field_1":3},"customer":{"name":"howxm"}}}`),
		Config:  []byte(`{"target":"crm"}`),
		NoCopy:  true,
	}
	body, headers := f.Body, append([]hostcall.KV(nil), f.Headers...)
	run := func() {
		f.Body, f.Headers = body, append(f.Headers[:0], headers...)
		f.ResetOutcome()
		if rc := f.Call(7); rc != 0 {
			t.Fatalf("call failed: %s", f.FailMsg)
		}
	}
	run()
	if got := string(f.Emitted[0].Body); got != `{"score":3,"name":"howxm"}` {
		t.Fatalf("emitted %s", got)
	}
	if n := testing.AllocsPerRun(200, run); n != 0 {
		t.Fatalf("allocs per call = %v, want 0", n)
	}
}

func TestQueryAllocatesNothing(t *testing.T) {
	body := howxmBody(t)
	q := NewQuery("event_type", "campaign.fields.#.code", "entry.fields.#", "entry.customer.name")
	n := testing.AllocsPerRun(100, func() {
		q.Run(body)
		_ = q.Get(0)
		for j := range q.Len(1) {
			_ = q.At(1, j)
		}
		for j := range q.Len(2) {
			_, _ = q.Key(2, j), q.At(2, j)
		}
		_ = Get(body, "entry.serial_number")
	})
	if n != 0 {
		t.Fatalf("allocs = %v", n)
	}
}
