package sdk

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/plugins/sdk/internal/hostcall"
	"github.com/hookgate/hookgate/plugins/sdk/jsonget"
	"github.com/tidwall/gjson"
)

// Get, GetMany and Query go through json_get (here the fake host, which
// shares the real host's evaluator) and must give gjson's answers exactly,
// whether the host answers or the guest falls back.

var queryDocs = []string{
	`{"a":1,"b":{"c":"x","d":[1,2,{"e":true}]},"f":null,"g":false,"s":"tab\tq\"","k\u0065y":7}`,
	`{"a":{"x":1},"a":{"y":2},"arr":[{"n":1},{"m":2},{"n":3}]}`,
	`[{"name":"a"},{"name":"b","tags":["x","y"]}]`,
	`{"a":tru,"b":2}`, // not JSON: the guest answers
	`{"a":1}`,
	`   `,
	``,
}

var queryPaths = []string{"a", "b.c", "b.d.2.e", "f", "g", "s", "key", "a.y", "arr.1.m", "0.name", "1.tags.1",
	"b.d.#", "arr.#.n", "#.name", "a.*", "@this", "b|c", "missing", "b.d"}

func TestGetMatchesGjson(t *testing.T) {
	for _, doc := range queryDocs {
		for _, p := range queryPaths {
			got, want := Get([]byte(doc), p), gjson.Get(doc, p)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Get(%s, %q) = %#v, gjson %#v", doc, p, got, want)
			}
		}
		got := GetMany([]byte(doc), queryPaths...)
		for i, p := range queryPaths {
			if want := gjson.Get(doc, p); !reflect.DeepEqual(got[i], want) {
				t.Errorf("GetMany(%s)[%q] = %#v, gjson %#v", doc, p, got[i], want)
			}
		}
	}
}

// eachRef is what a Query's '#' path means, in gjson terms.
func eachRef(doc []byte, path string) (Result, []Result, []string) {
	json := str(doc)
	h := eachAt(path)
	prefix, suffix := strings.TrimSuffix(path[:h], "."), strings.TrimPrefix(path[h+1:], ".")
	c := gjson.Parse(json)
	if prefix != "" {
		c = gjson.Get(json, prefix)
	}
	var elems []Result
	var keys []string
	if c.IsArray() || c.IsObject() {
		c.ForEach(func(k, v Result) bool {
			if suffix != "" {
				v = v.Get(suffix)
			}
			v.Index = offsetIn(doc, v.Raw)
			elems = append(elems, v)
			keys = append(keys, k.Str)
			return true
		})
	}
	return c, elems, keys
}

func TestQuery(t *testing.T) {
	paths := []string{"a", "arr.#.n", "arr.#.m", "arr.#", "#.name", "#.tags.#", "b.d.#", "a.*", "f", `k\.y`,
		"obj.#", "obj.#.v"}
	q := NewQuery(paths...)
	docs := append(queryDocs, `{"obj":{"p\u0071":{"v":1},"r":{"w":2},"r":3},"k.y":"dot"}`)
	for _, doc := range docs {
		json := []byte(doc)
		q.Run(json)
		for i, p := range paths {
			if eachAt(p) < 0 {
				want, got := gjson.Get(str(json), p), q.Get(i)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: Get(%q) = %#v, want %#v", doc, p, got, want)
				}
				if q.Raw(i) != want.Raw || q.Str(i) != want.Str {
					t.Errorf("%s: Raw, Str(%q) = %q, %q, want %q, %q", doc, p, q.Raw(i), q.Str(i), want.Raw, want.Str)
				}
				if q.Len(i) != 0 {
					t.Errorf("%s: Len(%q) = %d", doc, p, q.Len(i))
				}
				continue
			}
			c, elems, keys := eachRef(json, p)
			if got := q.Get(i); got.Raw != c.Raw || got.Type != c.Type {
				t.Errorf("%s: Get(%q) = %q, want the container %q", doc, p, got.Raw, c.Raw)
			}
			if q.Len(i) != len(elems) {
				t.Errorf("%s: Len(%q) = %d, want %d", doc, p, q.Len(i), len(elems))
				continue
			}
			for j := range elems {
				got := q.At(i, j)
				if !reflect.DeepEqual(got, elems[j]) || q.Key(i, j) != keys[j] {
					t.Errorf("%s: At(%q, %d) = %#v %q, want %#v %q", doc, p, j, got, q.Key(i, j), elems[j], keys[j])
				}
				if q.RawAt(i, j) != elems[j].Raw || q.StrAt(i, j) != elems[j].Str {
					t.Errorf("%s: RawAt, StrAt(%q, %d) = %q, %q, want %q, %q", doc, p, j, q.RawAt(i, j), q.StrAt(i, j), elems[j].Raw, elems[j].Str)
				}
			}
			if r := q.At(i, len(elems)); r.Exists() || q.Key(i, -1) != "" || q.RawAt(i, -1) != "" || q.StrAt(i, len(elems)) != "" {
				t.Errorf("%s: %q out of range answers", doc, p)
			}
		}
	}
}

// TestQueryColumns: AppendRaws, AppendStrs and AppendKeys read a '#'
// path's column in one call, value for value what RawAt, StrAt and Key
// give (and gjson means), whether the host answered or the guest did,
// appended after what dst held.
func TestQueryColumns(t *testing.T) {
	// The first list the host answers (but for "a.*.#"); the second it
	// refuses whole (its root '#' holds the others), so the guest answers.
	testQueryColumns(t, true, "arr.#.n", "arr.#", "b.d.#", "obj.#", "obj.#.v", "esc.#", "a", "a.*.#")
	testQueryColumns(t, false, "arr.#.n", "#.name", "#.tags.#", "obj.#", "esc.#")
}

