package target

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/valyala/fasthttp"
)

// tlsSettings are the TLS client configurations of one target, built from
// its tls table (config.TLS, whose files the loader already read and
// checked; a reload reads them again and builds new clients).
type tlsSettings struct {
	// target: the target's connections. Its CA, when set, is the only one
	// trusted: a private CA pins the target to certificates it issued.
	target *tls.Config
	// tokenEndpoint: the oauth2 token endpoint's. It presents the same
	// client certificate (certificate-bound tokens, RFC 8705, need it) and
	// trusts the system's roots and the CA, since identity providers often
	// sit behind a public CA. server_name and insecure_skip_verify are the
	// target's alone: the client secret never goes to a server whose
	// certificate was not checked.
	tokenEndpoint *tls.Config
}

// newTLS builds t's TLS settings; both are nil when t.TLS is unset, which
// means Go's defaults (the system's roots, TLS 1.2 or later).
func newTLS(t config.TLS) (tlsSettings, error) {
	if !t.IsSet() {
		return tlsSettings{}, nil
	}
	minVersion := uint16(tls.VersionTLS12)
	switch t.MinVersion {
	case "", "1.2":
	case "1.3":
		minVersion = tls.VersionTLS13
	default:
		return tlsSettings{}, fmt.Errorf("tls min_version %q is not supported (use 1.2 or 1.3)", t.MinVersion)
	}
	target := &tls.Config{
		MinVersion:         minVersion,
		ServerName:         t.ServerName, // "": fasthttp uses the URL's host
		InsecureSkipVerify: t.InsecureSkipVerify,
		// Reconnecting after idle_timeout resumes the session: one round
		// trip and no certificate exchange.
		ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}
	token := &tls.Config{MinVersion: minVersion}
	if t.CA.Text != "" {
		target.RootCAs = x509.NewCertPool()
		if !target.RootCAs.AppendCertsFromPEM([]byte(t.CA.Text)) {
			return tlsSettings{}, fmt.Errorf("tls ca %s: no certificate in it", from(t.CA.From))
		}
		if sys, err := x509.SystemCertPool(); err == nil {
			token.RootCAs = sys
		} else {
			token.RootCAs = x509.NewCertPool()
		}
		token.RootCAs.AppendCertsFromPEM([]byte(t.CA.Text))
	}
	switch {
	case t.Cert.Text != "" && t.Key.IsSet():
		pair, err := tls.X509KeyPair([]byte(t.Cert.Text), []byte(t.Key.Reveal()))
		if err != nil {
			return tlsSettings{}, fmt.Errorf("tls cert %s, key %s: %w", from(t.Cert.From), from(t.Key.String()), err)
		}
		target.Certificates = []tls.Certificate{pair}
		token.Certificates = target.Certificates
	case t.Cert.Text != "" || t.Key.IsSet():
		return tlsSettings{}, errors.New("tls needs both cert and key, or neither")
	}
	return tlsSettings{target: target, tokenEndpoint: token}, nil
}

func from(s string) string {
	if s == "" {
		return "(inline PEM)"
	}
	return fmt.Sprintf("%q", s)
}

// handshakeRefusal finds out why a TLS server closed a connection before
// answering, which fasthttp reports only as "closed before the first
// byte". Under TLS 1.3 a server checks the client certificate after the
// client's side of the handshake is done, so a missing or untrusted one
// shows as the server's alert on the first read. handshakeRefusal dials
// once more and returns that alert ("remote error: tls: certificate
// required"), or the handshake's own error; nil when the server accepted
// the connection. Only failed attempts call it.
func handshakeRefusal(addr string, cfg *tls.Config, timeout time.Duration) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return nil // not a TLS matter
		}
		return err
	}
	defer conn.Close()
	// The alert follows the handshake within a round trip; a server that
	// accepted the certificate waits for a request instead.
	_ = conn.SetReadDeadline(time.Now().Add(min(timeout, time.Second)))
	var b [1]byte
	_, err = conn.Read(b[:])
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		return err
	}
	return nil
}

// refusedTLS replaces a "closed before the first byte" error from a TLS
// server with the reason it refused the handshake, when that was it.
func refusedTLS(err error, addr string, cfg *tls.Config, timeout time.Duration) error {
	if !errors.Is(err, fasthttp.ErrConnectionClosed) {
		return err
	}
	if why := handshakeRefusal(addr, cfg, timeout); why != nil {
		return fmt.Errorf("the TLS handshake was refused (check tls cert, key and ca): %w", why)
	}
	return err
}
