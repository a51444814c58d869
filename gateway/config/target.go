package config

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
)

func (p *parser) target(i int, m map[string]any) Target {
	t, name := p.named("target", i, m)
	u, shown := p.targetURL(t)
	tg := Target{
		Name:            name,
		URL:             u,
		Shown:           shown,
		Method:          strings.ToUpper(t.str("method", DefaultTargetMethod)),
		Headers:         t.secretMap("headers", "header"),
		Query:           t.secretMap("query", "query"),
		Timeout:         t.positive("timeout", DefaultTargetTimeout),
		MaxConns:        t.intOf("max_conns", DefaultTargetMaxConns, 1),
		MaxResponseSize: int(t.bytes("max_response_size", DefaultTargetMaxResponseSize, math.MaxInt32)),
		IdleTimeout:     t.positive("idle_timeout", DefaultTargetIdleTimeout),
		IDHeader:        t.str("id_header", DefaultIDHeader),
		Auth:            p.auth(t.sub("auth")),
		Retry:           p.retry(t.sub("retry")),
		Success:         p.success(t.sub("success")),
		RateLimit:       t.float("rate_limit", 0),
		Burst:           t.intOf("burst", 0, 0),
		Breaker:         p.breaker(t.sub("breaker")),
		TLS:             p.tls(t.sub("tls")),
		DisableAfter:    t.duration("disable_after", DefaultDisableAfter),
		Order:           t.str("order", ""),
		OrderKey:        t.str("order_key", ""),
		Pipeline:        t.intOf("pipeline", 0, 0),
	}
	p.order(t, &tg) // order.go
	if tg.TLS.IsSet() && u != nil && u.Scheme != "https" {
		t.errf("tls", "applies to https only, and url is %s (use an https url, or remove tls)", u.Scheme)
	}
	if !validMethod(tg.Method) {
		t.errf("method", "%q is not an HTTP method (use %s)", tg.Method, methodList)
	}
	seen := map[string]string{}
	for _, h := range slices.Sorted(maps.Keys(tg.Headers)) {
		switch lower := strings.ToLower(h); {
		case !validHeaderName(h):
			t.p.addf("%s: header %q is not a valid header name", t.where, h)
		case ownedHeader(h):
			t.p.addf("%s: header %q is set by hookgate and cannot be configured", t.where, h)
		case seen[lower] != "":
			t.p.addf("%s: header %q is also written as %q; header names ignore case, keep one", t.where, h, seen[lower])
		default:
			seen[lower] = h
		}
	}
	for _, q := range slices.Sorted(maps.Keys(tg.Query)) {
		if q == "" {
			t.p.addf("%s: query: a parameter name must not be empty", t.where)
		}
	}
	if tg.IDHeader != "" && (!validHeaderName(tg.IDHeader) || ownedHeader(tg.IDHeader)) {
		t.errf("id_header", "%q cannot carry the delivery id (use a header name such as %q; \"\" turns it off)", tg.IDHeader, DefaultIDHeader)
	}
	if tg.Pipeline > tg.MaxConns {
		t.errf("pipeline", "%d connections is more than max_conns = %d, the most connections to the target; lower it or raise max_conns", tg.Pipeline, tg.MaxConns)
	}
	if tg.RateLimit < 0 {
		t.errf("rate_limit", "must not be negative (0 means unlimited)")
		tg.RateLimit = 0
	}
	// A token bucket with no room never lets a delivery through, so burst 0
	// means "one second's worth".
	if tg.RateLimit > 0 && tg.Burst == 0 {
		tg.Burst = max(1, int(math.Ceil(tg.RateLimit)))
	}
	t.done()
	return tg
}

