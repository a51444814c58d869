package target

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
)

// testCA is a certificate authority made for one test with crypto/x509.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

var serial atomic.Int64

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue makes a leaf certificate: for a server with hosts (IPs or DNS
// names), or for a client when hosts is empty. It returns certificate and
// key PEM.
func (ca *testCA) issue(t testing.TB, cn string, hosts ...string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(hosts) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
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

// mtlsServer is a real https server on 127.0.0.1 that requires a client
// certificate signed by clientCA and answers with the client's CN.
type mtlsServer struct {
	srv  *httptest.Server
	seen atomic.Value // CN of the last client certificate
}

func startMTLS(t testing.TB, serverCA, clientCA *testCA, hosts ...string) *mtlsServer {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1"}
	}
	certPEM, keyPEM := serverCA.issue(t, "target", hosts...)
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	m := &mtlsServer{}
	m.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		m.seen.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		w.WriteHeader(200)
	}))
	m.srv.Config.ErrorLog = quietLog() // refused handshakes are the point
	m.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	m.srv.StartTLS()
	t.Cleanup(m.srv.Close)
	return m
}

func tlsTarget(t testing.TB, url string, c config.TLS) config.Target {
	if c.MinVersion == "" {
		c.MinVersion = config.DefaultTLSMinVersion
	}
	return config.Target{Name: "crm", URL: mustURL(t, url), TLS: c}
}

func pemOf(text string) config.PEM { return config.PEM{Text: text} }

// TestMutualTLS: a target that requires a client certificate from its
// private CA gets one, and refuses the connection without it, with a
// certificate from another CA, or when hookgate does not trust its CA.
func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t, "crm private CA")
	other := newTestCA(t, "someone else's CA")
	srv := startMTLS(t, ca, ca)
	certPEM, keyPEM := ca.issue(t, "hookgate")
	otherCert, otherKey := other.issue(t, "hookgate")
	url := srv.srv.URL + "/crm"

	tests := []struct {
		name string
		tls  config.TLS
		want string // "" means delivered; else a part of the error
	}{
		{name: "ca, cert and key", tls: config.TLS{CA: pemOf(ca.pem), Cert: pemOf(certPEM), Key: config.NewSecret(keyPEM, "")}},
		{name: "TLS 1.3 only", tls: config.TLS{CA: pemOf(ca.pem), Cert: pemOf(certPEM), Key: config.NewSecret(keyPEM, ""), MinVersion: "1.3"}},
		{name: "no client certificate", tls: config.TLS{CA: pemOf(ca.pem)}, want: "the TLS handshake was refused (check tls cert, key and ca): remote error: tls: certificate required"},
		// Go's client sends no certificate the server's CertificateRequest
		// does not accept, so the refusal reads as the first case.
		{name: "client certificate of another CA", tls: config.TLS{CA: pemOf(ca.pem), Cert: pemOf(otherCert), Key: config.NewSecret(otherKey, "")}, want: "the TLS handshake was refused (check tls cert, key and ca): remote error: tls: certificate required"},
		{name: "private CA not trusted", tls: config.TLS{Cert: pemOf(certPEM), Key: config.NewSecret(keyPEM, "")}, want: "certificate signed by unknown authority"},
		{name: "target signed by another CA than ca", tls: config.TLS{CA: pemOf(other.pem), Cert: pemOf(certPEM), Key: config.NewSecret(keyPEM, "")}, want: "certificate signed by unknown authority"},
		{name: "insecure_skip_verify", tls: config.TLS{Cert: pemOf(certPEM), Key: config.NewSecret(keyPEM, ""), InsecureSkipVerify: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tlsTarget(t, url, tt.tls))
			var r Result
			err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r)
			if tt.want == "" {
				if err != nil || r.Status != 200 || srv.seen.Load() != "hookgate" {
					t.Fatalf("Do: %v, status %d, client seen as %v", err, r.Status, srv.seen.Load())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Do: %v (status %d), want an error containing %q", err, r.Status, tt.want)
			}
		})
	}
}

// TestTLSServerName: a target reached by address whose certificate names
// it by host name is verified against server_name.
func TestTLSServerName(t *testing.T) {
	ca := newTestCA(t, "crm private CA")
	srv := startMTLS(t, ca, ca, "crm.internal")
	certPEM, keyPEM := ca.issue(t, "hookgate")
	base := config.TLS{CA: pemOf(ca.pem), Cert: pemOf(certPEM), Key: config.NewSecret(keyPEM, "")}
	var r Result
	err := newClient(t, tlsTarget(t, srv.srv.URL, base)).Do(&delivery.Delivery{}, &r)
	if err == nil || !strings.Contains(err.Error(), "cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs") {
		t.Fatalf("without server_name: %v, want a name mismatch", err)
	}
	base.ServerName = "crm.internal"
	if err := newClient(t, tlsTarget(t, srv.srv.URL, base)).Do(&delivery.Delivery{}, &r); err != nil || r.Status != 200 {
		t.Fatalf("with server_name: %v, status %d", err, r.Status)
	}
}

