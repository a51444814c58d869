package transforms_test

import (
	"context"
	"fmt"
	"os"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/transforms"
)

// The gateway's side of the host: load each [[plugin]] once, build each
// route's chain once, then Run per event with reused Event and Outcome.
func Example() {
	ctx := context.Background()
	h, err := transforms.NewHost(ctx, transforms.Options{CacheDir: os.TempDir() + "/hookgate-example-cache"})
	if err != nil {
		panic(err)
	}
	defer h.Close(ctx)

	wasm, err := os.ReadFile("testdata/example.wasm") // hookgate_handle returns 0
	if err != nil {
		panic(err)
	}
	if err := h.Load(ctx, transforms.PluginSpec{Name: "noop", Wasm: wasm}); err != nil {
		fmt.Println(err) // e.g. plugin "noop": missing export "hookgate_handle"
		return
	}
	chain, err := h.Chain("howxm", []transforms.Step{{Plugin: "noop", Config: []byte(`{}`)}}, []string{"crm"})
	if err != nil {
		panic(err)
	}

	ev := &delivery.Event{ID: []byte("evt_1"), Method: []byte("POST"), Body: []byte(`{"score":3}`)}
	var out delivery.Outcome
	if err := chain.Run(ctx, ev, &out); err != nil {
		fmt.Println(err) // a *transforms.PluginError, e.g. plugin "noop": timed out after 100ms
		return
	}
	// Nobody emitted or dropped: the gateway sends ev to the route's targets.
	fmt.Println(out.Dropped, out.Emitted, string(ev.Body))
	// Output: false false {"score":3}
}
