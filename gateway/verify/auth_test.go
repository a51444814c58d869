package verify

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestBasic(t *testing.T) {
	spec := Spec{Type: TypeBasic, Username: "howxm", Secrets: []string{"pw-new", "pw-old"}}
	tests := []struct {
		name    string
		headers *headers
		want    string
	}{
		{"valid", h("Authorization", basicHeader("howxm", "pw-new")), ""},
		{"old password during rotation", h("Authorization", basicHeader("howxm", "pw-old")), ""},
		{"scheme in lower case", h("authorization", "basic "+base64.StdEncoding.EncodeToString([]byte("howxm:pw-new"))), ""},
		{"password with a colon is wrong", h("Authorization", basicHeader("howxm", "pw-new:x")), ReasonBadCredentials},
		{"wrong password", h("Authorization", basicHeader("howxm", "pw-guess")), ReasonBadCredentials},
		{"wrong user", h("Authorization", basicHeader("admin", "pw-new")), ReasonBadCredentials},
		{"empty password", h("Authorization", basicHeader("howxm", "")), ReasonBadCredentials},
		{"missing", h("X-Other", "1"), ReasonMissingCredentials},
		{"bearer instead", h("Authorization", "Bearer pw-new"), ReasonMalformedHeader},
		{"no scheme", h("Authorization", base64.StdEncoding.EncodeToString([]byte("howxm:pw-new"))), ReasonMalformedHeader},
		{"not base64", h("Authorization", "Basic ***"), ReasonMalformedHeader},
		{"no colon", h("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("howxm"))), ReasonMalformedHeader},
		{"scheme only", h("Authorization", "Basic "), ReasonMalformedHeader},
		{"too long", h("Authorization", basicHeader("howxm", strings.Repeat("p", 600))), ReasonBadCredentials},
	}
	v := mustNew(t, spec)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reason(t, v.Verify(Request{Header: tt.headers}, time.Now()))
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestToken(t *testing.T) {
	header := Spec{Type: TypeToken, Header: "X-Api-Key", Secrets: []string{"tok-new", "tok-old"}}
	bearer := Spec{Type: TypeToken, Header: "Authorization", Prefix: "Bearer ", Secrets: []string{"tok-new"}}
	query := Spec{Type: TypeToken, Query: "apiToken", Secrets: []string{"tok new&=", "tok-old"}}
	tests := []struct {
		name    string
		spec    Spec
		headers *headers
		query   string
		want    string
	}{
		{"header", header, h("X-Api-Key", "tok-new"), "", ""},
		{"header old token during rotation", header, h("x-api-key", "tok-old"), "", ""},
		{"header wrong token", header, h("X-Api-Key", "tok-ne"), "", ReasonBadCredentials},
		{"header token in the query instead", header, nil, "X-Api-Key=tok-new", ReasonMissingCredentials},
		{"header missing", header, h("X-Other", "tok-new"), "", ReasonMissingCredentials},
		{"bearer", bearer, h("Authorization", "Bearer tok-new"), "", ""},
		{"bearer without prefix", bearer, h("Authorization", "tok-new"), "", ReasonMalformedHeader},
		{"bearer wrong", bearer, h("Authorization", "Bearer tok-old"), "", ReasonBadCredentials},
		{"query escaped", query, nil, "cId=7&apiToken=tok+new%26%3d&email=a%40b", ""},
		{"query escaped lower-case hex", query, nil, "apiToken=tok%20new%26%3D", ""},
		{"query old token", query, nil, "apiToken=tok-old", ""},
		{"query first one wins", query, nil, "apiToken=bad&apiToken=tok-old", ReasonBadCredentials},
		{"query wrong", query, nil, "apiToken=tok-new", ReasonBadCredentials},
		{"query missing", query, nil, "cId=7", ReasonMissingCredentials},
		{"query empty value", query, nil, "apiToken=&cId=7", ReasonMissingCredentials},
		{"query name only", query, nil, "apiToken", ReasonMissingCredentials},
		{"query token in a header instead", query, h("apiToken", "tok-old"), "", ReasonMissingCredentials},
		{"query bad escape", query, nil, "apiToken=tok%2", ReasonMalformedHeader},
		{"query bad hex", query, nil, "apiToken=tok%zz", ReasonMalformedHeader},
		{"query too long", query, nil, "apiToken=" + strings.Repeat("a", maxCredential+1), ReasonBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, tt.spec)
			got := reason(t, v.Verify(Request{Header: tt.headers, RawQuery: []byte(tt.query)}, time.Now()))
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAllowIPs(t *testing.T) {
	body := "payload"
	sig := hex.EncodeToString(mac(sha256.New, "s3cret", body))
	only := Spec{AllowIPs: []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:198.51.100.0/120"}}
	withHMAC := Spec{Type: TypeHMAC, Secrets: []string{"s3cret"}, AllowIPs: []string{"203.0.113.0/24"}}
	tests := []struct {
		name    string
		spec    Spec
		ip      string
		headers *headers
		want    string
	}{
		{"in a v4 network", only, "10.1.2.3", nil, ""},
		{"the single address", only, "192.0.2.7", nil, ""},
		{"next to the single address", only, "192.0.2.8", nil, ReasonIPNotAllowed},
		{"outside", only, "11.0.0.1", nil, ReasonIPNotAllowed},
		{"v4-mapped v6 peer", only, "::ffff:10.9.9.9", nil, ""},
		{"v6 network", only, "2001:db8:1::5", nil, ""},
		{"v6 outside", only, "2001:db9::1", nil, ReasonIPNotAllowed},
		{"mapped network written as v6", only, "198.51.100.77", nil, ""},
		{"no address", only, "", nil, ReasonIPNotAllowed},
		{"allowed and signed", withHMAC, "203.0.113.9", h(DefaultHMACHeader, sig), ""},
		{"allowed, not signed", withHMAC, "203.0.113.9", nil, ReasonMissingSignature},
		{"signed, not allowed", withHMAC, "198.51.100.1", h(DefaultHMACHeader, sig), ReasonIPNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, tt.spec)
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			got := reason(t, v.Verify(Request{Header: tt.headers, Body: []byte(body), RemoteIP: ip}, time.Now()))
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	tests := []struct {
		name          string
		spec          Spec
		header, query string
		allowed       bool
	}{
		{"hmac", Spec{Type: TypeHMAC, Secrets: []string{"s"}}, "", "", true},
		{"basic", Spec{Type: TypeBasic, Username: "u", Secrets: []string{"s"}}, "Authorization", "", true},
		{"token header", Spec{Type: TypeToken, Header: "X-Key", Secrets: []string{"s"}}, "X-Key", "", true},
		{"token query", Spec{Type: TypeToken, Query: "apiToken", Secrets: []string{"s"}, AllowIPs: []string{"10.0.0.0/8"}}, "", "apiToken", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, tt.spec)
			header, query := v.Credential()
			if header != tt.header || query != tt.query || v.Type() != tt.spec.Type {
				t.Fatalf("Credential() = %q %q, Type() = %q", header, query, v.Type())
			}
			if got := v.AllowedIP(netip.MustParseAddr("192.0.2.1")); got != tt.allowed {
				t.Fatalf("AllowedIP = %v, want %v", got, tt.allowed)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	const secret = "hunter2-very-secret"
	tests := []struct {
		name  string
		spec  Spec
		field string
		msg   string
	}{
		{"nothing to check", Spec{}, "type", `is empty and allow_ips is empty, so nothing would be checked: set a type or allow_ips, or leave verify out`},
		{"unknown type", Spec{Type: "jwt", Secrets: []string{secret}}, "type", `"jwt" is not a verification type: use "hmac", "timestamped", "standard-webhooks", "basic" or "token"`},
		{"no secrets", Spec{Type: TypeHMAC}, "secrets", `type "hmac" needs at least one secret: set secrets = ["${env:NAME}"]`},
		{"empty secret", Spec{Type: TypeHMAC, Secrets: []string{secret, ""}}, "secrets[1]", `is empty: check that the environment variable it names is set`},
		{"bad algorithm", Spec{Type: TypeHMAC, Secrets: []string{secret}, Algorithm: "md5"}, "algorithm", `"md5" is not supported: use "sha256", "sha1" or "sha512"`},
		{"bad encoding", Spec{Type: TypeHMAC, Secrets: []string{secret}, Encoding: "base32"}, "encoding", `"base32" is not supported: use "hex" or "base64"`},
		{"prefix on basic", Spec{Type: TypeBasic, Username: "u", Secrets: []string{secret}, Prefix: "x"}, "prefix", `does not apply to type "basic": remove it, or use one of ["hmac" "token"]`},
		{"tolerance on hmac", Spec{Type: TypeHMAC, Secrets: []string{secret}, Tolerance: time.Minute}, "tolerance", `does not apply to type "hmac": remove it, or use one of ["timestamped" "standard-webhooks"]`},
		{"secrets without type", Spec{Secrets: []string{secret}, AllowIPs: []string{"10.0.0.1"}}, "secrets", `does not apply to type "": remove it, or use one of ["hmac" "timestamped" "standard-webhooks" "basic" "token"]`},
		{"tolerance too small", Spec{Type: TypeTimestamped, Secrets: []string{secret}, Tolerance: time.Millisecond}, "tolerance", `must be at least 1s (timestamps have one-second resolution); the default is 5m`},
		{"whsec not base64", Spec{Type: TypeStandardWebhooks, Secrets: []string{"whsec_" + secret + "!"}}, "secrets[0]", `is not "whsec_" followed by base64: copy the signing secret exactly as the sender shows it`},
		{"basic without username", Spec{Type: TypeBasic, Secrets: []string{secret}}, "username", `basic needs a username without ':': set username = "..."`},
		{"token without place", Spec{Type: TypeToken, Secrets: []string{secret}}, "header", `token needs exactly one of header (e.g. "X-Api-Key") or query (e.g. "token")`},
		{"token in both places", Spec{Type: TypeToken, Secrets: []string{secret}, Header: "A", Query: "a"}, "header", `token needs exactly one of header (e.g. "X-Api-Key") or query (e.g. "token")`},
		{"query token with prefix", Spec{Type: TypeToken, Secrets: []string{secret}, Query: "a", Prefix: "Bearer "}, "prefix", `applies to a token in a header, not in a query parameter: remove it`},
		{"bad network", Spec{AllowIPs: []string{"10.0.0.0/8", "10.0.0.300"}}, "allow_ips[1]", `"10.0.0.300" is neither an IP address nor a CIDR network: write it like "10.0.0.0/8" or "192.0.2.7"`},
		{"short mapped network", Spec{AllowIPs: []string{"::ffff:10.0.0.0/90"}}, "allow_ips[0]", `"::ffff:10.0.0.0/90" is neither an IP address nor a CIDR network: write it like "10.0.0.0/8" or "192.0.2.7"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.spec)
			if err == nil {
				t.Fatalf("New accepted the spec: %v", v)
			}
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SpecError", err)
			}
			if se.Field != tt.field || se.Msg != tt.msg {
				t.Fatalf("got field %q msg %q\nwant field %q msg %q", se.Field, se.Msg, tt.field, tt.msg)
			}
			if want := "verify: " + tt.field + ": " + tt.msg; err.Error() != want {
				t.Fatalf("Error() = %q, want %q", err.Error(), want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error carries the secret: %v", err)
			}
		})
	}
}

// TestSecretsNeverPrinted formats specs, verifiers and every refusal the
// ways a log line might, and looks for the secrets in the output.
func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "Zm9vYmFyYmF6cXV4LXNlY3JldA=="
	specs := []Spec{
		{Type: TypeHMAC, Secrets: []string{secret}},
		{Type: TypeTimestamped, Secrets: []string{secret}},
		{Type: TypeStandardWebhooks, Secrets: []string{"whsec_" + secret}},
		{Type: TypeBasic, Username: "u", Secrets: []string{secret}},
		{Type: TypeToken, Header: "X-Key", Secrets: []string{secret}},
	}
	for _, spec := range specs {
		t.Run(spec.Type, func(t *testing.T) {
			v := mustNew(t, spec)
			var out []string
			for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
				out = append(out, fmt.Sprintf(f, spec), fmt.Sprintf(f, &spec), fmt.Sprintf(f, v))
			}
			bad := h(DefaultHMACHeader, "x", "Stripe-Signature", "t=1,v1=00", "webhook-id", "a",
				"webhook-timestamp", "1", "webhook-signature", "v1,AAAA", "Authorization", "Basic eDp5", "X-Key", "y")
			err := v.Verify(Request{Header: bad, Body: []byte("b")}, time.Unix(1, 0))
			if err == nil {
				t.Fatal("a forged request passed")
			}
			out = append(out, err.Error(), fmt.Sprintf("%#v", err))
			raw := strings.Trim(fmt.Sprintf("%#v", []byte(secret)[:6]), "[]byte{}")
			for i, s := range out {
				if strings.Contains(s, secret) || strings.Contains(s, "Zm9vYmFy") || strings.Contains(s, raw) {
					t.Fatalf("output %d carries the secret (not shown here, so the test log stays clean)", i)
				}
			}
		})
	}
}
