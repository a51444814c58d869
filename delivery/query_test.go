package delivery

import (
	"net/url"
	"testing"
)

func TestQuery(t *testing.T) {
	tests := []struct {
		name, raw, key, val string
		del                 bool
		want                string
	}{
		{name: "replace in place", raw: "a=1&b=2&c=3", key: "b", val: "x y", want: "a=1&b=x+y&c=3"},
		{name: "replace every duplicate", raw: "b=1&a=1&b=2", key: "b", val: "z", want: "b=z&a=1"},
		{name: "append", raw: "a=1", key: "e-mail", val: "x@y.z", want: "a=1&e-mail=x%40y.z"},
		{name: "into empty", raw: "", key: "k", val: "v", want: "k=v"},
		{name: "encoded key matches", raw: "e%2Dmail=1&a=2", key: "e-mail", val: "2", want: "e-mail=2&a=2"},
		{name: "delete", raw: "a=1&b=2&a=3", key: "a", del: true, want: "b=2"},
		{name: "delete absent", raw: "a=1", key: "z", del: true, want: "a=1"},
		{name: "stray ampersands dropped", raw: "&a=1&&b=2&", key: "c", val: "3", want: "a=1&b=2&c=3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := QuerySet(nil, nil, []byte(tt.raw), []byte(tt.key), []byte(tt.val), tt.del)
			if string(got) != tt.want {
				t.Fatalf("QuerySet = %q, want %q", got, tt.want)
			}
		})
	}
	gets := []struct{ raw, key, want string }{
		{"a=1&email=x%40y.z", "email", "x@y.z"},
		{"q=a+b%20c", "q", "a b c"},
		{"flag&x=1", "flag", ""},
		{"bad=%zz%4", "bad", "%zz%4"},
		{"a=1", "b", "<absent>"},
	}
	for _, g := range gets {
		v, ok := QueryGet(nil, []byte(g.raw), []byte(g.key))
		got := string(v)
		if !ok {
			got = "<absent>"
		}
		if got != g.want {
			t.Errorf("QueryGet(%q, %q) = %q, want %q", g.raw, g.key, got, g.want)
		}
	}
}

// TestAppendQueryWithout: a credential parameter is removed by its key as
// sent, every other pair kept as sent.
func TestAppendQueryWithout(t *testing.T) {
	for _, tc := range []struct{ q, want string }{
		{"apiToken=s&a=1", "a=1"},
		{"a=1&apiToken=s&apiToken=t&b=2", "a=1&b=2"},
		{"&&a=1&&", "a=1"},
		{"apiToken", ""},
		{"apiTokenX=1&x=apiToken", "apiTokenX=1&x=apiToken"},
	} {
		if got := string(AppendQueryWithout([]byte("keep?"), []byte(tc.q), []byte("apiToken"))); got != "keep?"+tc.want {
			t.Errorf("%q: got %q, want %q", tc.q, got, "keep?"+tc.want)
		}
	}
}

// TestAppendEscape: the encoding is url.QueryEscape's, and decoding it
// gives the input back.
func TestAppendEscape(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	enc := AppendEscape(nil, all)
	if want := url.QueryEscape(string(all)); string(enc) != want {
		t.Fatalf("AppendEscape = %q\nwant %q", enc, want)
	}
	if dec := AppendUnescape(nil, enc); string(dec) != string(all) {
		t.Fatalf("round trip = %q", dec)
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
		q, _ := QuerySet(nil, nil, []byte(raw), []byte(name), []byte(value), false)
		got, ok := QueryGet(nil, q, []byte(name))
		if !ok || string(got) != value {
			t.Fatalf("raw %q: set %q=%q gave %q, read back %q (%v)", raw, name, value, q, got, ok)
		}
		d, _ := QuerySet(nil, nil, q, []byte(name), nil, true)
		if _, ok := QueryGet(nil, d, []byte(name)); ok {
			t.Fatalf("raw %q: %q still present after delete: %q", raw, name, d)
		}
	})
}
