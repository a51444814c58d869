package transforms

import (
	"bytes"
	"os"
	"testing"
)

// TestExampleWasm keeps testdata/example.wasm (used by Example) equal to the
// hand-assembled trivial guest.
func TestExampleWasm(t *testing.T) {
	want := handleModule(i32const(0))
	got, err := os.ReadFile("testdata/example.wasm")
	if err != nil || !bytes.Equal(got, want) {
		if os.Getenv("HOOKGATE_UPDATE") != "" {
			if err := os.WriteFile("testdata/example.wasm", want, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("testdata/example.wasm is stale (%v); run with HOOKGATE_UPDATE=1", err)
	}
}

// FuzzQuery: after set_query(name, value) on any raw query, query_get(name)
// reads value back, and other parameters keep their values.
func FuzzQuery(f *testing.F) {
	f.Add("a=1&email=x%40y.z", "email", "a b@c")
	f.Add("&&=&%zz=1&b", "b", "")
	f.Add("", "k", "v&w=x")
	f.Fuzz(func(t *testing.T, raw, name, value string) {
		if name == "" {
			return
		}
		q, _ := querySet(nil, nil, []byte(raw), []byte(name), []byte(value), false)
		got, ok := queryGet(nil, q, []byte(name))
		if !ok || string(got) != value {
			t.Fatalf("raw %q: set %q=%q gave %q, read back %q (%v)", raw, name, value, q, got, ok)
		}
		d, _ := querySet(nil, nil, q, []byte(name), nil, true)
		if _, ok := queryGet(nil, d, []byte(name)); ok {
			t.Fatalf("raw %q: %q still present after delete: %q", raw, name, d)
		}
	})
}
