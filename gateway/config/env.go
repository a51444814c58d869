package config

import "strings"

// envPrefix starts a reference to an environment variable. Only this form
// is special: plugin configs use `${json.path}` templates of their own, and
// those pass through untouched.
const envPrefix = "${env:"

// expand replaces every `${env:NAME}` in raw with the variable's value.
// A missing or empty variable, or a malformed reference, is a problem
// recorded under where; ok is false then.
func (p *parser) expand(where, raw string) (string, bool) {
	s, _, ok := p.expandSpans(where, raw)
	return s, ok
}

// envSpan is where one `${env:NAME}` went in an expanded string: s[start:end]
// is the variable's value, ref the reference as written.
type envSpan struct {
	start, end int
	ref        string
}

// expandSpans is expand that also says which bytes of the result came from
// the environment, so that a value assembled from literal text and secrets
// (a target URL) can be shown with every secret part redacted.
func (p *parser) expandSpans(where, raw string) (string, []envSpan, bool) {
	if !strings.Contains(raw, envPrefix) {
		return raw, nil, true
	}
	var spans []envSpan
	var b strings.Builder
	rest := raw
	ok := true
	for {
		i := strings.Index(rest, envPrefix)
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		rest = rest[i+len(envPrefix):]
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			p.addf("%s: %s is not closed (write ${env:NAME})", where, envPrefix)
			return "", nil, false
		}
		name := rest[:end]
		rest = rest[end+1:]
		if !validEnvName(name) {
			p.addf("%s: %q is not a valid environment variable name (use letters, digits and _)", where, name)
			ok = false
			continue
		}
		v, set := p.env(name)
		switch {
		case !set:
			p.addf("%s: environment variable %s is not set", where, name)
			ok = false
		case v == "":
			p.addf("%s: environment variable %s is set but empty", where, name)
			ok = false
		default:
			spans = append(spans, envSpan{start: b.Len(), end: b.Len() + len(v), ref: envPrefix + name + "}"})
			b.WriteString(v)
		}
	}
	if !ok {
		return "", nil, false
	}
	return b.String(), spans, true
}

// secret resolves a secret-typed value. Its redacted form is the reference
// when the value is exactly one `${env:NAME}`; anything with literal text
// redacts as "[redacted]", since the literal part may be the secret.
func (p *parser) secret(where, raw string) Secret {
	v, ok := p.expand(where, raw)
	if !ok {
		return Secret{}
	}
	source := ""
	if strings.HasPrefix(raw, envPrefix) && strings.IndexByte(raw, '}') == len(raw)-1 {
		source = raw
	}
	return NewSecret(v, source)
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
