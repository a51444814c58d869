package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hookgate/hookgate/gateway/dedupe"
	"github.com/hookgate/hookgate/gateway/verify"
)

// verify reads a route's `verify = { ... }` table. The verify package is
// the judge of what a valid spec is: the spec goes through verify.New and
// every problem it finds is reported under the key it names, beside what
// the reader found (specProblems). allow_ips lives here, not on the
// route, so everything that decides who may send to a route is in one
// table.
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
	if _, err := verify.New(v.Spec()); err != nil {
		p.specProblems(t, before, err)
		return v
	}
	if len(p.problems) > before {
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
		Fallback:   t.str("fallback", ""),
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
	if d.Fallback != "" && !validHeaderName(d.Fallback) {
		t.errf("fallback", "%q is not a valid header name", d.Fallback)
	}
	t.done()
	if _, err := dedupe.New(d.Spec()); err != nil {
		p.specProblems(t, before, err)
		return d
	}
	if len(p.problems) > before {
		return d
	}
	if len(d.JSON) > 0 && !routeJSON {
		p.warnings = append(p.warnings, fmt.Sprintf("%s: json keys are read from the body, but the route accepts bodies that are not JSON (json = false), and those are never deduplicated; set json = true on the route", t.where))
	}
	return d
}

// specProblems reports each problem verify.New or dedupe.New found (they
// join every one) under the key it names. A key the reader has already
// reported since before (a missing environment variable, a value of the
// wrong type) is skipped: New would only see its empty stand-in and say
// the same thing, vaguer, a second time.
func (p *parser) specProblems(t *table, before int, err error) {
	read := slices.Clone(p.problems[before:])
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var field, msg string
		var ve *verify.SpecError
		var de *dedupe.SpecError
		switch {
		case errors.As(e, &ve):
			field, msg = ve.Field, ve.Msg
		case errors.As(e, &de):
			field, msg = de.Field, de.Msg
		default:
			p.addf("%s: %v", t.where, e)
			continue
		}
		key := t.at(field)
		if i := strings.IndexByte(field, '['); i >= 0 {
			key = t.at(field[:i]) // secrets[1]: any problem of secrets
		}
		if slices.ContainsFunc(read, func(r string) bool {
			return strings.HasPrefix(r, key+":") || strings.HasPrefix(r, key+"[")
		}) {
			continue
		}
		t.errf(field, "%s", msg)
	}
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
