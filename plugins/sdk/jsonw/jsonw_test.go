package jsonw

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// stdString is what encoding/json writes for s without HTML escaping: the
// reference our escaping must match byte for byte.
func stdString(t testing.TB, s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func TestAppendString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", `""`},
		{"ascii", "hello", `"hello"`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"short escapes", "\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"other controls", "\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"del passes", "\x7f", "\"\x7f\""},
		{"html passes", "<a href='x'>&</a>", `"<a href='x'>&</a>"`},
		{"slash passes", "a/b", `"a/b"`},
		{"chinese passes", "很好用,能够解决", `"很好用,能够解决"`},
		{"emoji passes", "ok 👍", `"ok 👍"`},
		{"variation selector passes", "感谢您的反馈️", `"感谢您的反馈️"`},
		{"line separators", "a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"invalid byte", "a\xffb", `"a\ufffdb"`},
		{"truncated rune", "a\xe5\xbe", `"a\ufffd\ufffd"`},
		{"escape at end", "x\n", `"x\n"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendString(nil, tt.in))
			if got != tt.want {
				t.Fatalf("AppendString(%q) = %s, want %s", tt.in, got, tt.want)
			}
			if std := stdString(t, tt.in); got != std {
				t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", tt.in, got, std)
			}
		})
	}
}

// TestEscapeEveryPosition puts each byte that matters to the 8-byte fast
// paths at every position of longer strings, ASCII and not.
func TestEscapeEveryPosition(t *testing.T) {
	specials := []string{"\"", "\\", "\n", "\x00", "\x1f", "\x7f", " ", "é", "很", "\u2028", "\u2029", "\xe2", "\xe2\x80", "\xff", "👍"}
	for _, fill := range []string{"abcdefghijklmnopqrstuvwxyz0123456789", "很好用能够解决我绝大部分的问题很好用能够解决"} {
		for _, sp := range specials {
			for i := 0; i <= len(fill); i++ {
				in := fill[:i] + sp + fill[i:]
				if got, want := string(AppendString(nil, in)), stdString(t, in); got != want {
					t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", in, got, want)
				}
			}
		}
	}
}

func TestAppendEscapedHasNoQuotes(t *testing.T) {
	if got := string(AppendEscaped([]byte("x:"), `say "hi"`)); got != `x:say \"hi\"` {
		t.Fatalf("got %s", got)
	}
}

func TestAppendFloat(t *testing.T) {
	tests := []struct {
		name string
		in   float64
		want string
	}{
		{"zero", 0, "0"},
		{"negative zero", math.Copysign(0, -1), "-0"},
		{"integer", 10, "10"},
		{"fraction", 3.25, "3.25"},
		{"negative", -0.5, "-0.5"},
		{"small", 1e-7, "1e-7"},
		{"boundary small", 1e-6, "0.000001"},
		{"large", 1e21, "1e+21"},
		{"below large", 1e20, "100000000000000000000"},
		{"nan", math.NaN(), "null"},
		{"inf", math.Inf(1), "null"},
		{"minus inf", math.Inf(-1), "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendFloat(nil, tt.in))
			if got != tt.want {
				t.Fatalf("AppendFloat(%v) = %s, want %s", tt.in, got, tt.want)
			}
			if math.IsNaN(tt.in) || math.IsInf(tt.in, 0) {
				return
			}
			std, _ := json.Marshal(tt.in)
			if got != string(std) {
				t.Fatalf("AppendFloat(%v) = %s, encoding/json writes %s", tt.in, got, std)
			}
		})
	}
}

func TestWriterDocument(t *testing.T) {
	var w Writer
	w.ObjectStart()
	w.Key("source")
	w.String("howxm")
	w.Key("survey")
	w.ObjectStart()
	w.Key("id")
	w.String("5c28")
	w.ObjectEnd()
	w.Key("score")
	w.Int(-3)
	w.Key("big")
	w.Uint(math.MaxUint64)
	w.Key("ratio")
	w.Float(0.5)
	w.Key("ok")
	w.Bool(true)
	w.Key("no")
	w.Bool(false)
	w.Key("none")
	w.Null()
	w.Key("raw")
	w.Raw([]byte(`{"a":[1,2]}`))
	w.Key("rawEmpty")
	w.Raw(nil)
	w.Key("rawString")
	w.RawString(`"x"`)
	w.Key("bytes")
	w.StringBytes([]byte("b\""))
	w.Key("empty")
	w.ArrayStart()
	w.ArrayEnd()
	w.Key("emptyObj")
	w.ObjectStart()
	w.ObjectEnd()
	w.Key("list")
	w.ArrayStart()
	w.Int(1)
	w.ObjectStart()
	w.Key("q")
	w.String("a")
	w.ObjectEnd()
	w.ArrayStart()
	w.ArrayEnd()
	w.String("z")
	w.ArrayEnd()
	w.ObjectEnd()

	want := `{"source":"howxm","survey":{"id":"5c28"},"score":-3,"big":18446744073709551615,` +
		`"ratio":0.5,"ok":true,"no":false,"none":null,"raw":{"a":[1,2]},"rawEmpty":null,` +
		`"rawString":"x","bytes":"b\"","empty":[],"emptyObj":{},"list":[1,{"q":"a"},[],"z"]}`
	if got := string(w.Bytes()); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if !json.Valid(w.Bytes()) {
		t.Fatal("output is not valid JSON")
	}
	if w.Len() != len(want) {
		t.Fatalf("Len() = %d, want %d", w.Len(), len(want))
	}

	w.Reset()
	w.ArrayStart()
	w.String("again")
	w.ArrayEnd()
	if got := string(w.Bytes()); got != `["again"]` {
		t.Fatalf("after Reset got %s", got)
	}
}

// TestRoundTrip writes strings through the Writer and reads them back with
// encoding/json: every value must survive unchanged.
func TestRoundTrip(t *testing.T) {
	values := []string{"", "plain", "tab\there", "nl\n", `q"`, `\`, "\x00", "中国 陕西省", "🙂", "\u2028", "<>&"}
	var w Writer
	w.ObjectStart()
	for i, v := range values {
		w.Key(v + "#" + string(rune('a'+i)))
		w.String(v)
	}
	w.ObjectEnd()
	var got map[string]string
	if err := json.Unmarshal(w.Bytes(), &got); err != nil {
		t.Fatalf("%v in %s", err, w.Bytes())
	}
	for i, v := range values {
		k := v + "#" + string(rune('a'+i))
		if got[k] != v {
			t.Errorf("key %q = %q, want %q", k, got[k], v)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\n", "\xff", "中", "\u2028", `"\`, "\x00\x1f\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := string(AppendString(nil, s))
		if want := stdString(t, s); got != want {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	})
}

func BenchmarkWriter(b *testing.B) {
	var w Writer
	b.ReportAllocs()
	for b.Loop() {
		w.Reset()
		w.ObjectStart()
		w.Key("question")
		w.String("很遗憾没能让您满意,我们应该如何改善产品体验?")
		w.Key("answer")
		w.String("很好用,能够解决我绝大部分的问题")
		w.Key("score")
		w.Int(3)
		w.ObjectEnd()
	}
}
