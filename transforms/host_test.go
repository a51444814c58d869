package transforms

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi/abitest"
	"github.com/hookgate/hookgate/plugins/plugintest"
)

func newTestHost(t testing.TB) *Host {
	t.Helper()
	return newHostWith(t, Options{})
}

// newHostWith is newTestHost with opts (the test cache directory unless
// opts names one).
func newHostWith(t testing.TB, opts Options) *Host {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = testCacheDir()
	}
	h, err := NewHost(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

// testCacheDir is a compilation cache shared by every test run, so the Go
// guests compile once per wazero version, not once per test.
func testCacheDir() string { return filepath.Join(os.TempDir(), "hookgate-transforms-test-cache") }

// guestWasm builds transforms/testdata/guests/<name> and returns its bytes.
func guestWasm(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(plugintest.Build(t, "transforms/testdata/guests/"+name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func load(t testing.TB, h *Host, spec PluginSpec) {
	t.Helper()
	if err := h.Load(context.Background(), spec); err != nil {
		t.Fatalf("Load(%s): %v", spec.Name, err)
	}
}

func chain(t testing.TB, h *Host, route string, targets []string, steps ...Step) *Chain {
	t.Helper()
	c, err := h.Chain(route, steps, targets)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testEvent is the conformance kit's event, so the host's own tests and
// the kit run on the same input.
func testEvent() *delivery.Event { return abitest.Event() }

func TestTrivialGuests(t *testing.T) {
	h := newTestHost(t)
	load(t, h, PluginSpec{Name: "tiny", Wasm: handleModule(i32const(0)), Instances: 2, Timeout: 10 * time.Second})
	load(t, h, PluginSpec{Name: "go-trivial", Wasm: guestWasm(t, "trivial"), Instances: 2, Timeout: 10 * time.Second})
	for _, name := range []string{"tiny", "go-trivial"} {
		t.Run(name, func(t *testing.T) {
			c := chain(t, h, "r", []string{"crm"}, Step{Plugin: name})
			ev := testEvent()
			var out delivery.Outcome
			for range 3 {
				out.Reset()
				if err := c.Run(context.Background(), ev, &out); err != nil {
					t.Fatal(err)
				}
				if out.Dropped || out.Emitted || len(out.Deliveries) != 0 || string(ev.Body) != `{"score":3}` {
					t.Fatalf("outcome %+v, body %q; want untouched", out, ev.Body)
				}
			}
		})
	}
}

func TestChainUnknownPlugin(t *testing.T) {
	h := newTestHost(t)
	_, err := h.Chain("r", []Step{{Plugin: "nope"}}, nil)
	if !errors.Is(err, ErrUnknownPlugin) || !strings.Contains(err.Error(), `plugin "nope"`) {
		t.Fatalf("err = %v", err)
	}
}

// readRoot reads a file by its path from the module root (the seed
// fixtures live in the top-level testdata/).
func readRoot(tb testing.TB, rel string) []byte {
	tb.Helper()
	root, err := plugintest.ModuleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