// TestMutualTLSFromConfig: the tls table as written in hookgate.toml, the
// CA and certificate from files and the key from an environment variable,
// and a reload (a new load and a new client, as every generation builds)
// presents a renewed certificate.
func TestMutualTLSFromConfig(t *testing.T) {
	ca := newTestCA(t, "crm private CA")
	srv := startMTLS(t, ca, ca)
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", ca.pem)
	certPEM, keyPEM := ca.issue(t, "hookgate-2026")
	write("client.pem", certPEM)
	env := map[string]string{"CRM_CLIENT_KEY": keyPEM}
	toml := `
[[target]]
name = "crm"
url = "` + srv.srv.URL + `/crm"
tls = { ca = "ca.pem", cert = "client.pem", key = "${env:CRM_CLIENT_KEY}", min_version = "1.2" }

[[route]]
name = "in"
path = "/in"
targets = ["crm"]
`
	load := func() *Client {
		cfg, err := config.ParseWith([]byte(toml), filepath.Join(dir, "hookgate.toml"), config.Options{
			Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
		if err != nil {
			t.Fatal(err)
		}
		set, err := NewSet(cfg.Targets)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(set.Close)
		return set.Get("crm")
	}
	var r Result
	if err := load().Do(&delivery.Delivery{}, &r); err != nil || srv.seen.Load() != "hookgate-2026" {
		t.Fatalf("Do: %v, client seen as %v", err, srv.seen.Load())
	}
	// Renewed: new certificate file, new key in the environment.
	certPEM, keyPEM = ca.issue(t, "hookgate-2027")
	write("client.pem", certPEM)
	env["CRM_CLIENT_KEY"] = keyPEM
	if err := load().Do(&delivery.Delivery{}, &r); err != nil || srv.seen.Load() != "hookgate-2027" {
		t.Fatalf("after the reload: %v, client seen as %v, want the renewed certificate", err, srv.seen.Load())
	}
}

// TestOAuth2OverMutualTLS: an enterprise API whose token endpoint and API
// both require the client certificate (certificate-bound tokens, RFC
// 8705), behind one private CA.
func TestOAuth2OverMutualTLS(t *testing.T) {
	ca := newTestCA(t, "bank private CA")
	api := startMTLS(t, ca, ca)
	certPEM, keyPEM := ca.issue(t, "hookgate")
	serverCert, serverKey := ca.issue(t, "idp", "127.0.0.1")
	pair, err := tls.X509KeyPair([]byte(serverCert), []byte(serverKey))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	var tokenRequests atomic.Int64
	idp := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		fmt.Fprintf(w, `{"access_token":"%sbound","token_type":"Bearer","expires_in":300}`, oatTokenPrefix)
	}))
	idp.Config.ErrorLog = quietLog()
	idp.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	idp.StartTLS()
	defer idp.Close()

	tg := tlsTarget(t, api.srv.URL+"/payments", config.TLS{CA: pemOf(ca.pem), Cert: pemOf(certPEM), Key: config.NewSecret(keyPEM, "")})
	tg.Auth = config.Auth{Type: config.AuthOAuth2, TokenURL: mustURL(t, idp.URL+"/token"), ClientID: oatClientID, ClientSecret: config.NewSecret(oatClientSecret, "")}
	c := newClient(t, tg)
	for range 3 {
		doOK(t, c)
	}
	if tokenRequests.Load() != 1 || api.seen.Load() != "hookgate" {
		t.Errorf("%d token requests, API saw %v", tokenRequests.Load(), api.seen.Load())
	}
	// Without the certificate the token endpoint refuses the handshake:
	// a token error, nothing sent to the API.
	tg.TLS.Cert, tg.TLS.Key = config.PEM{}, config.Secret{}
	var r Result
	err = newClient(t, tg).Do(&delivery.Delivery{}, &r)
	if !errors.Is(err, ErrToken) || !strings.Contains(err.Error(), "could not be reached: the TLS handshake was refused (check tls cert, key and ca): remote error: tls: certificate required") {
		t.Errorf("token endpoint without the client certificate: %v", err)
	}
}

// TestTLSRejects: what New refuses in a hand-built Target (the loader
// reports the same, naming the file).
func TestTLSRejects(t *testing.T) {
	ca := newTestCA(t, "ca")
	certPEM, _ := ca.issue(t, "hookgate")
	_, otherKey := ca.issue(t, "other")
	for _, tt := range []struct {
		name string
		tg   config.Target
		want string
	}{
		{"http url", tlsTarget(t, "http://127.0.0.1:1/", config.TLS{InsecureSkipVerify: true}), `target "crm": tls applies to https urls only`},
		{"key of another cert", tlsTarget(t, "https://127.0.0.1:1/", config.TLS{Cert: config.PEM{Text: certPEM, From: "client.pem"}, Key: config.NewSecret(otherKey, "client.key")}),
			`target "crm": tls cert "client.pem", key "client.key": tls: private key does not match public key`},
		{"cert without key", tlsTarget(t, "https://127.0.0.1:1/", config.TLS{Cert: pemOf(certPEM)}), `target "crm": tls needs both cert and key, or neither`},
		{"no ca in ca", tlsTarget(t, "https://127.0.0.1:1/", config.TLS{CA: config.PEM{Text: "nothing", From: "ca.pem"}}), `target "crm": tls ca "ca.pem": no certificate in it`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.tg)
			if err == nil || err.Error() != tt.want {
				t.Errorf("New: %v, want %q", err, tt.want)
			}
		})
	}
}

// quietLog drops net/http's log of refused handshakes.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
