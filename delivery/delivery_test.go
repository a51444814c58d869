package delivery

import (
	"testing"
)

func kvs(pairs ...string) []KV {
	var out []KV
	for i := 0; i < len(pairs); i += 2 {
		out = Append(out, []byte(pairs[i]), []byte(pairs[i+1]))
	}
	return out
}

func render(kvs []KV) string {
	s := ""
	for i, kv := range kvs {
		if i > 0 {
			s += "&"
		}
		s += string(kv.Key) + "=" + string(kv.Value)
	}
	return s
}

func TestSetDelLookup(t *testing.T) {
	tests := []struct {
		name string
		in   []KV
		op   func([]KV) []KV
		want string
	}{
		{"set appends a new key", kvs("a", "1"), func(k []KV) []KV { return Set(k, []byte("b"), []byte("2")) }, "a=1&b=2"},
		{"set replaces ignoring case", kvs("Content-Type", "text/plain"), func(k []KV) []KV {
			return Set(k, []byte("content-type"), []byte("application/json"))
		}, "Content-Type=application/json"},
		{"set removes later duplicates", kvs("x", "1", "y", "2", "X", "3"), func(k []KV) []KV { return Set(k, []byte("x"), []byte("9")) }, "x=9&y=2"},
		{"del removes every match", kvs("a", "1", "b", "2", "A", "3"), func(k []KV) []KV { return Del(k, []byte("a")) }, "b=2"},
		{"del of an absent key keeps all", kvs("a", "1"), func(k []KV) []KV { return Del(k, []byte("z")) }, "a=1"},
		{"set on empty", nil, func(k []KV) []KV { return Set(k, []byte("k"), []byte("v")) }, "k=v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := render(tt.op(tt.in)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	if v, ok := Lookup(kvs("Webhook-Id", "msg_1"), []byte("webhook-id")); !ok || string(v) != "msg_1" {
		t.Fatalf("Lookup = %q, %v", v, ok)
	}
	if _, ok := Lookup(kvs("a", "1"), []byte("ab")); ok {
		t.Fatal("Lookup matched a key of another length")
	}
}

// Removed entries keep their own buffers past len, so appending after a
// delete must never overwrite a live entry's bytes.
func TestDelThenAppendDoesNotAlias(t *testing.T) {
	k := kvs("a", "1", "b", "2", "c", "3")
	k = Del(k, []byte("b"))
	k = Append(k, []byte("d"), []byte("4"))
	k = Append(k, []byte("e"), []byte("5"))
	if got := render(k); got != "a=1&c=3&d=4&e=5" {
		t.Fatalf("got %q", got)
	}
	k = Set(k, []byte("a"), []byte("11"))
	k = Del(k, []byte("c"))
	k = Append(k, []byte("f"), []byte("6"))
	if got := render(k); got != "a=11&d=4&e=5&f=6" {
		t.Fatalf("got %q", got)
	}
}

func TestOutcomeReuse(t *testing.T) {
	var o Outcome
	d := o.Add()
	d.Target = "crm"
	d.Body = append(d.Body, "first"...)
	d.Headers = Append(d.Headers, []byte("X-A"), []byte("1"))
	d.Ordered, d.OrderKey = true, append(d.OrderKey, "cust-1"...)
	o.Dropped, o.DropReason = true, append(o.DropReason, "why"...)
	o.Response.Set, o.Response.Status = true, 418

	o.Reset()
	if o.Dropped || len(o.DropReason) != 0 || len(o.Deliveries) != 0 || o.Response.Set || o.Response.Status != 0 {
		t.Fatalf("Reset left state: %+v", o)
	}
	d = o.Add()
	if d.Target != "" || len(d.Body) != 0 || len(d.Headers) != 0 || d.Ordered || len(d.OrderKey) != 0 {
		t.Fatalf("reused delivery not empty: %+v", d)
	}
	if cap(d.Body) < len("first") {
		t.Fatal("reused delivery lost its body buffer")
	}
}

func TestCopyToIsDeep(t *testing.T) {
	src := Delivery{
		ID: []byte("evt_1.0"), EventID: []byte("evt_1"), Route: "r", Target: "t",
		Method: []byte("GET"), Path: []byte("/p"), Query: kvs("q", "1"), Headers: kvs("h", "2"),
		Body: []byte("body"), NotBefore: 42, Ordered: true, OrderKey: []byte("cust-1"),
	}
	var dst Delivery
	src.CopyTo(&dst)
	src.Body[0] = 'X'
	src.OrderKey[0] = 'X'
	src.Query[0].Value[0] = '9'
	src.Headers[0].Value[0] = '8'
	if string(dst.Body) != "body" || render(dst.Query) != "q=1" || render(dst.Headers) != "h=2" {
		t.Fatalf("copy shares buffers with its source: %+v", dst)
	}
	if dst.NotBefore != 42 || string(dst.ID) != "evt_1.0" || dst.Target != "t" || string(dst.Method) != "GET" ||
		!dst.Ordered || string(dst.OrderKey) != "cust-1" {
		t.Fatalf("copy lost fields: %+v", dst)
	}
}
