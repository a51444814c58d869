// Package assemblyscript holds a hookgate plugin written in AssemblyScript
// against ABI v1 by hand (assembly/index.ts); this test runs it in the real
// host, which is what shows the ABI does not depend on Go.
package assemblyscript

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/plugins/plugintest"
	"github.com/hookgate/hookgate/transforms"
)

func newHost(t *testing.T, spec transforms.PluginSpec) *transforms.Host {
	t.Helper()
	h, err := transforms.NewHost(context.Background(), transforms.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	spec.Name = "as"
	spec.Wasm = plugintest.AssemblyScript(t, "plugins/assemblyscript")
	if err := h.Load(context.Background(), spec); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return h
}

func event(body string) *delivery.Event {
	return &delivery.Event{
		ID:         []byte("evt_01ASTEST"),
		Route:      "r",
		ReceivedAt: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC).UnixNano(),
		Method:     []byte("POST"),
		Path:       []byte("/hooks/as"),
		Headers:    []delivery.KV{{Key: []byte("Content-Type"), Value: []byte("application/json")}},
		Body:       []byte(body),
	}
}

func header(ev *delivery.Event, name string) string {
	v, ok := ev.Header([]byte(name))
	if !ok {
		return "<absent>"
	}
	return string(v)
}

// run runs one event through a one-step chain with config.
func run(t *testing.T, h *transforms.Host, config, body string) (*delivery.Event, *delivery.Outcome, error) {
	t.Helper()
	c, err := h.Chain("r", []transforms.Step{{Plugin: "as", Config: []byte(config)}}, []string{"crm"})
	if err != nil {
		t.Fatal(err)
	}
	ev := event(body)
	out := &delivery.Outcome{}
	return ev, out, c.Run(context.Background(), ev, out)
}

func TestPlugin(t *testing.T) {
	h := newHost(t, transforms.PluginSpec{Instances: 1, Timeout: 5 * time.Second})
	big := strings.Repeat(`{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},`, 2000) // 80 KB: past the 4 KiB first buffer
	tests := []struct {
		name    string
		config  string
		body    string
		dropped string // the drop reason; "" when kept
		headers map[string]string
		kind    string // a failed call's kind
		errText string // and a substring of its error
	}{
		{name: "kept with the default header", config: `{"contains":"entry_submitted"}`,
			body:    `{"event_type":"entry_submitted","score":3}`,
			headers: map[string]string{"X-Matched": "true", "X-Match-Count": "1", "Content-Type": "application/json"}},
		{name: "kept again: the counter goes on", config: `{"contains":"entry_submitted"}`,
			body:    `{"event_type":"entry_submitted"}`,
			headers: map[string]string{"X-Matched": "true", "X-Match-Count": "2"}},
		{name: "configured header and value, spaced JSON", config: "{ \"value\" : \"yes\",\n \"nested\": {\"contains\": \"decoy\"}, \"header\":\"X-Chat\", \"contains\" : \"closed\" }",
			body:    `{"status":"closed"}`,
			headers: map[string]string{"X-Chat": "yes", "X-Match-Count": "1", "X-Matched": "<absent>"}},
		{name: "dropped", config: `{"contains":"entry_submitted"}`,
			body:    `{"event_type":"survey_created"}`,
			dropped: `assemblyscript: no "entry_submitted" in the body`},
		{name: "empty body is dropped", config: `{"contains":"x"}`, body: ``,
			dropped: `assemblyscript: no "x" in the body`},
		{name: "large body", config: `{"contains":"needle-at-the-end"}`,
			body:    "[" + big + `"needle-at-the-end"]`,
			headers: map[string]string{"X-Matched": "true", "X-Match-Count": "1"}},
		{name: "missing contains fails", config: `{"header":"X-A"}`, body: `{}`,
			kind: abi.KindFailed, errText: `failed: assemblyscript: config: "contains" is required`},
		{name: "contains not a string fails", config: `{"contains":7}`, body: `{}`,
			kind: abi.KindFailed, errText: `failed: assemblyscript: config: "contains" must be a string without escapes`},
		{name: "escapes are refused", config: `{"contains":"a\"b"}`, body: `{}`,
			kind: abi.KindFailed, errText: `"contains" must be a string without escapes`},
		{name: "bad header name fails", config: `{"contains":"a","header":"Bad Name"}`, body: `{"a":1}`,
			kind: abi.KindFailed, errText: `failed: assemblyscript: set_header refused the configured header`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, out, err := run(t, h, tt.config, tt.body)
			if tt.kind != "" {
				var pe *transforms.PluginError
				if !errors.As(err, &pe) || pe.Kind != tt.kind || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v; want a %s error containing %q", err, tt.kind, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.Dropped != (tt.dropped != "") || string(out.DropReason) != tt.dropped {
				t.Fatalf("dropped %v %q; want %q", out.Dropped, out.DropReason, tt.dropped)
			}
			if out.Emitted || len(out.Deliveries) != 0 || out.Response.Set {
				t.Fatalf("outcome %+v: the plugin neither emits nor responds", out)
			}
			if string(ev.Body) != tt.body {
				t.Fatalf("body changed to %.80q", ev.Body)
			}
			for name, want := range tt.headers {
				if got := header(ev, name); got != want {
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestNoLeakPerEvent: the stub runtime never frees, so the plugin must not
// allocate per event. Thousands of events with a 64 KiB body run in one
// instance under the smallest max_memory the host accepts.
func TestNoLeakPerEvent(t *testing.T) {
	h := newHost(t, transforms.PluginSpec{Instances: 1, MaxMemory: transforms.MinMaxMemory, Timeout: 5 * time.Second})
	body := strings.Repeat("x", 64<<10-6) + `"hit"`
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		ev, out, err := run(t, h, `{"contains":"hit"}`, body)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if out.Dropped || header(ev, "X-Match-Count") != fmt.Sprint(i+1) {
			t.Fatalf("event %d: dropped %v, count %s", i, out.Dropped, header(ev, "X-Match-Count"))
		}
	}
	if st := h.Stats()[0]; st.Created != 1 || st.Calls != int64(n) || len(st.Failures) != 0 {
		t.Fatalf("stats %+v; want one instance serving every call", st)
	}
}

// TestStartSection: AssemblyScript initialises its globals in a start
// function, which runs inside instantiation; the plugin's module must have
// one (so the host's handling of it is exercised), and each new instance
// runs it: two instances serving concurrently give the same answers.
func TestStartSection(t *testing.T) {
	wasm := plugintest.AssemblyScript(t, "plugins/assemblyscript")
	if !hasSection(t, wasm, 8) {
		t.Fatal("the AssemblyScript module has no start section")
	}
	h := newHost(t, transforms.PluginSpec{Instances: 2, Timeout: 5 * time.Second})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			for range 50 {
				_, out, err := run(t, h, `{"contains":"a"}`, `{"b":1}`)
				if err == nil && string(out.DropReason) != `assemblyscript: no "a" in the body` {
					err = fmt.Errorf("drop reason %q", out.DropReason)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// hasSection reports whether the module has a section with id.
func hasSection(t *testing.T, wasm []byte, id byte) bool {
	t.Helper()
	for i := 8; i < len(wasm); {
		sid := wasm[i]
		i++
		var size, shift uint32
		for {
			if i >= len(wasm) {
				t.Fatal("truncated module")
			}
			b := wasm[i]
			i++
			size |= uint32(b&0x7f) << shift
			shift += 7
			if b&0x80 == 0 {
				break
			}
		}
		if sid == id {
			return true
		}
		i += int(size)
	}
	return false
}
