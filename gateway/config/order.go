package config

import (
	"fmt"
	"strings"
)

// Target.Order values.
const (
	OrderNone = ""     // no order: deliveries go out as workers are free (the default)
	OrderFIFO = "fifo" // per key, one at a time, in ingest order
)

// order checks a target's order and order_key.
func (p *parser) order(t *table, tg *Target) {
	switch tg.Order {
	case OrderNone:
		if t.has("order_key") {
			t.errf("order_key", "applies only with order = %q (deliveries with the same key go one at a time, in order): add it, or remove order_key", OrderFIFO)
		}
	case OrderFIFO:
		if t.has("order_key") && strings.TrimSpace(tg.OrderKey) == "" {
			t.errf("order_key", "is empty: write the JSON path of the key in the body (e.g. order_key = \"entry.customer.uid\"), or remove it to keep the whole target in one order")
		}
	default:
		t.errf("order", "%q is not an order (use %q: deliveries with the same order_key go one at a time, in ingest order; or leave it out for none)", tg.Order, OrderFIFO)
	}
}

// orderCheck finds routes whose deliveries would bypass a fifo target's
// sequences. Both queue backends keep them (the nats one on every gateway
// of the stream), so the backend needs no check.
func (p *parser) orderCheck(c *Config) {
	fifo := map[string]bool{}
	for _, tg := range c.Targets {
		if tg.Order != OrderFIFO {
			continue
		}
		fifo[tg.Name] = true
	}
	for i, r := range c.Routes {
		if r.Mode != ModeSync {
			continue
		}
		for _, tg := range r.Targets {
			if fifo[tg] {
				p.warnings = append(p.warnings, fmt.Sprintf("%s: mode = \"sync\" forwards at once, outside target %q's order = %q: its deliveries may overtake queued ones with the same key; use mode = \"async\" to keep them in order", routeWhere(i, r), tg, OrderFIFO))
			}
		}
	}
}
