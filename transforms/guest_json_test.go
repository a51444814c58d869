package transforms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
)

// TestJSONGetBadArguments: whatever the guest passes, json_get answers
// with an errno or fails the call as an ABI error naming it; the host
// never panics (a panic would surface as a trap). The guest is
// hand-assembled: json_get(args...), result dropped, return 0.
func TestJSONGetBadArguments(t *testing.T) {
	h := newTestHost(t)
	const page = 64 << 10
	type args [6]int32
	calls := []struct {
		a   args
		bad bool // fails the call: outside memory
	}{
		{args{0, 0, 0, 0, 0, 0}, false},                    // nothing at all: 0 bytes of records
		{args{0, page, 0, 8, 1024, 400}, false},            // zeros: paths of length 0, a document of NULs
		{args{0, 16, 0, 4, 0, 40}, false},                  // the output overlaps the document and the paths
		{args{page - 4, 8, 0, 0, 0, 0}, true},              // the document runs past memory
		{args{0, -1, 0, 0, 0, 0}, true},                    // length 0xFFFFFFFF
		{args{0, 4, page, 4, 0, 0}, true},                  // the path list starts past memory
		{args{0, 4, 0, -8, 0, 0}, true},                    // and is 4 GiB long
		{args{0, 4, 0, 4, page - 10, 20}, true},            // the output runs past memory
		{args{0, 4, 0, 4, -100, 40}, true},                 // and starts near 4 GiB
		{args{-1, -1, -1, -1, -1, -1}, true},               // everything at the top
		{args{100, 1, 200, 0x7fffffff, 300, 0x7fff}, true}, // a huge path list length
	}
	for i, tc := range calls {
		a := tc.a
		body := []byte{}
		for _, v := range a {
			body = append(body, i32const(v)...)
		}
		body = cat(body, call(0), opDrop, i32const(0))
		wasm := handleModule(body, wasmImport{module: abi.HostModule, name: abi.FuncJSONGet,
			params: []byte{tI32, tI32, tI32, tI32, tI32, tI32}, results: []byte{tI32}})
		name := fmt.Sprintf("j%d", i)
		load(t, h, PluginSpec{Name: name, Wasm: wasm, Instances: 1, Timeout: 10 * time.Second})
		c := chain(t, h, "r", nil, Step{Plugin: name})
		var out delivery.Outcome
		err := c.Run(context.Background(), testEvent(), &out)
		var pe *PluginError
		switch {
		case err == nil && !tc.bad:
		case tc.bad && errors.As(err, &pe) && pe.Kind == abi.KindABI && strings.Contains(err.Error(), "json_get: pointer or length outside"):
		default:
			t.Errorf("json_get%v: %v", a, err)
		}
	}
}
