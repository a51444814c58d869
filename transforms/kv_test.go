package transforms

import (
	"testing"
	"time"
)

func TestKVStore(t *testing.T) {
	s := newKVStore(3)
	clock := int64(1_000_000_000)
	s.now = func() int64 { return clock }
	get := func(k string) string {
		v, ok := s.get(nil, []byte(k))
		if !ok {
			return "<absent>"
		}
		return string(v)
	}
	s.set([]byte("a"), []byte("1"), 0)
	s.set([]byte("t"), []byte("x"), time.Second)
	if got := get("t"); got != "x" {
		t.Fatalf("t = %s before expiry", got)
	}
	clock += int64(time.Second)
	if got := get("t"); got != "<absent>" {
		t.Fatalf("t = %s after its TTL", got)
	}
	// kv_incr: TTL only at creation; later increments keep it.
	if n := s.incr([]byte("c"), 2, time.Second); n != 2 {
		t.Fatalf("incr = %d", n)
	}
	clock += int64(500 * time.Millisecond)
	if n := s.incr([]byte("c"), 3, time.Hour); n != 5 {
		t.Fatalf("incr = %d", n)
	}
	clock += int64(500 * time.Millisecond)
	if n := s.incr([]byte("c"), 1, 0); n != 1 {
		t.Fatalf("incr after the creation TTL = %d, want a new counter at 1", n)
	}
	// A non-numeric value counts as 0.
	if n := s.incr([]byte("a"), 1, 0); n != 2 {
		t.Fatalf("incr on \"1\" = %d", n)
	}
	s.set([]byte("a"), []byte("text"), 0)
	if n := s.incr([]byte("a"), -4, 0); n != -4 || get("a") != "-4" {
		t.Fatalf("incr on text = %d, value %s", n, get("a"))
	}
	// Bounded: a fourth key evicts the least recently used ("c").
	s.set([]byte("d"), []byte("4"), 0)
	s.set([]byte("e"), []byte("5"), 0)
	if s.len() != 3 || get("c") != "<absent>" || get("a") != "-4" {
		t.Fatalf("len %d, c %s, a %s", s.len(), get("c"), get("a"))
	}
	s.delete([]byte("a"))
	if get("a") != "<absent>" {
		t.Fatal("delete kept the key")
	}
}

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
			got, _ := querySet(nil, nil, []byte(tt.raw), []byte(tt.key), []byte(tt.val), tt.del)
			if string(got) != tt.want {
				t.Fatalf("querySet = %q, want %q", got, tt.want)
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
		v, ok := queryGet(nil, []byte(g.raw), []byte(g.key))
		got := string(v)
		if !ok {
			got = "<absent>"
		}
		if got != g.want {
			t.Errorf("queryGet(%q, %q) = %q, want %q", g.raw, g.key, got, g.want)
		}
	}
}

// len is how many keys the store holds; only the tests ask.
func (s *kvStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}
