package config

import (
	"net/url"
	"strings"
)

// Redacted stands for a value that must not be printed.
const Redacted = "[redacted]"

// ShownURL is a target's URL as it may be printed: in the admin API, log
// lines, error messages, dead letters and `hookgate try`. The loader
// computes it once, from the url as written and where each `${env:NAME}`
// went in it, so every part that came from the environment shows as its
// reference: a Slack, Discord or Teams webhook URL carries its secret in
// the path, and `url = "${env:SLACK_URL}"` shows as just that. The values
// of the URL's own query show as "[redacted]" (a literal one may be a
// token) unless a value is exactly one `${env:NAME}`, and user info shows
// as "[redacted]".
type ShownURL struct {
	Origin string      // "https://hooks.slack.com": scheme://host[:port]
	Path   string      // "/services/${env:SLACK_HOOK}": as written, escaped; "/" when the URL has none
	Query  []ShownPair // the URL's own query pairs, in order
}

// ShownPair is one pair of the URL's own query, as it may be printed.
type ShownPair struct {
	Key   string // decoded; a query table key or a delivery's key equal to it replaces the pair
	Value string // "[redacted]" or the `${env:NAME}` it came from
}

// String is the whole URL, e.g. "https://hooks.slack.com/services/${env:SLACK_HOOK}".
func (s ShownURL) String() string {
	var b strings.Builder
	b.WriteString(s.Origin)
	b.WriteString(s.Path)
	for i, q := range s.Query {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(q.Key))
		b.WriteByte('=')
		b.WriteString(q.Value) // a placeholder, not escaped so that it reads as one
	}
	return b.String()
}

// PrintableURL is t.Shown, or for a Target built by hand (not loaded, so
// nothing came from the environment) the same rules applied to URL.
func (t *Target) PrintableURL() ShownURL {
	if t.Shown.Origin != "" || t.URL == nil {
		return t.Shown
	}
	return showURL(t.URL.String(), nil)
}

// showURL is the ShownURL of s, a URL that url.Parse accepted with an
// http or https scheme and a host, whose bytes spans came from the
// environment. It cuts s where url.Parse does (fragment, query, authority,
// path) and writes each part as it was written, each span as its
// reference; a span that runs on into a later part (a whole URL from one
// variable) is shown once, in the part where it starts.
func showURL(s string, spans []envSpan) ShownURL {
	end := len(s)
	if i := strings.IndexByte(s, '#'); i >= 0 {
		end = i // never sent
	}
	pathEnd, queryStart := end, end
	if i := strings.IndexByte(s[:end], '?'); i >= 0 {
		pathEnd, queryStart = i, i+1
	}
	hostStart := 0
	if i := strings.Index(s[:pathEnd], "://"); i >= 0 {
		hostStart = i + 3
	}
	pathStart := pathEnd
	if i := strings.IndexByte(s[hostStart:pathEnd], '/'); i >= 0 {
		pathStart = hostStart + i
	}

	var out ShownURL
	if at := strings.LastIndexByte(s[hostStart:pathStart], '@'); at >= 0 {
		out.Origin = shownPart(s, spans, 0, hostStart) + Redacted + shownPart(s, spans, hostStart+at, pathStart)
	} else {
		out.Origin = shownPart(s, spans, 0, pathStart)
	}
	out.Path = shownPart(s, spans, pathStart, pathEnd)
	if pathStart == pathEnd {
		out.Path = "/" // what the client sends for a URL without a path
	}
	for pos := queryStart; pos < end; {
		pairEnd := end
		if i := strings.IndexByte(s[pos:end], '&'); i >= 0 {
			pairEnd = pos + i
		}
		start := pos
		pos = pairEnd + 1
		if start == pairEnd || within(spans, start, pairEnd) {
			continue // empty, or all inside a variable shown before
		}
		keyEnd := pairEnd
		if i := strings.IndexByte(s[start:pairEnd], '='); i >= 0 {
			keyEnd = start + i
		}
		key := shownPart(s, spans, start, keyEnd)
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		value := Redacted
		for _, sp := range spans {
			if sp.start == keyEnd+1 && sp.end == pairEnd {
				value = sp.ref
			}
		}
		out.Query = append(out.Query, ShownPair{Key: key, Value: value})
	}
	return out
}

// shownPart is s[a:b] with every span that starts in it replaced by its
// reference, and the bytes of spans that started before a left out.
func shownPart(s string, spans []envSpan, a, b int) string {
	var out strings.Builder
	pos := a
	for _, sp := range spans {
		if sp.end <= pos || sp.start >= b {
			continue
		}
		if sp.start >= pos {
			out.WriteString(s[pos:sp.start])
			out.WriteString(sp.ref)
		}
		pos = sp.end
	}
	if pos < b {
		out.WriteString(s[pos:b])
	}
	return out.String()
}

// within reports whether s[a:b] lies inside one span that started before a.
func within(spans []envSpan, a, b int) bool {
	for _, sp := range spans {
		if sp.start < a && sp.end >= b {
			return true
		}
	}
	return false
}

// HarmlessHeader reports whether a configured header's literal value may
// be shown: these describe the body or the caller's software, not who is
// calling. Every other literal header value is redacted, since it may be
// an API key.
func HarmlessHeader(name string) bool {
	switch strings.ToLower(name) {
	case "content-type", "accept", "user-agent", "content-language":
		return true
	}
	return false
}

// ShownHeader is a configured header's value as it may be printed: a
// harmless header's literal value in clear, otherwise the Secret's
// redacted form.
func ShownHeader(name string, v Secret) string {
	if v.source == "" && HarmlessHeader(name) {
		return v.value
	}
	return v.String()
}
