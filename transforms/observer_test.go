package transforms

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
)

// recorder is an Observer that keeps every call it is told about.
type recorder struct {
	mu    sync.Mutex
	calls []string // "plugin:kind", kind "" for success
	zero  int      // calls reported with no duration
}

type pluginRecorder struct {
	r    *recorder
	name string
}

func (r *recorder) PluginObserver(plugin string) CallObserver { return pluginRecorder{r, plugin} }

func (p pluginRecorder) Call(d time.Duration, kind string) {
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	p.r.calls = append(p.r.calls, p.name+":"+kind)
	if d <= 0 {
		p.r.zero++
	}
}

// TestObserver: every call is reported once, with its duration and the
// kind of its failure ("" for success), whether the guest failed, broke
// the ABI or trapped; the pool figures say no instance is busy after.
func TestObserver(t *testing.T) {
	rec := &recorder{}
	h := newHostWith(t, Options{Observer: rec})
	load(t, h, PluginSpec{Name: "ok", Wasm: handleModule(i32const(0)), Instances: 2})
	load(t, h, PluginSpec{Name: "failing", Wasm: handleModule(i32const(1)), Instances: 1})
	load(t, h, PluginSpec{Name: "weird", Wasm: handleModule(i32const(7)), Instances: 1})
	load(t, h, PluginSpec{Name: "trap", Wasm: handleModule(cat(opUnreachable, i32const(0))), Instances: 1})
	tests := []struct {
		plugin string
		want   string
	}{
		{"ok", "ok:"},
		{"failing", "failing:" + abi.KindFailed},
		{"weird", "weird:" + abi.KindABI},
		{"trap", "trap:" + abi.KindTrap},
	}
	for _, tt := range tests {
		t.Run(tt.plugin, func(t *testing.T) {
			rec.mu.Lock()
			rec.calls = nil
			rec.mu.Unlock()
			c := chain(t, h, "r", nil, Step{Plugin: tt.plugin})
			c.Run(context.Background(), testEvent(), &delivery.Outcome{})
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if fmt.Sprint(rec.calls) != fmt.Sprint([]string{tt.want}) {
				t.Errorf("observed %q, want [%s]", rec.calls, tt.want)
			}
		})
	}
	if rec.zero != 0 {
		t.Errorf("%d calls reported without a duration", rec.zero)
	}
	// The trapped instance was thrown away and replaced in the
	// background: once it is ready, every plugin has one idle instance.
	replaced(t, h.plugins["trap"], 2)
	for _, st := range h.Stats() {
		if st.Busy != 0 || st.Idle != 1 {
			t.Errorf("%s: busy %d, idle %d; want 0 and 1", st.Name, st.Busy, st.Idle)
		}
	}
}
