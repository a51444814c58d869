package target

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

// BenchmarkDoOAuth2 compares the forward path of a plain target with an
// oauth2 target whose token is cached, over loopback in one run (ns/op
// includes the sink's share of the CPU). The difference is what a cached
// token costs a delivery.
func BenchmarkDoOAuth2(b *testing.B) {
	s := startSink(b, sink.Options{Discard: true})
	e := startTokenEndpoint(b)
	for _, tc := range []struct {
		name   string
		target config.Target
	}{
		{"plain", config.Target{URL: mustURL(b, s.URL()+"/crm?static=1")}},
		{"bearer", config.Target{URL: mustURL(b, s.URL()+"/crm?static=1"), Auth: config.Auth{Type: config.AuthBearer, Token: config.NewSecret(oatClientSecret, "")}}},
		{"oauth2-cached", oauthTarget(b, s.URL()+"/crm?static=1", e, "")},
	} {
		tc.target.MaxConns = 64
		tc.target.IDHeader = "Idempotency-Key"
		c := newClient(b, tc.target) // once: b.Run calls its func once per round
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			doParallel(b, c)
		})
	}
	if n := e.requests.Load(); n != 1 {
		b.Errorf("%d token requests, want 1", n)
	}
}

// BenchmarkTokenGet is the cached token lookup alone.
func BenchmarkTokenGet(b *testing.B) {
	e := startTokenEndpoint(b)
	c := newClient(b, oauthTarget(b, "http://127.0.0.1:1/", e, ""))
	if _, err := c.tokens.get(time.Now().Add(time.Minute)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	far := time.Now().Add(time.Hour) // the cached token is never waited for
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.tokens.get(far); err != nil {
				b.Fatal(err)
			}
		}
	})
}
