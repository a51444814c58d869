package verify

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Types for Spec.Type.
const (
	TypeNone             = ""
	TypeHMAC             = "hmac"
	TypeTimestamped      = "timestamped"
	TypeStandardWebhooks = "standard-webhooks"
	TypeBasic            = "basic"
	TypeToken            = "token"
)

// Algorithms and encodings for TypeHMAC.
const (
	AlgorithmSHA256 = "sha256"
	AlgorithmSHA1   = "sha1"
	AlgorithmSHA512 = "sha512"
	EncodingHex     = "hex"
	EncodingBase64  = "base64"
)

// Defaults applied by New.
const (
	DefaultHMACHeader        = "X-Hookgate-Signature"
	DefaultTimestampedHeader = "Stripe-Signature"
	DefaultTolerance         = 5 * time.Minute
)

// maxCredential bounds the decoded basic credentials and query tokens
// Verify looks at; anything longer is refused without being decoded, so
// the scratch buffers never grow.
const maxCredential = 512

// Spec describes a route's verification. Fields that do not apply to the
// type must be left empty: New refuses them, because a field that is
// silently ignored is a check the operator believes in and does not get.
type Spec struct {
	Type      string        // type = "hmac" | "timestamped" | "standard-webhooks" | "basic" | "token"; "" = allow_ips only
	Secrets   []string      // secrets = ["${env:NEW}", "${env:OLD}"]: every secret currently accepted
	Header    string        // header = "X-Hub-Signature-256": hmac, timestamped, token
	Query     string        // query = "token": token sent as a query parameter instead of a header
	Prefix    string        // prefix = "sha256=": hmac and token (e.g. "Bearer ")
	Algorithm string        // algorithm = "sha256" | "sha1" | "sha512": hmac
	Encoding  string        // encoding = "hex" | "base64": hmac
	Tolerance time.Duration // tolerance = "5m": timestamped, standard-webhooks
	Username  string        // username = "howxm": basic
	AllowIPs  []string      // allow_ips = ["10.0.0.0/8", "192.0.2.7"]: any type
}

// String describes the spec without its secrets.
func (s Spec) String() string {
	return fmt.Sprintf("verify.Spec{Type:%q Secrets:[%d redacted] Header:%q Query:%q Prefix:%q Algorithm:%q Encoding:%q Tolerance:%s Username:%q AllowIPs:%q}",
		s.Type, len(s.Secrets), s.Header, s.Query, s.Prefix, s.Algorithm, s.Encoding, s.Tolerance, s.Username, s.AllowIPs)
}

// GoString redacts for %#v.
func (s Spec) GoString() string { return s.String() }

// Verifier checks requests against one Spec. It is safe for concurrent use.
type Verifier struct {
	typ     string
	header  []byte
	query   []byte
	prefix  []byte
	hexEnc  bool
	macSize int
	tol     int64 // seconds

	// hmac, timestamped, standard-webhooks: the keys, one MAC each in
	// every pooled scratch.
	keys    [][]byte
	newHash func() hash.Hash

	// basic, token: SHA-256 digests of the accepted values. Comparing
	// digests keeps the comparison constant-time in the secret's length
	// too, which subtle.ConstantTimeCompare on the raw values would not.
	digests [][sha256.Size]byte
	user    [sha256.Size]byte

	nets []netip.Prefix

	pool sync.Pool // *scratch
}

// scratch is one request's working memory, pooled so Verify allocates
// nothing once the pool is warm.
type scratch struct {
	macs []hash.Hash
	sums []byte // one MAC per secret (timestamped, standard-webhooks)
	sum  [sha512.Size]byte
	sig  [sha512.Size + 4]byte // base64 decoding needs room for the padding
	buf  [maxCredential]byte
}

// String names the verifier's type, never its secrets.
func (v *Verifier) String() string {
	return fmt.Sprintf("verify.Verifier{type:%q secrets:%d allow_ips:%d}", v.typ, max(len(v.keys), len(v.digests)), len(v.nets))
}

// GoString redacts for %#v, which would otherwise print the keys.
func (v *Verifier) GoString() string { return v.String() }

// SpecError is a Spec that New refuses. Field is the TOML name of the
// field at fault; the message says what to do. It never contains a secret.
type SpecError struct {
	Field string
	Msg   string
}

func (e *SpecError) Error() string { return "verify: " + e.Field + ": " + e.Msg }

func specErr(field, format string, args ...any) *SpecError {
	return &SpecError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// problems collects what New finds wrong with a spec, so an operator
// fixes a table in one pass instead of one problem per run.
type problems []error

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, specErr(field, format, args...))
}

