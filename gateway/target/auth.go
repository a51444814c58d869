package target

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/valyala/fasthttp"
)

// Standard Webhooks header names (https://www.standardwebhooks.com).
var (
	headerWebhookID        = []byte("webhook-id")
	headerWebhookTimestamp = []byte("webhook-timestamp")
	headerWebhookSignature = []byte("webhook-signature")
	headerAuthorization    = []byte("Authorization")
)

// signer applies one target's outbound auth. Everything that does not
// depend on the request is computed once in newSigner.
type signer struct {
	kind string

	// basic, bearer, header: the whole header, fixed.
	key, value []byte

	// hmac, standard-webhooks.
	sigHeader []byte // hmac: where the digest goes
	prefix    []byte // hmac: written before the hex digest
	pool      *sync.Pool
}

// scratch is one signing state: a keyed HMAC and the buffers its output
// is encoded into. Pooled per client so signing allocates nothing.
type scratch struct {
	mac hash.Hash
	sum []byte
	out []byte
	ts  []byte
}

func newScratch(secret []byte) *scratch {
	return &scratch{
		mac: hmac.New(sha256.New, secret),
		sum: make([]byte, 0, sha256.Size),
		out: make([]byte, 0, 128),
		ts:  make([]byte, 0, 20),
	}
}

func newSigner(a config.Auth) (signer, error) {
	s := signer{kind: a.Type}
	switch a.Type {
	case config.AuthNone:
	case config.AuthBasic:
		if a.Username == "" {
			return s, errors.New("basic needs a username")
		}
		token := base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password.Reveal()))
		s.key, s.value = headerAuthorization, []byte("Basic "+token)
	case config.AuthBearer:
		if !a.Token.IsSet() {
			return s, errors.New("bearer needs a token")
		}
		s.key, s.value = headerAuthorization, []byte("Bearer "+a.Token.Reveal())
	case config.AuthHeader:
		if a.Header == "" || !a.Value.IsSet() {
			return s, errors.New("header needs a header name and a value")
		}
		s.key, s.value = []byte(a.Header), []byte(a.Value.Reveal())
	case config.AuthHMAC:
		if !a.Secret.IsSet() {
			return s, errors.New("hmac needs a secret")
		}
		header := a.Header
		if header == "" {
			header = config.DefaultHMACHeader
		}
		s.sigHeader, s.prefix = []byte(header), []byte(a.Prefix)
		s.pool = scratchPool([]byte(a.Secret.Reveal()))
	case config.AuthStandardWebhooks:
		key, err := decodeWebhookSecret(a.Secret.Reveal())
		if err != nil {
			return s, err
		}
		s.pool = scratchPool(key)
	case config.AuthOAuth2:
		// The token is the Client's tokenSource's; Do sets the header.
	default:
		return s, fmt.Errorf("unknown type %q (want none, basic, bearer, header, hmac, standard-webhooks or oauth2)", a.Type)
	}
	return s, nil
}

func scratchPool(secret []byte) *sync.Pool {
	return &sync.Pool{New: func() any { return newScratch(secret) }}
}

// decodeWebhookSecret turns "whsec_<base64>" into the HMAC key.
func decodeWebhookSecret(secret string) ([]byte, error) {
	if secret == "" {
		return nil, errors.New("standard-webhooks needs a secret (whsec_...)")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		// Never echo the secret or the decoder's offset into it.
		return nil, errors.New("standard-webhooks secret must be whsec_ followed by base64")
	}
	return key, nil
}

// apply writes the auth headers of one request. Headers copy their
// values, so the scratch goes back to the pool before apply returns. With
// show it writes what Describe shows instead: Redacted for a credential,
// Computed for what is computed per attempt (signatures, timestamps).
func (s *signer) apply(req *fasthttp.Request, d *delivery.Delivery, now func() time.Time, show bool) {
	switch s.kind {
	case config.AuthBasic, config.AuthBearer, config.AuthHeader:
		if show {
			req.Header.SetBytesK(s.key, Redacted)
			return
		}
		req.Header.SetBytesKV(s.key, s.value)
	case config.AuthOAuth2:
		if show {
			// The token is fetched when sent and never shown; Describe
			// fetches nothing.
			req.Header.SetBytesK(headerAuthorization, Computed)
		}
	case config.AuthHMAC:
		if show {
			req.Header.SetBytesK(s.sigHeader, Computed)
			return
		}
		sc := s.pool.Get().(*scratch)
		req.Header.SetBytesKV(s.sigHeader, sc.signHMAC(s.prefix, d.Body))
		s.pool.Put(sc)
	case config.AuthStandardWebhooks:
		req.Header.SetBytesKV(headerWebhookID, d.ID)
		if show {
			req.Header.SetBytesK(headerWebhookTimestamp, Computed)
			req.Header.SetBytesK(headerWebhookSignature, Computed)
			return
		}
		sc := s.pool.Get().(*scratch)
		sc.ts = strconv.AppendInt(sc.ts[:0], now().Unix(), 10)
		req.Header.SetBytesKV(headerWebhookTimestamp, sc.ts)
		req.Header.SetBytesKV(headerWebhookSignature, sc.signStandardWebhooks(d.ID, sc.ts, d.Body))
		s.pool.Put(sc)
	}
}

// signHMAC returns prefix + hex(HMAC-SHA256(secret, body)), valid until
// the next use of sc.
func (sc *scratch) signHMAC(prefix, body []byte) []byte {
	sc.mac.Reset()
	sc.mac.Write(body)
	sc.sum = sc.mac.Sum(sc.sum[:0])
	sc.out = append(sc.out[:0], prefix...)
	sc.out = hex.AppendEncode(sc.out, sc.sum)
	return sc.out
}

// signStandardWebhooks returns "v1," + base64(HMAC-SHA256(key, id "." ts
// "." body)), valid until the next use of sc.
func (sc *scratch) signStandardWebhooks(id, ts, body []byte) []byte {
	sc.mac.Reset()
	sc.mac.Write(id)
	sc.mac.Write(dot)
	sc.mac.Write(ts)
	sc.mac.Write(dot)
	sc.mac.Write(body)
	sc.sum = sc.mac.Sum(sc.sum[:0])
	sc.out = append(sc.out[:0], "v1,"...)
	sc.out = base64.StdEncoding.AppendEncode(sc.out, sc.sum)
	return sc.out
}

var dot = []byte(".")
