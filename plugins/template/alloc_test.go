//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own; make test runs the suite both with and without -race, so
// they do run.

package main

import (
	"os"
	"testing"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
)

// A call allocates nothing once the plugin's buffers have grown: headers
// and query parameters rendered from the body, a JSON body with integer
// params of three digits and more (strconv.FormatInt would allocate
// them), and defaults.
func TestRenderAllocatesNothing(t *testing.T) {
	howxm, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, config, body string }{
		{"headers on the event (the load harness's chain3)",
			`{"headers": {"X-Survey": "${campaign.name}", "X-Customer": "${entry.customer.email}"}}`, string(howxm)},
		{"query and headers on the event",
			`{"query": {"survey": "${campaign.id}", "score": "${entry.fields.field_1}"}, "headers": {"X-Serial": "${entry.serial_number}"}}`, string(howxm)},
		{"seed 003: coupon with integer params", coupon, `{"amount": 250, "user": {"id": "u1"}}`},
		{"seed 003: coupon with defaults", coupon, `{"user": {}}`},
		{"emitted delivery with query and headers",
			`{"body": "{\"n\": ${n}, \"who\": \"${who|someone}\"}", "params": {"n": {"type": "integer"}},
			  "query": {"id": "${id}", "n": "${param:n}"}, "headers": {"X-Id": "${id}"}, "target": "survey"}`,
			`{"n": 123456, "id": "abc-42"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := sdktest.Allocs(handle, sdktest.Input{Body: []byte(tc.body), Config: []byte(tc.config)}, 200)
			if err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("allocs per call = %v, want 0", n)
			}
		})
	}
}
