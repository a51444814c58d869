package jsonget

import (
	"bytes"
	"encoding/binary"
	stdjson "encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
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
		switch {
		case suffix == "":
		case !v.IsArray() && !v.IsObject():
			// A scalar has nothing below it; gjson.Get would look inside
			// a string's text ("[0" has a "0" for it).
			e = gjson.Result{}
		default:
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
	cpuLoop(b, func() {
		if _, ok := s.Eval(body, list); !ok {
			b.Fatal("not answered")
		}
	})
}

// BenchmarkHowxmCompact is BenchmarkHowxm on the payload without its
// whitespace, as many senders send it.
func BenchmarkHowxmCompact(b *testing.B) {
	body, err := os.ReadFile("../../../testdata/howxm_entry_submitted.json")
	if err != nil {
		b.Fatal(err)
	}
	var c bytes.Buffer
	if err := stdjson.Compact(&c, body); err != nil {
		b.Fatal(err)
	}
	list := pack(howxmPaths...)
	var s Scratch
	b.ReportAllocs()
	cpuLoop(b, func() {
		if _, ok := s.Eval(c.Bytes(), list); !ok {
			b.Fatal("not answered")
		}
	})
}

// cpuLoop runs f b.N times. Besides wall time it reports the thread's CPU
// time per call (cpu-ns/op), which a machine shared with other work
// disturbs less: compare that one between runs on a busy machine.
func cpuLoop(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	for b.Loop() {
		f()
	}
	if cpu0 >= 0 {
		b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
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
	// The 8-byte scans: strings and whitespace across word boundaries,
	// escapes, control bytes and invalid UTF-8, repeated indentation.
	f.Add("{\n  \"abcdefgh\\\"ij\": \"x\\\\\\\"\x01\xff\",\n  \"k\": [\n    1,\n    \"é\"\n  ]\n}", `abcdefgh"ij`, "k.1")
	f.Add("{\"a\":{\"b\":1,\r\n\t\"c\":2,\r\n\t\"d\":\"0123456789abcdef\"}}", "a.d", "a.c")
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
		cpuLoop(b, func() { s.Eval(body, list) })
	})
	b.Run("gjson", func(b *testing.B) {
		str := string(body)
		cpuLoop(b, func() { gjson.Get(str, "zzz") })
	})
	b.Run("valid", func(b *testing.B) {
		cpuLoop(b, func() { gjson.ValidBytes(body) })
	})
	b.Run("howxm", func(b *testing.B) {
		l := pack(howxmPaths...)
		cpuLoop(b, func() { s.Eval(body, l) })
	})
}

func BenchmarkSmartsupp(b *testing.B) {
	body, _ := os.ReadFile("../../../testdata/smartsupp_chat_closed.json")
	list := pack("accountId", "beginAt", "endAt", "channel.id", "channel.rating", "visitor.name", "visitor.email", "visitor.id",
		"paths", "paths.0.url", "messages.#.type", "messages.#.name", "messages.#.content", "messages.#.sentAt")
	var s Scratch
	cpuLoop(b, func() {
		if _, ok := s.Eval(body, list); !ok {
			b.Fatal("not answered")
		}
	})
}

