package config

import (
	"net"
	"net/url"
	"strings"
)

// oauth2 reads the keys of auth = { type = "oauth2", ... }; need is the
// auth table's check for a required key.
func (p *parser) oauth2(t *table, a *Auth, need func(key, example string) bool) {
	if need("token_url", `"https://idp.example.com/oauth2/token"`) {
		a.TokenURL, a.TokenURLShown = p.tokenURL(t)
	}
	need("client_id", `"hookgate"`)
	need("client_secret", `"${env:CRM_CLIENT_SECRET}"`)
	switch a.AuthStyle {
	case "":
		a.AuthStyle = DefaultOAuth2AuthStyle
	case OAuth2StyleHeader, OAuth2StyleBody:
	default:
		t.errf("auth_style", "%q is not supported (use \"header\": HTTP Basic, which every token endpoint accepts, or \"body\": form fields)", a.AuthStyle)
	}
	for _, s := range a.Scopes {
		if !validScope(s) {
			t.errf("scopes", "%q is not one scope (list each scope as its own string, without spaces or quotes)", s)
		}
	}
}

// tokenURL reads token_url the way targetURL reads url: whatever came from
// the environment shows as its reference.
func (p *parser) tokenURL(t *table) (*url.URL, ShownURL) {
	raw, ok := t.rawString("token_url")
	if !ok {
		return nil, ShownURL{}
	}
	s, spans, ok := p.expandSpans(t.at("token_url"), raw)
	if !ok {
		return nil, ShownURL{}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		t.errf("token_url", "%q: not a valid URL", redactURL(raw))
	case u.User != nil:
		t.errf("token_url", "credentials in the URL are not allowed; they go in client_id and client_secret")
	case u.Scheme != "http" && u.Scheme != "https":
		t.errf("token_url", "%q: scheme must be https", raw)
	case u.Host == "":
		t.errf("token_url", "%q: has no host", raw)
	default:
		if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			t.p.warnings = append(t.p.warnings, t.at("token_url")+": is http, so the client secret and every token cross the network readable by anyone on the path; use https")
		}
		return u, showURL(s, spans)
	}
	return nil, ShownURL{}
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// validScope reports whether s is a scope-token of RFC 6749 section 3.3:
// printable ASCII but space, '"' and '\'.
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
