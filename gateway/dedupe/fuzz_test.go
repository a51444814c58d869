package dedupe

import (
	"bytes"
	"testing"
)

// FuzzKey feeds arbitrary bodies (ingest checks JSON only on routes with
// json = true) through the JSON-path key: no panic, the same body always
// gives the same key, and a key once checked is a duplicate.
// Seed corpus: testdata/fuzz/FuzzKey/.
func FuzzKey(f *testing.F) {
	f.Add([]byte(`{"entry":{"serial_number":1215},"crk":"c-1"}`))
	f.Add([]byte(`{"crk":"\u0000\ud800"}`))
	f.Add([]byte(`{"entry":[1,2`))
	f.Add([]byte(``))
	d, err := New(Spec{JSON: []string{"entry.serial_number", "crk"}, MaxEntries: 1000})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		k1, ok1 := d.Key(headers{}.peek, body, nil)
		k2, ok2 := d.Key(headers{}.peek, body, make([]byte, 0, 8))
		if ok1 != ok2 || !bytes.Equal(k1, k2) {
			t.Fatalf("one body, two keys: %q %v, %q %v", k1, ok1, k2, ok2)
		}
		if !ok1 {
			return
		}
		d.Check(k1, []byte("evt_1"))
		if _, dup := d.Check(k1, []byte("evt_2")); !dup {
			t.Fatalf("key %q checked twice is not a duplicate", k1)
		}
	})
}