func testQueryColumns(t *testing.T, host bool, paths ...string) {
	q := NewQuery(paths...)
	answered := 0
	docs := append(queryDocs,
		`{"obj":{"p\u0071":{"v":1},"r":{"w":2},"r":3},"k.y":"dot"}`,
		`{"esc":{"k\"1":"a\u0062c","k2":"","k3":"\"","k4":7,"k5":null,"k6":"plain"}}`,
		`{"esc":["x","y\n",3,{"z":1},[],"",true]}`)
	for _, doc := range docs {
		json := []byte(doc)
		q.Run(json)
		if q.n > 0 {
			answered++
		}
		for i, p := range paths {
			var c Result
			var elems []Result
			var keys []string
			if eachAt(p) >= 0 { // else: no elements
				c, elems, keys = eachRef(json, p)
			}
			var raws, strs []string
			for j := range elems {
				raws, strs = append(raws, elems[j].Raw), append(strs, elems[j].Str)
			}
			check := func(what string, got, want []string) {
				t.Helper()
				if len(got) < 1 || got[0] != "before" || !reflect.DeepEqual(got[1:], want) && (len(got) > 1 || len(want) > 0) {
					t.Errorf("%s: %s(%q) = %q, want \"before\" then %q (container %q)", doc, what, p, got, want, c.Raw)
				}
			}
			check("AppendRaws", q.AppendRaws([]string{"before"}, i), raws)
			check("AppendStrs", q.AppendStrs([]string{"before"}, i), strs)
			check("AppendKeys", q.AppendKeys([]string{"before"}, i), keys)
			for j := range q.Len(i) {
				if raws[j] != q.RawAt(i, j) || strs[j] != q.StrAt(i, j) || keys[j] != q.Key(i, j) {
					t.Errorf("%s: %q element %d: columns %q %q %q, accessors %q %q %q", doc, p, j, raws[j], strs[j], keys[j], q.RawAt(i, j), q.StrAt(i, j), q.Key(i, j))
				}
			}
		}
	}
	if host != (answered > 0) {
		t.Errorf("%q: the host answered %d documents", paths, answered)
	}
}

// TestFakeRecords: the fake host gives the records the conformance kit
// pins for the real one (plugins/abi/abitest, "json_get").
func TestFakeRecords(t *testing.T) {
	doc := `{"score":3,"tags":["a","b"],"who":{"na\u006de":"A\"B"},"n":-1.5e2}`
	var list []byte
	for _, p := range []string{"score", "tags.#", "nope", "who.name", "n", "tags.1", "a*"} {
		list = appendPath(list, p)
	}
	out := make([]hostcall.Record, 9)
	if n := hostcall.JSONGet([]byte(doc), list, out[:8]); n != 360 {
		t.Fatalf("too small: %d, want 360", n)
	}
	if n := hostcall.JSONGet([]byte(doc), list, out); n != 360 {
		t.Fatalf("n = %d", n)
	}
	var b strings.Builder
	for i, r := range out {
		fmt.Fprintf(&b, "%d: type=%d flags=%d num=%v start=%d len=%d a=%d b=%d stride=%d\n", i, r.Type, r.Flags, r.Num, r.Start, r.Len, r.KeyStart, r.KeyLen, r.Stride)
	}
	want := "0: type=2 flags=0 num=3 start=9 len=1 a=0 b=0 stride=0\n" +
		"1: type=5 flags=0 num=0 start=18 len=9 a=7 b=2 stride=1\n" +
		"2: type=-1 flags=0 num=0 start=0 len=0 a=0 b=0 stride=0\n" +
		"3: type=3 flags=1 num=0 start=47 len=6 a=0 b=0 stride=0\n" +
		"4: type=2 flags=0 num=-150 start=59 len=6 a=0 b=0 stride=0\n" +
		"5: type=3 flags=0 num=0 start=23 len=3 a=0 b=0 stride=0\n" +
		"6: type=-2 flags=0 num=0 start=0 len=0 a=0 b=0 stride=0\n" +
		"7: type=3 flags=0 num=0 start=19 len=3 a=-1 b=-1 stride=0\n" +
		"8: type=3 flags=0 num=0 start=23 len=3 a=-1 b=-1 stride=0\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	if n := hostcall.JSONGet([]byte(`{"a":tru}`), list, out); n != abi.ErrnoBadArgument {
		t.Fatalf("invalid JSON: %d", n)
	}
}

func howxmBody(t testing.TB) []byte {
	b, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func BenchmarkQuery(b *testing.B) {
	body := howxmBody(b)
	q := NewQuery("event_type", "campaign.id", "campaign.name", "campaign.fields.#.label", "campaign.fields.#.code",
		"campaign.fields.#.type", "entry.fields.#", "entry.serial_number", "entry.customer.uid")
	b.ReportAllocs()
	for b.Loop() {
		q.Run(body)
	}
}

// TestRecordLayout: the guest reads json_get's records in place, so
// hostcall.Record must have the ABI's layout.
func TestRecordLayout(t *testing.T) {
	var r hostcall.Record
	got := []uintptr{unsafe.Sizeof(r), unsafe.Offsetof(r.Type), unsafe.Offsetof(r.Flags), unsafe.Offsetof(r.Num),
		unsafe.Offsetof(r.Start), unsafe.Offsetof(r.Len), unsafe.Offsetof(r.KeyStart), unsafe.Offsetof(r.KeyLen), unsafe.Offsetof(r.Stride)}
	want := []uintptr{jsonget.RecordSize, jsonget.OffType, jsonget.OffFlags, jsonget.OffNum,
		jsonget.OffStart, jsonget.OffLen, jsonget.OffKeyStart, jsonget.OffKeyLen, jsonget.OffStride}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("hostcall.Record layout %v, want %v", got, want)
	}
}
