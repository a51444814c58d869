package sdk_test

import (
	"os"
	"testing"

	"github.com/hookgate/hookgate/plugins/sdk"
	"github.com/tidwall/gjson"
)

// same walks the value at the scanner's position and want together and
// reports the first difference: the Scanner must see exactly what gjson
// sees.
func same(t testing.TB, sc *sdk.Scanner, want gjson.Result, path string) {
	t.Helper()
	switch {
	case want.IsObject():
		var keys []string
		var vals []gjson.Result
		want.ForEach(func(k, v gjson.Result) bool {
			keys = append(keys, k.Str)
			vals = append(vals, v)
			return true
		})
		n := 0
		ok := sc.Object(func(key string) bool {
			if n >= len(keys) || key != keys[n] {
				t.Fatalf("%s: key %d is %q, gjson has %v", path, n, key, keys)
			}
			same(t, sc, vals[n], path+"."+key)
			n++
			return true
		})
		if !ok || n != len(keys) {
			t.Fatalf("%s: object ok=%v with %d members, gjson has %d", path, ok, n, len(keys))
		}
	case want.IsArray():
		elems := want.Array()
		n := 0
		ok := sc.Array(func(i int) bool {
			if i != n || i >= len(elems) {
				t.Fatalf("%s: element %d, gjson has %d", path, i, len(elems))
			}
			same(t, sc, elems[i], path+"."+string(rune('0'+i%10)))
			n++
			return true
		})
		if !ok || n != len(elems) {
			t.Fatalf("%s: array ok=%v with %d elements, gjson has %d", path, ok, n, len(elems))
		}
	default:
		got := sc.Value()
		if got.Type != want.Type || got.Raw != want.Raw || got.Str != want.Str || got.Num != want.Num {
			t.Fatalf("%s: got %+v, gjson %+v", path, got, want)
		}
	}
}

func TestScannerMatchesGjson(t *testing.T) {
	docs := map[string][]byte{
		"escapes": []byte(`{"a\"b":"x\ny\u00e9\"","n":-1.5e3,"t":true,"f":false,"z":null,"arr":[1,[2,{"k":"v"}],"s\\"],"e":{},"ea":[]}`),
		"spaces":  []byte(" {\n \"a\" : [ 1 , 2 ] ,\t\"b\" : { \"c\" : \"d\" } } "),
	}
	for _, f := range []string{"howxm_entry_submitted.json", "smartsupp_chat_closed.json"} {
		b, err := os.ReadFile("../../testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = b
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			var sc sdk.Scanner
			sc.Reset(doc)
			same(t, &sc, gjson.ParseBytes(doc), "$")
			if sc.Err() {
				t.Fatal("Err() on valid JSON")
			}
		})
	}
}

func TestScannerSkipsAndStops(t *testing.T) {
	doc := []byte(`{"skip":{"deep":[1,{"x":"}]"}]},"first":{"a":1,"b":2,"c":3},"str":"not an object","last":"end"}`)
	var sc sdk.Scanner
	sc.Reset(doc)
	var a, last sdk.Result
	var strIsObject bool
	sc.Object(func(key string) bool {
		switch key {
		case "first":
			sc.Object(func(k string) bool {
				if k == "a" {
					a = sc.Value()
				}
				return false // stop after the first member
			})
		case "str":
			strIsObject = sc.Object(func(string) bool { return true })
		case "last":
			last = sc.Value()
		}
		return true
	})
	if a.Int() != 1 || last.Str != "end" || strIsObject || sc.Err() {
		t.Fatalf("a=%v last=%q strIsObject=%v err=%v", a.Raw, last.Str, strIsObject, sc.Err())
	}
	// A stop at the top level ends the walk.
	sc.Reset(doc)
	n := 0
	sc.Object(func(string) bool { n++; return false })
	if n != 1 {
		t.Fatalf("visited %d members after a stop, want 1", n)
	}
	// A composite value read with Value is its JSON text, usable with Get.
	sc.Reset(doc)
	var first sdk.Result
	sc.Object(func(key string) bool {
		if key == "first" {
			first = sc.Value()
		}
		return true
	})
	if first.Raw != `{"a":1,"b":2,"c":3}` || first.Get("c").Int() != 3 {
		t.Fatalf("first = %q", first.Raw)
	}
}

func TestScannerMalformed(t *testing.T) {
	for _, doc := range []string{``, `{`, `{"a"`, `{"a":`, `{"a":1`, `{"a":"x`, `{"a":[1,2`, `{"a" 1}`, `{1:2}`, `{"a":}`, `[`, `"x`} {
		var sc sdk.Scanner
		sc.Reset([]byte(doc))
		sc.Object(func(string) bool { sc.Value(); return true })
		sc.Reset([]byte(doc))
		sc.Array(func(int) bool { sc.Object(func(string) bool { return true }); return true })
		// The test is that neither loops nor panics.
	}
	var sc sdk.Scanner
	sc.Reset([]byte(`{"a":[1,2`))
	sc.Object(func(string) bool { return true })
	if !sc.Err() {
		t.Fatal("truncated document: Err() = false")
	}
}

func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":[1,{"b":"c\"d"}],"e":null}`, `[1,"2",[3]]`, `{"a":`, `{"\u00e9":"\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var sc sdk.Scanner
		sc.Reset(doc)
		if gjson.ValidBytes(doc) {
			same(t, &sc, gjson.ParseBytes(doc), "$")
			return
		}
		var walk func()
		walk = func() {
			if !sc.Object(func(string) bool { walk(); return true }) && !sc.Array(func(int) bool { walk(); return true }) {
				sc.Value()
			}
		}
		walk()
	})
}

func BenchmarkScanHowxm(b *testing.B) {
	doc, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		b.Fatal(err)
	}
	var sc sdk.Scanner
	b.ReportAllocs()
	for b.Loop() {
		sc.Reset(doc)
		var et sdk.Result
		sc.Object(func(key string) bool {
			if key == "event_type" {
				et = sc.Value()
			}
			return true
		})
		if et.Str != "entry_submitted" {
			b.Fatal(et.Raw)
		}
	}
}
