package delivery

import (
	"fmt"
	"strings"
	"testing"
)

func fmtDefaults(ds []Delivery) string {
	var b strings.Builder
	for i := range ds {
		d := &ds[i]
		fmt.Fprintf(&b, "%s %s %s method=%q path=%q query=%s headers=%s body=%s nb=%d\n",
			d.Route, d.EventID, d.Target, d.Method, d.Path, render(d.Query), render(d.Headers), d.Body, d.NotBefore)
	}
	return b.String()
}

// TestDefaults is the one rule of the default deliveries: forwardable
// headers always, method, path and query only where a plugin changed them,
// and the event-wide delay.
func TestDefaults(t *testing.T) {
	in := Original{Method: []byte("POST"), Path: []byte("/hooks/x"), Query: []byte("a=1")}
	event := func() *Event {
		return &Event{ID: []byte("evt_1"), Route: "r", Method: []byte("POST"), Path: []byte("/hooks/x"), Query: []byte("a=1"),
			Headers: kvs("Content-Type", "application/json", "Host", "gw", "Authorization", "Bearer s", "Connection", "close",
				"X-Trace", "7", "accept-encoding", "gzip", "Cookie", "c=1"),
			Body: []byte(`{}`)}
	}
	const headers = "Content-Type=application/json&X-Trace=7"
	tests := []struct {
		name      string
		change    func(*Event)
		notBefore int64
		targets   []string
		want      string
	}{
		{name: "unchanged: the targets' own method, path and query", targets: []string{"crm", "sms"},
			want: "r evt_1 crm method=\"\" path=\"\" query= headers=" + headers + " body={} nb=0\n" +
				"r evt_1 sms method=\"\" path=\"\" query= headers=" + headers + " body={} nb=0\n"},
		{name: "changed by a plugin", targets: []string{"crm", "sms"},
			change: func(ev *Event) {
				ev.Method, ev.Path, ev.Query = []byte("PUT"), []byte("/v2"), []byte("email=a+b%40c&&z=1&z=2&=")
			},
			want: "r evt_1 crm method=\"PUT\" path=\"/v2\" query=email=a b@c&z=1&z=2 headers=" + headers + " body={} nb=0\n" +
				"r evt_1 sms method=\"PUT\" path=\"/v2\" query=email=a b@c&z=1&z=2 headers=" + headers + " body={} nb=0\n"},
		{name: "query emptied by a plugin", targets: []string{"crm"}, change: func(ev *Event) { ev.Query = nil },
			want: "r evt_1 crm method=\"\" path=\"\" query= headers=" + headers + " body={} nb=0\n"},
		{name: "event-wide delay keeps the forwarded headers", targets: []string{"crm"}, notBefore: 42,
			want: "r evt_1 crm method=\"\" path=\"\" query= headers=" + headers + " body={} nb=42\n"},
		{name: "no targets", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event()
			if tt.change != nil {
				tt.change(ev)
			}
			// dst holds stale deliveries: nothing of them may show.
			stale := []Delivery{{Target: "old", Method: []byte("GET"), Query: kvs("old", "1"), Headers: kvs("Old", "1"), NotBefore: 9}}
			if got := fmtDefaults(Defaults(stale[:0], ev, in, tt.notBefore, tt.targets)); got != tt.want {
				t.Fatalf("got\n%swant\n%s", got, tt.want)
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", ""},
		{"a=1&b=2", "a=1&b=2"},
		{"a&b=", "a=&b="},
		{"k%3D=v%26w&x=%zz%4", "k==v&w&x=%zz%4"},
		{"&&=&=v", "=v"},
		{"q=1+1%2B1", "q=1 1+1"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			if got := render(ParseQuery(nil, []byte(tt.raw))); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
