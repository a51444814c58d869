package verify

import (
	"strings"
	"testing"
)

// TestAdvice: every refusal tells the sender what to do next, in its own
// words: a stale timestamp is a clock or a replay, not a wrong secret, and
// an address outside allow_ips is not fixed by any secret.
func TestAdvice(t *testing.T) {
	all := []*Error{ErrMissingSignature, ErrMissingCredentials, ErrMalformedHeader, ErrBadSignature, ErrBadCredentials, ErrTimestampTolerance, ErrIPNotAllowed}
	seen := map[string]string{}
	for _, e := range all {
		if e.Advice == "" {
			t.Errorf("%s has no advice", e.Reason)
			continue
		}
		if other, dup := seen[e.Advice]; dup {
			t.Errorf("%s and %s give the same advice %q", e.Reason, other, e.Advice)
		}
		seen[e.Advice] = e.Reason
		if e.Error() != "verify: request refused: "+e.Reason {
			t.Errorf("Error() = %q: the advice is for the sender, not the error text", e.Error())
		}
	}
	mentions := map[*Error][]string{
		ErrTimestampTolerance: {"clock", "replay", "freshly signed"},
		ErrIPNotAllowed:       {"address", "allow_ips", "proxy"},
		ErrBadSignature:       {"secret", "body"},
		ErrBadCredentials:     {"credentials"},
	}
	for e, words := range mentions {
		for _, w := range words {
			if !strings.Contains(e.Advice, w) {
				t.Errorf("%s advice %q does not mention %q", e.Reason, e.Advice, w)
			}
		}
	}
	for _, e := range []*Error{ErrTimestampTolerance, ErrIPNotAllowed} {
		if strings.Contains(e.Advice, "secret") {
			t.Errorf("%s advice %q sends the sender after its secret, which is not the problem", e.Reason, e.Advice)
		}
	}
}
