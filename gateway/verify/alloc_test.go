//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestVerifyAllocs is the hot-path promise: once the scratch pool is warm,
// Verify allocates nothing, whether it accepts or refuses.
func TestVerifyAllocs(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, c := range hotCases(t) {
		t.Run(c.name, func(t *testing.T) {
			if got := reason(t, c.v.Verify(c.req, now)); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			if n := testing.AllocsPerRun(200, func() { _ = c.v.Verify(c.req, now) }); n != 0 {
				t.Fatalf("Verify allocates %v times per call, want 0", n)
			}
		})
	}
}

// TestFasthttpHeaderAllocs wires Verify the way ingest does, with
// fasthttp's own header look-up as Request.Header and the TCP peer's
// net.IP turned into a netip.Addr, and checks it still allocates nothing.
func TestFasthttpHeaderAllocs(t *testing.T) {
	body := []byte(`{"a":1}`)
	v, err := New(Spec{Type: TypeHMAC, Secrets: []string{"k"}, Header: "X-Hub-Signature-256", Prefix: "sha256=", AllowIPs: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	var req fasthttp.Request
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac(sha256.New, "k", string(body))))
	req.SetBody(body)
	peer := net.IPv4(127, 0, 0, 1) // what ctx.RemoteIP() returns: 16 bytes, v4-mapped
	verifyOnce := func() error {
		ip, _ := netip.AddrFromSlice(peer)
		return v.Verify(Request{Header: &req.Header, Body: req.Body(), RemoteIP: ip}, time.Now())
	}
	if err := verifyOnce(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if n := testing.AllocsPerRun(200, func() { _ = verifyOnce() }); n != 0 {
		t.Fatalf("Verify with fasthttp headers allocates %v times per call, want 0", n)
	}
}
