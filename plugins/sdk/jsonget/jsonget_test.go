package jsonget

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// Pack builds a path list.
func pack(paths ...string) []byte {
	var b []byte
	for _, p := range paths {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

type rec struct {
	typ, flags           int32
	num                  float64
	start, length        int32
	keyStart, keyLen, st int32
}

func decode(out []byte, i int) rec {
	o := out[i*RecordSize:]
	u := func(off int) int32 { return int32(binary.LittleEndian.Uint32(o[off:])) }
	return rec{u(OffType), u(OffFlags), math.Float64frombits(binary.LittleEndian.Uint64(o[OffNum:])),
		u(OffStart), u(OffLen), u(OffKeyStart), u(OffKeyLen), u(OffStride)}
}

const errBad = -5

// eval runs Eval; n is the records' size, errBad when Eval did not answer.
func eval(t testing.TB, s *Scratch, json string, paths ...string) ([]byte, int) {
	out, ok := s.Eval([]byte(json), pack(paths...))
	if !ok {
		return nil, errBad
	}
	return out, len(out)
}

// same reports how a record differs from gjson's answer r ("" when not).
func same(json string, got rec, r gjson.Result) string {
	want := int32(TypeAbsent)
	if r.Exists() {
		want = int32(r.Type)
	}
	if got.typ != want {
		return fmt.Sprintf("type %d, gjson %d (%q)", got.typ, want, r.Raw)
	}
	if want == TypeAbsent {
		return ""
	}
	raw := json[got.start : got.start+got.length]
	if raw != r.Raw || int(got.start) != r.Index {
		return fmt.Sprintf("raw %q at %d, gjson %q at %d", raw, got.start, r.Raw, r.Index)
	}
	if r.Type == gjson.Number && got.num != r.Num && !(math.IsNaN(got.num) && math.IsNaN(r.Num)) {
		return fmt.Sprintf("num %v, gjson %v", got.num, r.Num)
	}
	if esc := got.flags&FlagEscaped != 0; r.Type == gjson.String && esc != strings.Contains(raw, `\`) {
		return fmt.Sprintf("escaped flag %v for %q", esc, raw)
	}
	return ""
}

var docs = []string{
	`{"a":1,"b":{"c":"x","d":[1,2,{"e":true}]},"f":null,"g":false}`,
	`{"a":{"x":1},"a":{"y":2}}`,
	`{"a":1,"a":2}`,
	`{"a\u0062":1,"q\"k":2,"\u00e9":3}`,
	`{"a.b":1,"a":{"b":2}}`,
	`[1,2,3]`,
	`{"1":5,"arr":[[0,1],{"1":"one"}]}`,
	` {"a" : [ ] , "b" : { } , "c" : "" } `,
	`{"n":-0.5e+3,"m":0,"big":1e400,"s":"tab\tnew\nline"}`,
	`{"fields":[{"label":"L1","code":"c1","type":"T"},{"code":"c2"},3,{"label":"L3","code":"c1"}],"entry":{"c1":"v1","c2":null}}`,
	`"just a string"`,
	`17`,
	`{"a":[1,2}`,
	`{"a":tru}`,
	`{"a" 1,"b":2}`,
	`{"a":1 "b":2}`,
	`{"a":01}`,
	`{"a":"x\"y","b":"\\"}`,
	`{"a":{"b":1`,
	`{"a":1}x`,
	`{"k":{"k":{"k":{"k":"deep"}}},"z":[{"k":1},{"k":2}]}`,
}

var paths = []string{
	"a", "b", "b.c", "b.d", "b.d.1", "b.d.2.e", "b.d.5", "f", "g", "x", "a.x", "a.y",
	"ab", `q"k`, "é", `a\.b`, "a.b", "0", "1", "2", "3", "arr.0.1", "arr.1.1", "arr.01",
	"n", "m", "big", "s", "c", "k.k.k.k", "k.k", "z.1.k", "z.0",
	"fields.0.code", "fields.3.label", "entry.c1", "entry.c2",
	"a.*", "a?", "a|b", "@this", "!true", "[a]", "a..b", "", `\1`, "a.#.b.#",
}

func TestMatchesGjson(t *testing.T) {
	var s Scratch
	for _, doc := range docs {
		out, n := eval(t, &s, doc, paths...)
		if n < 0 {
			t.Logf("%s: not answered (%d)", doc, n)
			continue
		}
		if n != len(paths)*RecordSize {
			t.Fatalf("%s: %d bytes, want %d", doc, n, len(paths)*RecordSize)
		}
		for i, p := range paths {
			got := decode(out, i)
			if got.typ == TypeUnsupported {
				if strings.ContainsAny(p, "*?|@!#[") || p == "" || strings.Contains(p, "..") || p == `\1` || p == "arr.01" {
					continue
				}
				t.Errorf("%s %q: unsupported", doc, p)
				continue
			}
			if d := same(doc, got, gjson.Get(doc, p)); d != "" {
				t.Errorf("%s %q: %s", doc, p, d)
			}
		}
	}
}

// TestInvalid: where the walk meets something that is not JSON, Eval does
// not answer, even when a lenient parser would have found the value.
func TestInvalid(t *testing.T) {
	var s Scratch
	for _, doc := range []string{`{"a":[1,2}`, `{"a":tru}`, `{"a" 1,"b":2}`, `{"a":1 "b":2}`, `{"a":01}`, `{"a":1}x`, `{"a":{"b":1`, `x{"a":1}`, `{"a":-}`, `{"a":1.}`, `{"a":"x}`, `[1,]`, `{"a":1,}`, `{,"a":1}`} {
		if _, n := eval(t, &s, doc, "b", "a"); n != errBad {
			t.Errorf("%s: %d, want errBad", doc, n)
		}
	}
	// The walk stops at the answer: what follows is not read.
	if out, n := eval(t, &s, `{"a":1,"b":nonsense`, "a"); n != RecordSize || decode(out, 0).typ != TypeNumber {
		t.Errorf("early stop: %d", n)
	}
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	if _, n := eval(t, &s, `{"a":`+deep+`,"b":1}`, "b"); n != errBad {
		t.Errorf("too deep: %d", n)
	}
	ok := strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1)
	if _, n := eval(t, &s, `{"a":`+ok+`,"b":1}`, "b"); n != RecordSize {
		t.Errorf("deep but within MaxDepth: %d", n)
	}
}

func TestBadPathList(t *testing.T) {
	var s Scratch
	for name, list := range map[string][]byte{
		"short length":   {1, 0},
		"length beyond":  {9, 0, 0, 0, 'a'},
		"too many":       pack(make([]string, MaxPaths+1)...),
		"too many steps": pack(strings.Repeat("a.", MaxSteps) + "a"),
		"nested groups":  pack("a.#.b", "a.0.c.#"),
	} {
		if _, ok := s.Eval([]byte(`{}`), list); ok {
			t.Errorf("%s: answered", name)
		}
	}
	if out, ok := s.Eval([]byte(`{}`), nil); !ok || len(out) != 0 {
		t.Errorf("no paths: %d, %v", len(out), ok)
	}
}

// refEach is what a '#' path means: for each element (or member value) E
// of gjson.Get(json, prefix), gjson.Get(E, suffix).
func refEach(json, path string) (container gjson.Result, elems []gjson.Result, keys []string) {
	prefix, suffix, _ := strings.Cut(path, "#")
	prefix = strings.TrimSuffix(prefix, ".")
	suffix = strings.TrimPrefix(suffix, ".")
	container = gjson.Parse(json)
	if prefix != "" {
		container = gjson.Get(json, prefix)
	}
	if !container.IsArray() && !container.IsObject() {
		return container, nil, nil
	}
	container.ForEach(func(k, v gjson.Result) bool {
		e := v
		if suffix != "" {
			e = gjson.Get(v.Raw, suffix)
			if e.Exists() {
				e.Index += v.Index
			}
		}
		elems = append(elems, e)
		keys = append(keys, k.Str)
		return true
	})
	return container, elems, keys
}

func TestEach(t *testing.T) {
	var s Scratch
	doc := `{"fields":[{"label":"L1","code":"c1","type":"T"},{"code":"c2"},3,{"label":"L3","code":"c1","code":"dup"}],` +
		`"entry":{"c1":"v1","c2":null,"c\u0033":[1]},"fields":"second","x":1}`
	list := []string{"fields.#.label", "fields.#.code", "x", "entry.#", "fields.#.code", "fields.#", "fields.0.label", "nope.#", "x.#"}
	out, n := eval(t, &s, doc, list...)
	if n < 0 {
		t.Fatalf("Eval: %d", n)
	}
	for i, p := range list {
		r := decode(out, i)
		if !strings.Contains(p, "#") {
			if d := same(doc, r, gjson.Get(doc, p)); d != "" {
				t.Errorf("%q: %s", p, d)
			}
			continue
		}
		c, elems, keys := refEach(doc, p)
		if d := same(doc, rec{typ: r.typ, flags: r.flags, num: r.num, start: r.start, length: r.length}, c); d != "" {
			t.Errorf("%q container: %s", p, d)
		}
		if int(r.keyLen) != len(elems) {
			t.Errorf("%q: %d elements, want %d", p, r.keyLen, len(elems))
			continue
		}
		for j, want := range elems {
			e := decode(out, int(r.keyStart+int32(j)*r.st))
			if d := same(doc, e, want); d != "" {
				t.Errorf("%q element %d: %s", p, j, d)
			}
			key := ""
			if e.keyStart >= 0 {
				key = doc[e.keyStart : e.keyStart+e.keyLen]
				if e.flags&FlagKeyEscaped != 0 {
					key = gjson.Parse(`"` + key + `"`).Str
				}
			}
			if key != keys[j] {
				t.Errorf("%q element %d: key %q, want %q", p, j, key, keys[j])
			}
		}
	}
}

var howxmPaths = []string{"event_type", "campaign.id", "campaign.name", "campaign.fields.#.label", "campaign.fields.#.code",
	"campaign.fields.#.type", "entry.fields.#", "entry.serial_number", "entry.customer.uid", "entry.customer.name",
	"entry.customer.email", "entry.customer.mobile", "entry.system_link", "entry.created_at"}

func BenchmarkHowxm(b *testing.B) {
	body, err := os.ReadFile("../../../testdata/howxm_entry_submitted.json")
	if err != nil {
		b.Fatal(err)
	}
	list := pack(howxmPaths...)
	var s Scratch
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Eval(body, list); !ok {
			b.Fatal("not answered")
		}
	}
}

// FuzzMatchesGjson: whenever Eval answers, each path's record is gjson's
// answer, with two paths at once (sharing prefixes, duplicates, stopping
// early) as well as one.
func FuzzMatchesGjson(f *testing.F) {
	for _, d := range docs {
		f.Add(d, "a", "b.c")
	}
	f.Add(`{"a":{"b":[1,{"c":2}]}}`, "a.b.1.c", "a.b")
	f.Add(`{"a":{"x":1},"a":{"y":2},"b":3}`, "a.y", "b")
	f.Add(`"[taaaa"`, "0", "") // gjson finds a '[' inside the string
	f.Add(`{"":""}`, `\`, "")  // a trailing backslash
	f.Fuzz(func(t *testing.T, doc, p1, p2 string) {
		var s Scratch
		out, ok := s.Eval([]byte(doc), pack(p1, p2))
		if !ok {
			return
		}
		if len(out) != 2*RecordSize && !strings.Contains(p1+p2, "#") {
			t.Fatalf("%q %q %q: %d bytes", doc, p1, p2, len(out))
		}
		for i, p := range []string{p1, p2} {
			r := decode(out, i)
			if r.typ == TypeUnsupported || strings.Contains(p, "#") {
				continue
			}
			if d := same(doc, r, gjson.Get(doc, p)); d != "" {
				t.Fatalf("%q %q: %s", doc, p, d)
			}
		}
	})
}

func BenchmarkSkipAll(b *testing.B) {
	body, _ := os.ReadFile("../../../testdata/howxm_entry_submitted.json")
	list := pack("zzz")
	var s Scratch
	b.Run("jsonget", func(b *testing.B) {
		for b.Loop() {
			s.Eval(body, list)
		}
	})
	b.Run("gjson", func(b *testing.B) {
		str := string(body)
		for b.Loop() {
			gjson.Get(str, "zzz")
		}
	})
	b.Run("valid", func(b *testing.B) {
		for b.Loop() {
			gjson.ValidBytes(body)
		}
	})
	b.Run("howxm", func(b *testing.B) {
		l := pack(howxmPaths...)
		for b.Loop() {
			s.Eval(body, l)
		}
	})
}

func BenchmarkSmartsupp(b *testing.B) {
	body, _ := os.ReadFile("../../../testdata/smartsupp_chat_closed.json")
	list := pack("accountId", "beginAt", "endAt", "channel.id", "channel.rating", "visitor.name", "visitor.email", "visitor.id",
		"paths", "paths.0.url", "messages.#.type", "messages.#.name", "messages.#.content", "messages.#.sentAt")
	var s Scratch
	for b.Loop() {
		if _, ok := s.Eval(body, list); !ok {
			b.Fatal("not answered")
		}
	}
}

// FuzzEach: whenever Eval answers, '#' paths match their definition in
// gjson terms (refEach), next to a plain path through the same container.
func FuzzEach(f *testing.F) {
	f.Add(`{"a":[{"b":1},{"c":2},3,{"b":[4]}],"o":{"k":{"b":5},"k":6}}`, "a", "b")
	f.Add(`[{"x":1},{"x":2}]`, "", "x")
	f.Add(`[{}]0`, "", "0") // a '#' over the whole document: trailing garbage
	f.Add(`[] `, "", "0")   // ... and trailing space, which gjson.Parse keeps
	f.Fuzz(func(t *testing.T, doc, prefix, suffix string) {
		p := "#"
		if prefix != "" {
			p = prefix + ".#"
		}
		if suffix != "" {
			p += "." + suffix
		}
		plain := prefix + ".0"
		if prefix == "" {
			plain = "0"
		}
		var s Scratch
		out, ok := s.Eval([]byte(doc), pack(p, plain))
		if !ok {
			return
		}
		r := decode(out, 0)
		if r.typ == TypeUnsupported || strings.Count(p, "#") > 1 {
			return
		}
		c, elems, keys := refEach(doc, p)
		if d := same(doc, rec{typ: r.typ, flags: r.flags, num: r.num, start: r.start, length: r.length}, c); d != "" {
			t.Fatalf("%q %q container: %s", doc, p, d)
		}
		if int(r.keyLen) != len(elems) {
			t.Fatalf("%q %q: %d elements, want %d", doc, p, r.keyLen, len(elems))
		}
		for j, want := range elems {
			e := decode(out, int(r.keyStart+int32(j)*r.st))
			if d := same(doc, e, want); d != "" {
				t.Fatalf("%q %q element %d: %s", doc, p, j, d)
			}
			key := ""
			if e.keyStart >= 0 {
				key = doc[e.keyStart : e.keyStart+e.keyLen]
				if e.flags&FlagKeyEscaped != 0 {
					key = gjson.Parse(`"` + key + `"`).Str
				}
			}
			if key != keys[j] {
				t.Fatalf("%q %q element %d: key %q, want %q", doc, p, j, key, keys[j])
			}
		}
		if d := same(doc, decode(out, 1), gjson.Get(doc, plain)); d != "" && decode(out, 1).typ != TypeUnsupported {
			t.Fatalf("%q %q: %s", doc, plain, d)
		}
	})
}
