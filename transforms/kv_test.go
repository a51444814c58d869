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

// len is how many keys the store holds; only the tests ask.
func (s *kvStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}
