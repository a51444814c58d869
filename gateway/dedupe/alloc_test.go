//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package dedupe

import (
	"os"
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestAllocs is the hot-path promise: building a key and checking a key
// already held allocate nothing. Recording a new key allocates its entry
// and the LRU's list element (and, now and then, map growth): a price
// paid once per distinct event, never by a repeat.
func TestAllocs(t *testing.T) {
	howxm, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	hdr := headers{"webhook-id": []byte("msg_p5jXN8AQM9LWM0D4loKWxJek")}
	byHeader := mustNew(t, Spec{Header: "webhook-id"})
	byJSON := mustNew(t, Spec{JSON: []string{"entry.serial_number", "event_type"}})
	dst := make([]byte, 0, 128)
	eventID := []byte("evt_01hzzzzzzzzzzzzzzzzzzzzzzz")
	key, _ := byHeader.Key(hdr.peek, howxm, dst)
	byHeader.Check(key, eventID)
	checks := []struct {
		name string
		f    func()
	}{
		{"Key by header", func() { byHeader.Key(hdr.peek, howxm, dst) }},
		{"Key by JSON paths", func() { byJSON.Key(hdr.peek, howxm, dst) }},
		{"Check of a held key", func() { byHeader.Check(key, eventID) }},
		{"Begin of a held key", func() { byHeader.Begin(key, eventID) }},
		{"Accept", func() { byHeader.Accept(key, eventID) }},
		{"Forget of another event", func() { byHeader.Forget(key, []byte("evt_other")) }},
		{"Forget (the first call removes, the rest miss)", func() { byHeader.Forget(key, eventID) }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(200, c.f); n != 0 {
				t.Fatalf("%v allocations per call, want 0", n)
			}
		})
	}
	if k, ok := byJSON.Key(hdr.peek, howxm, dst); !ok || string(k) != part("1215")+part("entry_submitted") {
		t.Fatalf("JSON key %q %v", k, ok)
	}

	t.Run("Check of a new key", func(t *testing.T) {
		d := mustNew(t, Spec{Header: "h", MaxEntries: 1000})
		var n int
		keys := make([][]byte, 2000)
		for i := range keys {
			keys[i] = strconv.AppendInt(nil, int64(i), 10)
		}
		avg := testing.AllocsPerRun(1000, func() {
			d.Check(keys[n%len(keys)], eventID)
			n++
		})
		// entry + list element; the map is full-sized after the first
		// thousand keys, so evictions make room without growing it.
		if avg > 2 {
			t.Fatalf("%v allocations per new key, want at most 2", avg)
		}
		t.Logf("%v allocations per new key", avg)
	})
}

// TestFasthttpHeaderAllocs builds a key the way ingest does, with
// fasthttp's header look-up, and checks it allocates nothing.
func TestFasthttpHeaderAllocs(t *testing.T) {
	d := mustNew(t, Spec{Header: "Webhook-Id"})
	var req fasthttp.Request
	req.Header.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	dst := make([]byte, 0, 64)
	key, ok := d.Key(req.Header.PeekBytes, nil, dst)
	if !ok || string(key) != "msg_p5jXN8AQM9LWM0D4loKWxJek" {
		t.Fatalf("Key = %q %v", key, ok)
	}
	if n := testing.AllocsPerRun(200, func() { d.Key(req.Header.PeekBytes, nil, dst) }); n != 0 {
		t.Fatalf("Key with fasthttp headers allocates %v times per call, want 0", n)
	}
}
