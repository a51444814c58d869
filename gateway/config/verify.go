package config

import (
	"errors"
	"fmt"

	"github.com/hookgate/hookgate/gateway/dedupe"
	"github.com/hookgate/hookgate/gateway/verify"
)

// verify reads a route's `verify = { ... }` table. The verify package is
// the judge of what a valid spec is: once the keys read cleanly, the spec
// goes through verify.New and what it refuses is reported under the key it
// names. allow_ips lives here, not on the route, so everything that
// decides who may send to a route is in one table.
func (p *parser) verify(t *table) *Verify {
	before := len(p.problems)
	v := &Verify{
		Type:      t.str("type", verify.TypeNone),
		Secrets:   t.secrets("secrets"),
		Header:    t.str("header", ""),
		Query:     t.str("query", ""),
		Prefix:    t.str("prefix", ""),
		Algorithm: t.str("algorithm", ""),
		Encoding:  t.str("encoding", ""),
		Tolerance: t.duration("tolerance", 0),
		Username:  t.str("username", ""),
		AllowIPs:  t.strs("allow_ips"),
	}
	if v.Header != "" && !validHeaderName(v.Header) {
		t.errf("header", "%q is not a valid header name", v.Header)
	}
	t.done()
	if len(p.problems) > before {
		// A key that did not read (a missing environment variable, a
		// mistyped value) would come back from verify.New as a second,
		// vaguer problem about the same key.
		return v
	}
	if _, err := verify.New(v.Spec()); err != nil {
		var se *verify.SpecError
		if errors.As(err, &se) {
			t.errf(se.Field, "%s", se.Msg)
		} else {
			p.addf("%s: %v", t.where, err)
		}
		return v
	}
	// Show what is checked: the defaults verify.New applies, for the keys
	// this type uses.
	switch v.Type {
	case verify.TypeHMAC:
		v.Header = cmpOr(v.Header, verify.DefaultHMACHeader)
		v.Algorithm = cmpOr(v.Algorithm, verify.AlgorithmSHA256)
		v.Encoding = cmpOr(v.Encoding, verify.EncodingHex)
	case verify.TypeTimestamped:
		v.Header = cmpOr(v.Header, verify.DefaultTimestampedHeader)
	}
	if v.Tolerance == 0 && (v.Type == verify.TypeTimestamped || v.Type == verify.TypeStandardWebhooks) {
		v.Tolerance = verify.DefaultTolerance
	}
	return v
}

// dedupe reads a route's `dedupe = { ... }` table and checks it with
// dedupe.New, as verify does.
func (p *parser) dedupe(t *table, routeJSON bool) *Dedupe {
	before := len(p.problems)
	d := &Dedupe{
		Header:     t.str("header", ""),
		JSON:       t.strs("json"),
		TTL:        t.duration("ttl", DefaultDedupeTTL),
		MaxEntries: t.intOf("max_entries", DefaultDedupeMaxEntries, 1),
	}
	if t.has("ttl") && d.TTL == 0 {
		t.errf("ttl", "must be more than 0s (e.g. ttl = \"24h\")")
	}
	if d.Header != "" && !validHeaderName(d.Header) {
		t.errf("header", "%q is not a valid header name", d.Header)
	}
	t.done()
	if len(p.problems) > before {
		return d
	}
	if _, err := dedupe.New(d.Spec()); err != nil {
		var se *dedupe.SpecError
		if errors.As(err, &se) {
			t.errf(se.Field, "%s", se.Msg)
		} else {
			p.addf("%s: %v", t.where, err)
		}
		return d
	}
	if len(d.JSON) > 0 && !routeJSON {
		p.warnings = append(p.warnings, fmt.Sprintf("%s: json keys are read from the body, but the route accepts bodies that are not JSON (json = false), and those are never deduplicated; set json = true on the route", t.where))
	}
	return d
}

// secrets reads an array of secret strings. Messages name the item by
// index and never quote it; a literal gets the same warning as any
// credential written into the file.
func (t *table) secrets(key string) []Secret {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		t.errf(key, "must be an array of strings like [\"${env:NAME}\"], not %s", typeName(v))
		return nil
	}
	out := make([]Secret, 0, len(arr))
	for i, e := range arr {
		item := fmt.Sprintf("%s[%d]", key, i)
		raw, isStr := e.(string)
		if !isStr {
			t.errf(item, "must be a string, not %s", typeName(e))
			continue
		}
		s := t.p.secret(t.at(item), raw)
		if s.IsSet() && s.String() == "[redacted]" {
			t.p.warnings = append(t.p.warnings, fmt.Sprintf("%s: the value is written in the file; in production use %s = [\"${env:NAME}\"]", t.at(item), key))
		}
		out = append(out, s)
	}
	return out
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
