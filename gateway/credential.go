package gateway

import (
	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/verify"
)

// Credential is where a route's sender puts its credential for hookgate:
// the Authorization header (verify basic), or the token's header or query
// parameter (verify token). Ingest takes it out of every event, so neither
// plugins nor targets ever see it; the admin route test builds its event
// with the same Credential, so a test send strips exactly what ingest
// strips. Signatures are not credentials and stay.
type Credential struct {
	header []byte // nil if none
	query  []byte // nil if none
}

// RouteCredential is rc's Credential; zero when rc does not verify a
// credential.
func RouteCredential(rc *config.Route) (Credential, error) {
	if rc.Verify == nil {
		return Credential{}, nil
	}
	v, err := verify.New(rc.Verify.Spec())
	if err != nil {
		return Credential{}, err
	}
	return credentialOf(v), nil
}

func credentialOf(v *verify.Verifier) Credential {
	var c Credential
	h, q := v.Credential()
	if h != "" {
		c.header = []byte(h)
	}
	if q != "" {
		c.query = []byte(q)
	}
	return c
}

// IsHeader reports whether the header named name is the credential.
func (c Credential) IsHeader(name []byte) bool {
	return c.header != nil && delivery.EqualFold(name, c.header)
}

// AppendQuery appends the raw query q (no '?') without the credential
// parameter.
func (c Credential) AppendQuery(dst, q []byte) []byte {
	if c.query == nil {
		return append(dst, q...)
	}
	return delivery.AppendQueryWithout(dst, q, c.query)
}