// targetURL reads and checks url, and works out how it may be printed.
// Messages quote what the file says, which for `${env:...}` is the
// reference, not the value.
func (p *parser) targetURL(t *table) (*url.URL, ShownURL) {
	raw, ok := t.rawString("url")
	if !ok {
		if !t.has("url") {
			t.errf("url", "is missing (e.g. url = \"https://crm.example.com/hooks\")")
		}
		return nil, ShownURL{}
	}
	s, spans, ok := p.expandSpans(t.at("url"), raw)
	if !ok {
		return nil, ShownURL{}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		// err repeats the URL, which may carry credentials: leave it out.
		t.p.addf("%s: url %q: not a valid URL", t.where, redactURL(raw))
	case u.User != nil:
		t.p.addf("%s: url: credentials in the URL are not allowed; use auth = { type = \"basic\", username = \"...\", password = \"${env:NAME}\" }", t.where)
	case u.Scheme != "http" && u.Scheme != "https":
		t.p.addf("%s: url %q: scheme must be http or https", t.where, raw)
	case u.Host == "":
		t.p.addf("%s: url %q: has no host", t.where, raw)
	default:
		return u, showURL(s, spans)
	}
	return nil, ShownURL{}
}

// redactURL hides anything between "://" and "@", where URL credentials go.
func redactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	if at := strings.LastIndexByte(s[i:], '@'); at > 0 {
		return s[:i+3] + "[redacted]" + s[i+at:]
	}
	return s
}

// authFields lists the keys each auth type uses, besides type.
var authFields = map[string][]string{
	AuthNone:             {},
	AuthBasic:            {"username", "password"},
	AuthBearer:           {"token"},
	AuthHeader:           {"header", "value"},
	AuthHMAC:             {"secret", "header", "prefix"},
	AuthStandardWebhooks: {"secret"},
	AuthOAuth2:           {"token_url", "client_id", "client_secret", "scopes", "audience", "auth_style"},
}

const authTypes = "none, basic, bearer, header, hmac, standard-webhooks or oauth2"

func (p *parser) auth(t *table) Auth {
	a := Auth{
		Type:     t.str("type", DefaultAuthType),
		Username: t.str("username", ""),
		Password: t.secret("password"),
		Token:    t.secret("token"),
		Header:   t.str("header", ""),
		Value:    t.secret("value"),
		Secret:   t.secret("secret"),
		Prefix:   t.str("prefix", ""),

		ClientID:     t.str("client_id", ""),
		ClientSecret: t.secret("client_secret"),
		Scopes:       t.strs("scopes"),
		Audience:     t.str("audience", ""),
		AuthStyle:    t.str("auth_style", ""),
	}
	for _, ks := range []struct {
		key string
		s   Secret
	}{{"password", a.Password}, {"token", a.Token}, {"value", a.Value}, {"secret", a.Secret}, {"client_secret", a.ClientSecret}} {
		t.literalSecret(ks.key, ks.s)
	}
	fields, ok := authFields[a.Type]
	if !ok {
		t.errf("type", "%q is not supported (use %s)", a.Type, authTypes)
		t.done()
		return a
	}
	for _, k := range []string{"username", "password", "token", "header", "value", "secret", "prefix",
		"token_url", "client_id", "client_secret", "scopes", "audience", "auth_style"} {
		if t.has(k) && !contains(fields, k) {
			uses := "no other keys"
			if len(fields) > 0 {
				uses = strings.Join(fields, ", ")
			}
			t.p.addf("%s: key %q does not apply to type %q (it uses %s)", t.where, k, a.Type, uses)
		}
	}
	// need reports a required key that is absent or written as "".
	need := func(key, example string) bool {
		v, present := t.m[key]
		switch {
		case !present:
			t.p.addf("%s: type %q needs %s (e.g. %s = %s)", t.where, a.Type, key, key, example)
			return false
		case v == "":
			t.errf(key, "must not be empty")
			return false
		}
		return true
	}
	switch a.Type {
	case AuthBasic:
		need("username", `"hookgate"`)
		need("password", `"${env:CRM_PASSWORD}"`)
	case AuthBearer:
		need("token", `"${env:SMS_TOKEN}"`)
	case AuthHeader:
		if need("header", `"X-Api-Key"`) && !validHeaderName(a.Header) {
			t.errf("header", "%q is not a valid header name", a.Header)
		}
		need("value", `"${env:CRM_API_KEY}"`)
	case AuthHMAC:
		need("secret", `"${env:CRM_SIGNING_SECRET}"`)
		if a.Header == "" {
			a.Header = DefaultHMACHeader
		} else if !validHeaderName(a.Header) {
			t.errf("header", "%q is not a valid header name", a.Header)
		}
	case AuthStandardWebhooks:
		if need("secret", `"${env:COUPONS_WEBHOOK_SECRET}"`) && a.Secret.IsSet() && !validWhsec(a.Secret.Reveal()) {
			// Never quote the value: it is the secret.
			t.errf("secret", "must be \"whsec_\" followed by base64, as Standard Webhooks secrets are issued")
		}
	case AuthOAuth2:
		p.oauth2(t, &a, need)
	}
	t.done()
	return a
}

