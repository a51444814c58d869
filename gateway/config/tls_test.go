package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testCert makes a self-signed certificate valid from notBefore to
// notAfter, with the given extended key usage; it returns certificate and
// key PEM.
func testCert(t *testing.T, cn string, notBefore, notAfter time.Time, usage ...x509.ExtKeyUsage) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  usage,
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

func validCert(t *testing.T, cn string) (string, string) {
	return testCert(t, cn, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), x509.ExtKeyUsageClientAuth)
}

// tlsConfigTOML is a config whose one https target has the given tls table.
func tlsConfigTOML(table string) string {
	return `
[[target]]
name = "crm"
url = "https://crm.example.com/api"
tls = ` + table + `

[[route]]
name = "in"
path = "/in"
targets = ["crm"]
`
}

// TestTLSLoads: the tls table's files, relative to the config file, and
// PEM text in environment variables (with real line breaks or "\n"
// escapes), checked and kept as the certificates alone.
func TestTLSLoads(t *testing.T) {
	dir := t.TempDir()
	caPEM, _ := validCert(t, "crm CA")
	certPEM, keyPEM := validCert(t, "hookgate")
	write(t, dir, "certs/ca.pem", "CA bundle\n"+caPEM)
	write(t, dir, "certs/client.pem", certPEM+keyPEM) // a combined file
	env := map[string]string{"KEY": keyPEM, "CA_ESCAPED": strings.ReplaceAll(caPEM, "\n", `\n`)}

	for _, tt := range []struct{ name, table string }{
		{"files", `{ ca = "certs/ca.pem", cert = "certs/client.pem", key = "certs/client.pem", server_name = "crm.internal", min_version = "1.3" }`},
		{"environment", `{ ca = "${env:CA_ESCAPED}", cert = "certs/client.pem", key = "${env:KEY}", server_name = "crm.internal", min_version = "1.3" }`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tlsConfigTOML(tt.table)), filepath.Join(dir, "hookgate.toml"), mapEnv(env))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Targets[0].TLS
			if got.CA.Text != caPEM || got.Cert.Text != certPEM || got.Key.Reveal() != keyPEM ||
				got.ServerName != "crm.internal" || got.MinVersion != "1.3" || got.InsecureSkipVerify {
				t.Errorf("TLS = %+v", got)
			}
			if strings.Contains(got.Cert.Text, "PRIVATE KEY") {
				t.Error("the certificate kept the key of a combined file")
			}
			if tt.name == "environment" && got.Key.String() != "${env:KEY}" || tt.name == "files" && got.Key.String() != "certs/client.pem" {
				t.Errorf("the key prints as %q", got.Key.String())
			}
			if len(c.Warnings) != 0 {
				t.Errorf("warnings: %q", c.Warnings)
			}
		})
	}
}

// TestTLSReloadReadsFiles: each load reads the files again, so a reload
// picks up a renewed certificate.
func TestTLSReloadReadsFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hookgate.toml")
	write(t, dir, "hookgate.toml", tlsConfigTOML(`{ cert = "client.pem", key = "client.key" }`))
	var texts []string
	for _, cn := range []string{"hookgate-2026", "hookgate-2027"} {
		certPEM, keyPEM := validCert(t, cn)
		write(t, dir, "client.pem", certPEM)
		write(t, dir, "client.key", keyPEM)
		c, err := LoadWith(path, Options{Env: mapEnv(nil), SkipWasmCheck: true})
		if err != nil {
			t.Fatal(err)
		}
		if c.Targets[0].TLS.Cert.Text != certPEM {
			t.Fatalf("load with %s: the certificate is not the file's", cn)
		}
		texts = append(texts, c.Targets[0].TLS.Cert.Text)
	}
	if texts[0] == texts[1] {
		t.Error("the second load kept the first certificate")
	}
}

