package main

import (
	"testing"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
	"github.com/hookgate/hookgate/plugins/sdk/sdktest/wasmtest"
)

// TestWasm runs cases of the fake host in the real one: same outcomes.
func TestWasm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin to wasm")
	}
	for _, tt := range []struct{ name, config, body string }{
		{"coupon", coupon, `{"amount": 250, "user": {"id": "u1"}}`},
		{"coupon defaults", coupon, `{"user": {}}`},
		{"bad integer", coupon, `{"amount": "abc"}`},
		{"query and method", `{"target": "coupons", "method": "GET", "query": {"u": "${user.id|x}", "c": "c-1"}, "headers": {"X-U": "${user.id}"}}`, `{"user": {"id": "u 1"}}`},
		{"event changed", `{"body": "{\"ref\": \"${id}\"}", "query": {"ref": "${id}"}, "headers": {"X-Ref": "r-${id}"}, "method": "PUT"}`, `{"id": 7}`},
		{"undefined param", `{"body": "{\"a\": ${param:nope}}"}`, `{}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wasmtest.Compare(t, "plugins/template", handle, sdktest.Input{Body: []byte(tt.body), Config: []byte(tt.config), Targets: []string{"coupons"}})
		})
	}
}

func BenchmarkWasmCoupon(b *testing.B) {
	wasmtest.Benchmark(b, "plugins/template", sdktest.Input{Body: []byte(`{"amount": 250, "user": {"id": "u1"}}`), Config: []byte(coupon), Targets: []string{"coupons"}})
}