func validWhsec(s string) bool {
	rest, ok := strings.CutPrefix(s, "whsec_")
	if !ok || rest == "" {
		return false
	}
	_, err := base64.StdEncoding.DecodeString(rest)
	return err == nil
}

func (p *parser) retry(t *table) Retry {
	r := Retry{
		MaxAttempts: t.intOf("max_attempts", DefaultRetryMaxAttempts, 1),
		Initial:     t.positive("initial", DefaultRetryInitial),
		Max:         t.positive("max", DefaultRetryMax),
		MaxAge:      t.duration("max_age", DefaultRetryMaxAge),
		Jitter:      t.float("jitter", DefaultRetryJitter),
	}
	if r.Max < r.Initial {
		t.errf("max", "%s must not be less than initial (%s)", r.Max, r.Initial)
	}
	if r.Jitter < 0 || r.Jitter > 1 {
		t.errf("jitter", "%v is out of range (use 0 to 1, a fraction of each interval)", r.Jitter)
		r.Jitter = DefaultRetryJitter
	}
	t.done()
	return r
}

func (p *parser) success(t *table) Success {
	s := Success{
		Status:        t.ints("status"),
		JSONPath:      t.str("json_path", ""),
		JSONEquals:    t.str("json_equals", ""),
		RetryOnFailed: t.boolean("retry_body_failure", false),
	}
	for _, st := range s.Status {
		if st < 100 || st > 599 {
			t.errf("status", "%d is not an HTTP status (use 100 to 599)", st)
		}
	}
	switch {
	case s.JSONPath != "" && s.JSONEquals == "":
		t.errf("json_equals", "is missing: json_path needs the JSON value that means success (e.g. json_equals = \"true\")")
	case s.JSONPath == "" && s.JSONEquals != "":
		t.errf("json_path", "is missing: json_equals needs the path it checks (e.g. json_path = \"status\")")
	case s.JSONEquals != "" && !json.Valid([]byte(s.JSONEquals)):
		t.errf("json_equals", "%q is not a JSON value (write raw JSON: \"true\", \"1\" or \"\\\"ok\\\"\")", s.JSONEquals)
	}
	t.done()
	return s
}

func (p *parser) breaker(t *table) Breaker {
	b := Breaker{
		Failures: t.intOf("failures", DefaultBreakerFailures, 0),
		Cooldown: t.positive("cooldown", DefaultBreakerCooldown),
	}
	t.done()
	return b
}

// ownedHeader reports the headers the HTTP framing or hookgate itself
// writes (the same list gateway/target enforces), so `hookgate check`
// rejects them rather than the first start.
func ownedHeader(h string) bool {
	switch strings.ToLower(h) {
	case "host", "content-length", "connection", "transfer-encoding", "keep-alive",
		"te", "trailer", "upgrade", "proxy-connection", "proxy-authorization":
		return true
	}
	return false
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
