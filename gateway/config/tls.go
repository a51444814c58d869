package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// tls reads a target's tls table. Certificates and the key are read and
// checked here, not when the client is built, so that `hookgate check`
// and a reload report a bad file (naming it) and a reload reads renewed
// ones.
func (p *parser) tls(t *table) TLS {
	c := TLS{
		ServerName:         t.str("server_name", ""),
		MinVersion:         t.str("min_version", DefaultTLSMinVersion),
		InsecureSkipVerify: t.boolean("insecure_skip_verify", false),
	}
	switch c.MinVersion {
	case "1.2", "1.3":
	default:
		t.errf("min_version", "%q is not supported (use \"1.2\" or \"1.3\")", c.MinVersion)
		c.MinVersion = DefaultTLSMinVersion
	}
	if strings.ContainsAny(c.ServerName, ":/ ") {
		t.errf("server_name", "%q must be a host name such as \"crm.internal\", without scheme, port or path", c.ServerName)
	}
	ca, caSet, caOK := p.pemValue(t, "ca")
	cert, certSet, certOK := p.pemValue(t, "cert")
	key, keySet, keyOK := p.pemValue(t, "key")
	if caSet && caOK {
		if text, err := certBlocks(ca.Text); err != nil {
			t.errf("ca", "%s: %v", ca.label(), err)
		} else {
			c.CA = PEM{Text: text, From: ca.From}
		}
	}
	switch {
	case certSet && !keySet:
		t.errf("key", "is missing: cert %s needs its private key (key = \"certs/hookgate.key\" or \"${env:NAME}\" holding the PEM)", cert.label())
	case keySet && !certSet:
		t.errf("cert", "is missing: key %s needs the certificate it belongs to", key.label())
	case certOK && keyOK:
		c.Cert, c.Key = p.keyPair(t, cert, key)
	}
	if c.InsecureSkipVerify {
		t.p.warnings = append(t.p.warnings, t.at("insecure_skip_verify")+": the target's certificate is not checked, so anyone on the path can read and change deliveries; trust its CA with ca = \"...\" instead")
	}
	t.done()
	return c
}

// pemValue reads key: a file (relative to the config file), or PEM text
// written inline or held by an environment variable (the usual way to
// hand a key to a container). set is false when key is absent or ""
// (unset, as the sample config shows it); ok is false when it could not be
// read, a problem already recorded.
func (p *parser) pemValue(t *table, key string) (_ PEM, set, ok bool) {
	raw, present := t.rawString(key)
	if !present {
		return PEM{}, t.has(key), false // mistyped: recorded, and set
	}
	if raw == "" {
		return PEM{}, false, false
	}
	v, expanded := p.expand(t.at(key), raw)
	if !expanded {
		return PEM{}, true, false
	}
	if isPEM(v) {
		if !strings.HasPrefix(raw, envPrefix) {
			if key == "key" {
				t.p.warnings = append(t.p.warnings, t.at(key)+": the private key is written in the file; in production use key = \"certs/hookgate.key\" or \"${env:NAME}\"")
			}
			return PEM{Text: v}, true, true // inline: no From
		}
		// An environment variable often carries "\n" escapes instead of
		// line breaks (.env files, CI secrets); PEM needs the breaks.
		if !strings.Contains(v, "\n") {
			v = strings.ReplaceAll(v, `\n`, "\n")
		}
		return PEM{Text: v, From: raw}, true, true
	}
	path := p.resolve(v)
	b, err := os.ReadFile(path)
	if err != nil {
		shown := path
		if abs, aerr := filepath.Abs(path); aerr == nil {
			shown = abs
		}
		t.errf(key, "%q: cannot read %s: %v", raw, shown, cause(err))
		return PEM{}, true, false
	}
	return PEM{Text: string(b), From: raw}, true, true
}

func isPEM(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN ") }

// label names where m came from in a message: the file as written, the
// variable, or that it was written inline.
func (m PEM) label() string {
	if m.From == "" {
		return "(inline PEM)"
	}
	return strconv.Quote(m.From)
}

// certBlocks returns the CERTIFICATE blocks of text, each checked to
// parse, re-encoded without anything else the file held.
func certBlocks(text string) (string, error) {
	var out strings.Builder
	rest := []byte(text)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			if strings.HasSuffix(b.Type, "PRIVATE KEY") {
				continue // a combined cert and key file; the key is read through key
			}
			return "", fmt.Errorf("holds a %q block, where only CERTIFICATE blocks belong", b.Type)
		}
		n++
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return "", fmt.Errorf("certificate %d does not parse: %v", n, err)
		}
		out.Write(pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes}))
	}
	if n == 0 {
		return "", fmt.Errorf("no certificate found (want PEM: -----BEGIN CERTIFICATE-----)")
	}
	return out.String(), nil
}

// keyBlock returns the private key block of text, alone.
func keyBlock(text string) (string, error) {
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return "", fmt.Errorf("no private key found (want PEM: -----BEGIN PRIVATE KEY-----, or RSA or EC PRIVATE KEY)")
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return "", fmt.Errorf("is encrypted; hookgate needs it unencrypted (openssl pkey -in KEY -out PLAIN), kept readable only by hookgate's user")
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})), nil
	}
}

// keyPair checks cert and key and that they belong together. It warns
// about a certificate a target will refuse anyway: expired, not yet valid,
// or not meant for client authentication.
func (p *parser) keyPair(t *table, cert, key PEM) (PEM, Secret) {
	certText, err := certBlocks(cert.Text)
	if err != nil {
		t.errf("cert", "%s: %v", cert.label(), err)
		return PEM{}, Secret{}
	}
	keyText, err := keyBlock(key.Text)
	if err != nil {
		t.errf("key", "%s: %v", key.label(), err)
		return PEM{}, Secret{}
	}
	pair, err := tls.X509KeyPair([]byte(certText), []byte(keyText))
	if err != nil {
		// Go's reasons ("private key does not match public key", "failed
		// to parse private key") never quote the key.
		t.errf("key", "%s with cert %s: %s", key.label(), cert.label(), strings.TrimPrefix(err.Error(), "tls: "))
		return PEM{}, Secret{}
	}
	leaf := pair.Leaf
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		t.p.warnings = append(t.p.warnings, fmt.Sprintf("%s: %s expired on %s; the target will refuse the handshake: renew it", t.at("cert"), cert.label(), leaf.NotAfter.UTC().Format(time.DateOnly)))
	case now.Before(leaf.NotBefore):
		t.p.warnings = append(t.p.warnings, fmt.Sprintf("%s: %s is not valid before %s; the target will refuse the handshake until then", t.at("cert"), cert.label(), leaf.NotBefore.UTC().Format(time.RFC3339)))
	}
	if len(leaf.ExtKeyUsage) > 0 && !hasUsage(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !hasUsage(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		t.p.warnings = append(t.p.warnings, fmt.Sprintf("%s: %s is not for client authentication (its extended key usage lacks clientAuth); the target may refuse it", t.at("cert"), cert.label()))
	}
	return PEM{Text: certText, From: cert.From}, NewSecret(keyText, key.From)
}

func hasUsage(us []x509.ExtKeyUsage, u x509.ExtKeyUsage) bool {
	for _, x := range us {
		if x == u {
			return true
		}
	}
	return false
}