// TestTLSProblems: every way a tls table can be wrong is a problem naming
// the key and the file, and never quoting a key.
func TestTLSProblems(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := validCert(t, "hookgate")
	_, otherKey := validCert(t, "other")
	write(t, dir, "client.pem", certPEM)
	write(t, dir, "client.key", keyPEM)
	write(t, dir, "other.key", otherKey)
	write(t, dir, "garbage.pem", "not a certificate\n")
	write(t, dir, "broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	write(t, dir, "encrypted.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
	tests := []struct {
		name, table string
		env         map[string]string
		want        []string
	}{
		{name: "missing file", table: `{ ca = "nope.pem" }`,
			want: []string{`target "crm": tls: ca: "nope.pem": cannot read $DIR/nope.pem: no such file or directory`}},
		{name: "not PEM", table: `{ ca = "garbage.pem" }`,
			want: []string{`target "crm": tls: ca: "garbage.pem": no certificate found (want PEM: -----BEGIN CERTIFICATE-----)`}},
		{name: "a key where the CA goes", table: `{ ca = "client.key" }`,
			want: []string{`target "crm": tls: ca: "client.key": no certificate found (want PEM: -----BEGIN CERTIFICATE-----)`}},
		{name: "certificate does not parse", table: `{ cert = "broken.pem", key = "client.key" }`,
			want: []string{`target "crm": tls: cert: "broken.pem": certificate 1 does not parse: x509: malformed certificate`}},
		{name: "key of another certificate", table: `{ cert = "client.pem", key = "other.key" }`,
			want: []string{`target "crm": tls: key: "other.key" with cert "client.pem": private key does not match public key`}},
		{name: "key in the environment is not a key", table: `{ cert = "client.pem", key = "${env:K}" }`, env: map[string]string{"K": certPEM},
			want: []string{`target "crm": tls: key: "${env:K}": no private key found (want PEM: -----BEGIN PRIVATE KEY-----, or RSA or EC PRIVATE KEY)`}},
		{name: "encrypted key", table: `{ cert = "client.pem", key = "encrypted.key" }`,
			want: []string{`target "crm": tls: key: "encrypted.key": is encrypted; hookgate needs it unencrypted (openssl pkey -in KEY -out PLAIN), kept readable only by hookgate's user`}},
		{name: "cert without key", table: `{ cert = "client.pem" }`,
			want: []string{`target "crm": tls: key: is missing: cert "client.pem" needs its private key (key = "certs/hookgate.key" or "${env:NAME}" holding the PEM)`}},
		{name: "key without cert", table: `{ key = "client.key" }`,
			want: []string{`target "crm": tls: cert: is missing: key "client.key" needs the certificate it belongs to`}},
		{name: "bad version, server name, unknown key", table: `{ min_version = "1.1", server_name = "https://crm.internal", verify = false }`,
			want: []string{
				`target "crm": tls: min_version: "1.1" is not supported (use "1.2" or "1.3")`,
				`target "crm": tls: server_name: "https://crm.internal" must be a host name such as "crm.internal", without scheme, port or path`,
				`target "crm": tls: unknown key "verify"`,
			}},
		{name: "cert set, key empty", table: `{ cert = "client.pem", key = "", ca = "" }`,
			want: []string{`target "crm": tls: key: is missing: cert "client.pem" needs its private key (key = "certs/hookgate.key" or "${env:NAME}" holding the PEM)`}},
		{name: "mistyped", table: `{ ca = 1, cert = ["a"], key = "client.key" }`,
			want: []string{`target "crm": tls: ca: must be a string, not an integer`, `target "crm": tls: cert: must be a string, not an array`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tlsConfigTOML(tt.table)), filepath.Join(dir, "hookgate.toml"), mapEnv(tt.env))
			if err == nil {
				t.Fatalf("Parse succeeded (%s), want errors", c.Summary())
			}
			got := problems(t, err, dir)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, p := range got {
				if strings.Contains(p, "PRIVATE KEY-----\n") || strings.Contains(p, keyPEM[40:80]) {
					t.Errorf("a problem quotes a key: %s", p)
				}
			}
		})
	}

	// tls on an http url would never be used.
	src := strings.Replace(tlsConfigTOML(`{ min_version = "1.3" }`), "https://", "http://", 1)
	_, err := Parse([]byte(src), filepath.Join(dir, "hookgate.toml"), mapEnv(nil))
	if want := `target "crm": tls: applies to https only, and url is http (use an https url, or remove tls)`; err == nil || !slices.Equal(problems(t, err, dir), []string{want}) {
		t.Errorf("tls on http: %v, want %q", err, want)
	}
}

// TestTLSWarnings: what works but will fail or is unsafe.
func TestTLSWarnings(t *testing.T) {
	dir := t.TempDir()
	expired, expiredKey := testCert(t, "old", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), x509.ExtKeyUsageClientAuth)
	server, serverKey := testCert(t, "server", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), x509.ExtKeyUsageServerAuth)
	write(t, dir, "expired.pem", expired)
	write(t, dir, "expired.key", expiredKey)
	write(t, dir, "server.pem", server)
	write(t, dir, "server.key", serverKey)
	inline := strings.ReplaceAll(serverKey, "\n", `\n`)
	for _, tt := range []struct{ table, want string }{
		{`{ cert = "expired.pem", key = "expired.key" }`, `target "crm": tls: cert: "expired.pem" expired on 2021-01-01; the target will refuse the handshake: renew it`},
		{`{ cert = "server.pem", key = "server.key" }`, `target "crm": tls: cert: "server.pem" is not for client authentication (its extended key usage lacks clientAuth); the target may refuse it`},
		{`{ insecure_skip_verify = true }`, `target "crm": tls: insecure_skip_verify: the target's certificate is not checked, so anyone on the path can read and change deliveries; trust its CA with ca = "..." instead`},
		{`{ cert = "server.pem", key = "` + inline + `" }`, `target "crm": tls: key: the private key is written in the file; in production use key = "certs/hookgate.key" or "${env:NAME}"`},
	} {
		c, err := Parse([]byte(tlsConfigTOML(tt.table)), filepath.Join(dir, "hookgate.toml"), mapEnv(nil))
		if err != nil {
			t.Fatalf("%s: %v", tt.table, err)
		}
		if !slices.Contains(c.Warnings, tt.want) {
			t.Errorf("%s: warnings %q, want %q", tt.table, c.Warnings, tt.want)
		}
	}
}

func write(t *testing.T, dir, name, text string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
