package transforms

// What a guest writes into a request is checked before it is kept: values
// often come from the event's payload, and a CR or LF in a header would let
// a sender inject headers into the request hookgate makes to a target.

// isToken reports whether b is an HTTP token (RFC 9110 tchar+): a header
// name or a method.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '!', c == '#', c == '$', c == '%', c == '&', c == '\'', c == '*',
			c == '+', c == '-', c == '.', c == '^', c == '_', c == '`', c == '|', c == '~':
		default:
			return false
		}
	}
	return true
}

// isFieldValue reports whether b may be a header value: no CR, LF or NUL
// (other control characters are left to the HTTP client).
func isFieldValue(b []byte) bool {
	for _, c := range b {
		if c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// isPath reports whether b may be a request path: it starts with '/' and
// has no space, control character, '?' or '#' (the query is set with
// set_query, so a path cannot smuggle one past the target's static query).
func isPath(b []byte) bool {
	if len(b) == 0 || b[0] != '/' {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c == 0x7f || c == '?' || c == '#' {
			return false
		}
	}
	return true
}
