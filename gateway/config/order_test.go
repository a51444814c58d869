package config

import (
	"strings"
	"testing"
)

// orderConfig is a config with one target whose table ends with extra,
// and an async route to it; queue and mode change the rest.
func orderConfig(extra, queue, mode string) []byte {
	return []byte(queue + `
[[target]]
name = "crm"
url = "http://127.0.0.1:9000/crm"
` + extra + `

[[route]]
name = "r"
path = "/hooks/r"
mode = "` + mode + `"
targets = ["crm"]
`)
}

// TestOrder: order and order_key are read with their defaults, and each
// mistake is one problem saying what to write.
func TestOrder(t *testing.T) {
	for _, tt := range []struct {
		extra       string
		order, path string
	}{
		{"", OrderNone, ""},
		{`order = "fifo"`, OrderFIFO, ""},
		{"order = \"fifo\"\norder_key = \"entry.customer.uid\"", OrderFIFO, "entry.customer.uid"},
	} {
		c, err := Parse(orderConfig(tt.extra, "", "async"), "c.toml", mapEnv(nil))
		if err != nil {
			t.Fatalf("%q: %v", tt.extra, err)
		}
		if tg := c.Target("crm"); tg.Order != tt.order || tg.OrderKey != tt.path {
			t.Errorf("%q: order %q, order_key %q; want %q, %q", tt.extra, tg.Order, tg.OrderKey, tt.order, tt.path)
		}
		if len(c.Warnings) != 0 {
			t.Errorf("%q: warnings %q", tt.extra, c.Warnings)
		}
	}

	for _, tt := range []struct {
		extra, queue, want string
	}{
		{`order = "lifo"`, "", `target "crm": order: "lifo" is not an order (use "fifo": deliveries with the same order_key go one at a time, in ingest order; or leave it out for none)`},
		{`order = "FIFO"`, "", `target "crm": order: "FIFO" is not an order`},
		{`order_key = "entry.customer.uid"`, "", `target "crm": order_key: applies only with order = "fifo" (deliveries with the same key go one at a time, in order): add it, or remove order_key`},
		{"order = \"fifo\"\norder_key = \"\"", "", `target "crm": order_key: is empty: write the JSON path of the key in the body (e.g. order_key = "entry.customer.uid"), or remove it to keep the whole target in one order`},
	} {
		_, err := Parse(orderConfig(tt.extra, tt.queue, "async"), "c.toml", mapEnv(nil))
		if err == nil {
			t.Errorf("%q: accepted, want %q", tt.extra, tt.want)
			continue
		}
		ps := err.(*Error).Problems
		if len(ps) != 1 || !strings.HasPrefix(ps[0], tt.want) {
			t.Errorf("%q:\n got %q\nwant one problem: %q", tt.extra, ps, tt.want)
		}
	}

	// Both queue backends keep sequences: fifo on nats is accepted, quietly
	// (gateway/queue/natsq, fifo.go).
	c, err := Parse(orderConfig("order = \"fifo\"\norder_key = \"entry.customer.uid\"", "[queue]\nbackend = \"nats\"\n", "async"), "c.toml", mapEnv(nil))
	if err != nil {
		t.Fatalf("fifo with backend nats: %v", err)
	}
	if tg := c.Target("crm"); tg.Order != OrderFIFO || tg.OrderKey != "entry.customer.uid" || len(c.Warnings) != 0 {
		t.Errorf("fifo with backend nats: order %q, order_key %q, warnings %q", tg.Order, tg.OrderKey, c.Warnings)
	}

	// A sync route forwards at once: it cannot keep a fifo target's order,
	// and says so.
	c, err = Parse(orderConfig(`order = "fifo"`, "", "sync"), "c.toml", mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := `route "r": mode = "sync" forwards at once, outside target "crm"'s order = "fifo": its deliveries may overtake queued ones with the same key; use mode = "async" to keep them in order`
	if len(c.Warnings) != 1 || c.Warnings[0] != want {
		t.Errorf("warnings %q, want %q", c.Warnings, want)
	}
}