// New validates spec and builds its Verifier. It reports every problem
// it finds, each a *SpecError (joined with errors.Join when several); an
// unknown type is reported alone, since what applies depends on it.
func New(spec Spec) (*Verifier, error) {
	v := &Verifier{typ: spec.Type}
	if err := checkType(spec.Type); err != nil {
		return nil, err
	}
	var ps problems
	checkFields(spec, &ps)
	for i, s := range spec.AllowIPs {
		p, err := parseNet(s)
		if err != nil {
			ps.add(fmt.Sprintf("allow_ips[%d]", i), "%q is neither an IP address nor a CIDR network: write it like \"10.0.0.0/8\" or \"192.0.2.7\"", s)
			continue
		}
		v.nets = append(v.nets, p)
	}
	if spec.Type != TypeNone && len(spec.Secrets) == 0 {
		ps.add("secrets", "type %q needs at least one secret: set secrets = [\"${env:NAME}\"]", spec.Type)
	}
	for i, s := range spec.Secrets {
		if s == "" {
			ps.add(fmt.Sprintf("secrets[%d]", i), "is empty: check that the environment variable it names is set")
		}
	}
	tol := spec.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	if tol < time.Second {
		ps.add("tolerance", "must be at least 1s (timestamps have one-second resolution); the default is 5m")
	}
	v.tol = int64(tol / time.Second)

	switch spec.Type {
	case TypeNone:
		if len(spec.AllowIPs) == 0 {
			ps.add("type", "is empty and allow_ips is empty, so nothing would be checked: set a type or allow_ips, or leave verify out")
		}
	case TypeHMAC:
		v.initHMAC(spec, &ps)
	case TypeTimestamped:
		v.header = []byte(cmpOr(spec.Header, DefaultTimestampedHeader))
		v.newHash, v.macSize, v.hexEnc = sha256.New, sha256.Size, true
		for _, s := range spec.Secrets {
			v.keys = append(v.keys, []byte(s))
		}
	case TypeStandardWebhooks:
		v.newHash, v.macSize = sha256.New, sha256.Size
		for i, s := range spec.Secrets {
			if s == "" {
				continue // reported above
			}
			key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
			if err != nil || len(key) == 0 {
				ps.add(fmt.Sprintf("secrets[%d]", i), "is not \"whsec_\" followed by base64: copy the signing secret exactly as the sender shows it")
				continue
			}
			v.keys = append(v.keys, key)
		}
	case TypeBasic:
		if spec.Username == "" || strings.ContainsRune(spec.Username, ':') {
			ps.add("username", "basic needs a username without ':': set username = \"...\"")
		}
		v.user = sha256.Sum256([]byte(spec.Username))
		v.digestSecrets(spec.Secrets)
	case TypeToken:
		if (spec.Header == "") == (spec.Query == "") {
			ps.add("header", "token needs exactly one of header (e.g. \"X-Api-Key\") or query (e.g. \"token\")")
		}
		if spec.Prefix != "" && spec.Query != "" {
			ps.add("prefix", "applies to a token in a header, not in a query parameter: remove it")
		}
		v.header, v.query, v.prefix = []byte(spec.Header), []byte(spec.Query), []byte(spec.Prefix)
		v.digestSecrets(spec.Secrets)
	}
	if len(ps) > 0 {
		return nil, errors.Join(ps...)
	}
	if len(v.keys) > 0 {
		v.pool.New = func() any {
			sc := &scratch{macs: make([]hash.Hash, len(v.keys)), sums: make([]byte, 0, len(v.keys)*v.macSize)}
			for i, k := range v.keys {
				sc.macs[i] = hmac.New(v.newHash, k)
			}
			return sc
		}
	} else {
		v.pool.New = func() any { return new(scratch) }
	}
	return v, nil
}

func (v *Verifier) initHMAC(spec Spec, ps *problems) {
	v.header, v.prefix = []byte(cmpOr(spec.Header, DefaultHMACHeader)), []byte(spec.Prefix)
	switch cmpOr(spec.Algorithm, AlgorithmSHA256) {
	case AlgorithmSHA256:
		v.newHash, v.macSize = sha256.New, sha256.Size
	case AlgorithmSHA1:
		v.newHash, v.macSize = sha1.New, sha1.Size
	case AlgorithmSHA512:
		v.newHash, v.macSize = sha512.New, sha512.Size
	default:
		ps.add("algorithm", "%q is not supported: use \"sha256\", \"sha1\" or \"sha512\"", spec.Algorithm)
	}
	switch cmpOr(spec.Encoding, EncodingHex) {
	case EncodingHex:
		v.hexEnc = true
	case EncodingBase64:
	default:
		ps.add("encoding", "%q is not supported: use \"hex\" or \"base64\"", spec.Encoding)
	}
	for _, s := range spec.Secrets {
		v.keys = append(v.keys, []byte(s))
	}
}

func (v *Verifier) digestSecrets(secrets []string) {
	for _, s := range secrets {
		v.digests = append(v.digests, sha256.Sum256([]byte(s)))
	}
}

// checkType refuses an unknown type.
func checkType(typ string) error {
	switch typ {
	case TypeNone, TypeHMAC, TypeTimestamped, TypeStandardWebhooks, TypeBasic, TypeToken:
		return nil
	}
	return specErr("type", "%q is not a verification type: use \"hmac\", \"timestamped\", \"standard-webhooks\", \"basic\" or \"token\"", typ)
}

// checkFields refuses the fields the type does not use.
func checkFields(spec Spec, ps *problems) {
	type field struct {
		name string
		set  bool
		used []string
	}
	fields := []field{
		{"header", spec.Header != "", []string{TypeHMAC, TypeTimestamped, TypeToken}},
		{"query", spec.Query != "", []string{TypeToken}},
		{"prefix", spec.Prefix != "", []string{TypeHMAC, TypeToken}},
		{"algorithm", spec.Algorithm != "", []string{TypeHMAC}},
		{"encoding", spec.Encoding != "", []string{TypeHMAC}},
		{"tolerance", spec.Tolerance != 0, []string{TypeTimestamped, TypeStandardWebhooks}},
		{"username", spec.Username != "", []string{TypeBasic}},
		{"secrets", len(spec.Secrets) > 0, []string{TypeHMAC, TypeTimestamped, TypeStandardWebhooks, TypeBasic, TypeToken}},
	}
	for _, f := range fields {
		if f.set && !slices.Contains(f.used, spec.Type) {
			ps.add(f.name, "does not apply to type %q: remove it, or use one of %q", spec.Type, f.used)
		}
	}
}

func parseNet(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		if p.Addr().Is4In6() && p.Bits() < 96 {
			return p, fmt.Errorf("an IPv4-mapped network shorter than /96")
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmapBits is what a prefix length loses when an IPv4-mapped IPv6
// network ("::ffff:10.0.0.0/104") is written as IPv4.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
