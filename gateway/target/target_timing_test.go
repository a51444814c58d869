package target

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

// forwardCases are the forward paths measured for allocations and speed.
var forwardCases = []struct {
	name   string
	target config.Target
}{
	{name: "none", target: config.Target{IDHeader: "Idempotency-Key"}},
	{name: "hmac", target: config.Target{IDHeader: "Idempotency-Key",
		Auth: config.Auth{Type: config.AuthHMAC, Secret: config.NewSecret("growingio-secret", ""), Prefix: "sha256="}}},
	{name: "standard-webhooks", target: config.Target{
		Auth: config.Auth{Type: config.AuthStandardWebhooks, Secret: config.NewSecret(swSecret, "")}}},
	{name: "get-with-query", target: config.Target{Method: "GET",
		Query: map[string]config.Secret{"apiToken": config.NewSecret("t0k", "${env:SURVEYLAB_TOKEN}")}}},
}

func forwardDelivery() *delivery.Delivery {
	return &delivery.Delivery{
		ID:      []byte("evt_01JBQ3Z5K4V6W7X8Y9Z0ABCDEF.0"),
		Body:    []byte(`{"event":"entry_submitted","entry":{"id":"e1","fields":{"nps":9,"comment":"great"}}}`),
		Headers: kvs("X-Source", "howxm", "X-Trace", "abc"),
		Query:   kvs("cId", "1234", "email", "jan@example.pl", "crk", "evt_01JBQ3Z5K4V6W7X8Y9Z0ABCDEF.0"),
	}
}

// BenchmarkDo measures the forward path over loopback, client and sink on
// the same machine: ns/op includes the sink's share of the CPU.
func BenchmarkDo(b *testing.B) {
	s := startSink(b, sink.Options{Discard: true})
	for _, tc := range forwardCases {
		b.Run(tc.name, func(b *testing.B) {
			tc.target.URL = mustURL(b, s.URL()+"/crm?static=1")
			tc.target.MaxConns = 64
			c := newClient(b, tc.target)
			b.ReportAllocs()
			doParallel(b, c)
		})
	}
}

// BenchmarkTransport measures a delivery's round trip by each transport,
// over http and https (TLS 1.3 to a Go server, which takes pipelined
// requests and answers them in turn), from 64 senders at once, client and
// server on the same machine. Pipelined over TLS, every flush is written
// by a goroutine of its own (tls.Conn cannot say how much a write would
// take without waiting), so the https rows say whether pipelining still
// pays there.
func BenchmarkTransport(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(200)
	})
	plain := httptest.NewServer(handler)
	b.Cleanup(plain.Close)
	secure := httptest.NewTLSServer(handler)
	b.Cleanup(secure.Close)
	ca := config.PEM{Text: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw}))}
	for _, srv := range []struct {
		name string
		url  string
		tls  config.TLS
	}{{"http", plain.URL, config.TLS{}}, {"https", secure.URL, config.TLS{CA: ca}}} {
		for _, pipeline := range []int{0, 8} {
			b.Run(fmt.Sprintf("%s/pipeline=%d", srv.name, pipeline), func(b *testing.B) {
				c := newClient(b, config.Target{URL: mustURL(b, srv.url+"/crm"), MaxConns: 64, Pipeline: pipeline,
					Timeout: 10 * time.Second, IDHeader: "Idempotency-Key", TLS: srv.tls})
				b.ReportAllocs()
				b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
				doParallel(b, c)
			})
		}
	}
}

// doParallel sends forwardDelivery through c from b's parallel senders
// until b is done, and fails b on any error or a status other than 200.
func doParallel(b *testing.B, c *Client) {
	b.RunParallel(func(pb *testing.PB) {
		d := forwardDelivery()
		var r Result
		for pb.Next() {
			if err := c.Do(d, &r); err != nil || r.Status != 200 {
				b.Fatalf("Do: %v, status %d", err, r.Status)
			}
		}
	})
}

// BenchmarkSign measures signing alone.
func BenchmarkSign(b *testing.B) {
	key, err := decodeWebhookSecret(swSecret)
	if err != nil {
		b.Fatal(err)
	}
	d := forwardDelivery()
	ts := []byte("1614265330")
	b.Run("hmac", func(b *testing.B) {
		sc := newScratch(key)
		b.ReportAllocs()
		b.SetBytes(int64(len(d.Body)))
		for b.Loop() {
			sc.signHMAC(nil, d.Body)
		}
	})
	b.Run("standard-webhooks", func(b *testing.B) {
		sc := newScratch(key)
		b.ReportAllocs()
		b.SetBytes(int64(len(d.Body)))
		for b.Loop() {
			sc.signStandardWebhooks(d.ID, ts, d.Body)
		}
	})
}