// FuzzEach: whenever Eval answers, '#' paths match their definition in
// gjson terms (refEach), next to a plain path through the same container.
func FuzzEach(f *testing.F) {
	f.Add(`{"a":[{"b":1},{"c":2},3,{"b":[4]}],"o":{"k":{"b":5},"k":6}}`, "a", "b")
	f.Add(`[{"x":1},{"x":2}]`, "", "x")
	f.Add(`[{}]0`, "", "0")  // a '#' over the whole document: trailing garbage
	f.Add(`[] `, "", "0")    // ... and trailing space, which gjson.Parse keeps
	f.Add(`["[0"]`, "", "0") // a string element: nothing below it, whatever its text
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

// The scans read 8 bytes at a time where they can (strings, runs of
// spaces), then byte by byte near the end of the document. These tests put
// each kind of byte the scans look for at every offset modulo 8, and at the
// end of the document, and check the answers against gjson and whether Eval
// answers at all against what the strictness rules say.

// strictCase is a document and whether Eval must answer for it.
type strictCase struct {
	doc    string
	answer bool
}

// checkCases evaluates every case for paths and compares with gjson.
func checkCases(t *testing.T, cases []strictCase, paths ...string) {
	t.Helper()
	var s Scratch
	for _, c := range cases {
		out, n := eval(t, &s, c.doc, paths...)
		if (n >= 0) != c.answer {
			t.Errorf("%q: answered %v, want %v", c.doc, n >= 0, c.answer)
			continue
		}
		if n < 0 {
			continue
		}
		for i, p := range paths {
			if d := same(c.doc, decode(out, i), gjson.Get(c.doc, p)); d != "" {
				t.Errorf("%q %q: %s", c.doc, p, d)
			}
		}
	}
}

// TestStringBytesEveryOffset: quotes, escapes, control bytes and invalid
// UTF-8 in string values and keys, at every offset modulo 8 from the
// document's start and from the string's, then at the document's end.
func TestStringBytesEveryOffset(t *testing.T) {
	// Content a string may hold: the walk returns it as is (gjson does not
	// check it either), escapes only flagged.
	pieces := []string{`\"`, `\\`, `\/`, `\n`, `\u00e9`, `\ud83d\ude00`, "\x01", "\x1f", "\t", "\x00", "\xff", "\xc3", "\x7f", "é", `\\\"`, `"`}
	var cases []strictCase
	for pad := 0; pad < 8; pad++ {
		for at := 0; at < 17; at++ {
			for _, p := range pieces {
				content := strings.Repeat("x", at) + p + strings.Repeat("y", 16-at%8)
				if p == `"` { // an unescaped quote ends the string early
					content = strings.Repeat("x", at)
				}
				lead := strings.Repeat(" ", pad)
				cases = append(cases,
					strictCase{lead + `{"a":"` + content + `","b":1}`, true},
					strictCase{lead + `{"` + content + `":2,"a":"` + content + `"}`, true},
					strictCase{lead + `["` + content + `",{"b":"` + content + `"}]`, true},
					// The string runs into the end of the document.
					strictCase{lead + `{"a":"` + content, false},
					strictCase{lead + `{"b":1,"a":"` + content + `\`, false},
					strictCase{lead + `{"b":1,"a":"` + content + `\"`, false},
					strictCase{lead + `{"` + content, false},
				)
			}
		}
	}
	checkCases(t, cases, "a", "b", "1.b", "0", "x")
	// Escaped keys, matched after unescaping, at every offset.
	for at := 0; at < 17; at++ {
		pre := strings.Repeat("k", at)
		checkCases(t, []strictCase{
			{`{"` + pre + `\u0061":1,"` + pre + `a":2}`, true},
			{`{"` + pre + `\"":3,"` + pre + `\\":4}`, true},
			{`{"x":{"` + pre + `\/":5},"` + pre + `b":6}`, true},
		}, pre+"a", pre+`\"`, pre+`\\`, "x."+pre+"/", pre+"b")
	}
}

// TestWhitespaceEveryOffset: runs of whitespace of every length up to 20,
// made of spaces with a tab, newline or carriage return (or a byte that is
// not whitespace) at each position, between every pair of tokens and at the
// end of the document.
func TestWhitespaceEveryOffset(t *testing.T) {
	var cases []strictCase
	for n := 0; n <= 20; n++ {
		for at := -1; at < n; at++ {
			for _, odd := range []byte{'\t', '\n', '\r', 0x0b, 0x00, 0x0c, '!'} {
				run := []byte(strings.Repeat(" ", n))
				if at >= 0 {
					run[at] = odd
				}
				w := string(run)
				ok := at < 0 || odd == '\t' || odd == '\n' || odd == '\r'
				cases = append(cases,
					strictCase{w + `{` + w + `"a"` + w + `:` + w + `[` + w + `1` + w + `,` + w + `"s"` + w + `]` + w + `,` + w + `"b"` + w + `:` + w + `{` + w + `}` + w + `}` + w, ok},
					strictCase{`{"b":[` + w + `],"c":{` + w + `},"a":1}`, ok},
				)
			}
		}
	}
	checkCases(t, cases, "a.1", "b", "c")
	// Once every path is answered the walk stops: what follows is not read.
	// Until then it is, to the end of the document.
	checkCases(t, []strictCase{{`{"a":1}` + strings.Repeat(" ", 13) + "\x00", true}, {`{"a":1,` + strings.Repeat(" ", 13) + "\x00", true}}, "a")
	checkCases(t, []strictCase{{`{"a":1}` + strings.Repeat(" ", 13) + "\x00", false}}, "z")
	checkCases(t, []strictCase{{`{"a":1,` + strings.Repeat(" ", 13) + "\x00", false}}, "a", "z")
}

// TestDepthLimits: MaxDepth holds where the walk follows a path and where
// it skips, for arrays and objects, just under and just over the limit.
func TestDepthLimits(t *testing.T) {
	nest := func(n int, obj bool) string {
		if obj {
			return strings.Repeat(`{"k":`, n) + "1" + strings.Repeat("}", n)
		}
		return strings.Repeat("[", n) + "1" + strings.Repeat("]", n)
	}
	var cases []strictCase
	for _, obj := range []bool{false, true} {
		cases = append(cases,
			strictCase{`{"a":` + nest(MaxDepth-1, obj) + `,"b":1}`, true},
			strictCase{`{"a":` + nest(MaxDepth, obj) + `,"b":1}`, true}, // skipped values count from 0
			strictCase{`{"a":` + nest(MaxDepth+1, obj) + `,"b":1}`, false},
			// The root is walked (its members are matched against the
			// paths); a member no path goes into is skipped, counting
			// its levels from there.
			strictCase{nest(MaxDepth+1, obj), true},
			strictCase{nest(MaxDepth+2, obj), false},
		)
	}
	checkCases(t, cases, "b", "c")
	// 100 levels down a path (MaxSteps keeps the walk itself under
	// MaxDepth), a value is skipped with its own MaxDepth, whether a path
	// ends at it or passes it by.
	deepPath := strings.TrimSuffix(strings.Repeat("k.", 100), ".")
	down, up := strings.Repeat(`{"k":`, 100), strings.Repeat("}", 100)
	beside := strings.Repeat(`{"z":1,"k":`, 100)
	checkCases(t, []strictCase{
		{down + nest(MaxDepth, true) + up, true},
		{down + nest(MaxDepth+1, true) + up, false},
	}, deepPath, "zz")
	checkCases(t, []strictCase{
		{beside + `{"z":` + nest(MaxDepth, false) + `,"k":1}` + up, true},
		{beside + `{"z":` + nest(MaxDepth+1, false) + `,"k":1}` + up, false},
	}, deepPath+".k", "zz")
}

// TestIndentChanges: the whitespace before an object's members is learnt
// from one member and recognized at the next; members whose whitespace
// differs from the one before (longer, shorter, a prefix of it, with tabs,
// longer than 16 bytes, none, at the end of the document) are read as
// well.
func TestIndentChanges(t *testing.T) {
	runs := []string{"", " ", "\n", "\n  ", "\n    ", "\n\t", "\r\n  ", "\n" + strings.Repeat(" ", 14), "\n" + strings.Repeat(" ", 15), "\n" + strings.Repeat(" ", 30), "  \n  "}
	var cases []strictCase
	for _, r1 := range runs {
		for _, r2 := range runs {
			for _, r3 := range runs {
				doc := `{"a":1,` + r1 + `"b":{"x":1,` + r2 + `"y":2,` + r2 + `"z":[1,` + r3 + `2]},` + r2 + `"c":"s",` + r3 + `"d":` + r1 + `true` + r3 + `}`
				cases = append(cases, strictCase{doc, true}, strictCase{doc[:len(doc)-1] + `,` + r2 + `"`, false}, strictCase{doc[:len(doc)-1] + `,` + r2 + "\x00\"e\":1}", false})
			}
		}
	}
	checkCases(t, cases, "b.y", "b.z.1", "d", "e", "b.q")
}
