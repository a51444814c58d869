package natsq

import "strings"

// Names. One queue configuration ([queue.nats] stream = S) owns:
//
//	stream  S             work queue; subjects S.q.<target>, one per target, and
//	                      S.q.<target>.<key token> per key of ordered deliveries (fifo.go)
//	stream  S_dead        dead letters; subjects S_dead.<target>.<route>.<delivery id>
//	bucket  S_attempts    recorded attempts of pending deliveries, key <delivery id>
//	bucket  S_state       each target's delivery state (dispatch), key <target>
//	consumer t_<target>   on S: the durable pull consumer every gateway shares
//	consumer n_<target>   on S_dead: counts the target's dead letters (never delivers)
//
// (presence.go and dedupe.go add S.wake.>, S_gateways and S_dedupe;
// fifo.go the core-NATS subjects S.fifo.<target>.<key token>.)
//
// Target and route names and delivery ids may hold '.', which separates
// subject tokens, and other bytes that subjects, consumer names or
// key-value keys refuse. token encodes them so every name is valid in all
// three: bytes in [A-Za-z0-9_-] stay as they are (names stay readable in
// `nats stream subjects`), every other byte becomes '=' and two upper-case
// hex digits ("evt_01J.0" -> "evt_01J=2E0"), and the empty name is "=".
// The encoding is one-to-one, so a token decodes back to its name.

const hexDigits = "0123456789ABCDEF"

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// appendToken appends the encoding of name to dst.
func appendToken(dst []byte, name string) []byte {
	if name == "" {
		return append(dst, '=')
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if plain(c) {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '=', hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}

func token(name string) string { return string(appendToken(nil, name)) }

// untoken decodes a token; ok is false for text token never produces.
func untoken(tok string) (string, bool) {
	if tok == "=" {
		return "", true
	}
	out := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '=' {
			if !plain(c) {
				return "", false
			}
			out = append(out, c)
			continue
		}
		if i+2 >= len(tok) {
			return "", false
		}
		hi, lo := strings.IndexByte(hexDigits, tok[i+1]), strings.IndexByte(hexDigits, tok[i+2])
		if hi < 0 || lo < 0 {
			return "", false
		}
		out = append(out, byte(hi<<4|lo))
		i += 2
	}
	return string(out), len(out) > 0
}

type names struct {
	work, dead         string // stream names
	workPrefix         string // "S.q."
	deadPrefix         string // "S_dead."
	attempts, state    string // bucket names
	consumerNamePrefix string
}

func newNames(stream string) names {
	return names{
		work:               stream,
		dead:               stream + "_dead",
		workPrefix:         stream + ".q.",
		deadPrefix:         stream + "_dead.",
		attempts:           stream + "_attempts",
		state:              stream + "_state",
		consumerNamePrefix: "t_",
	}
}

func (n *names) workSubject(target string) string { return n.workPrefix + token(target) }

func (n *names) consumer(target string) string { return n.consumerNamePrefix + token(target) }

func (n *names) deadCounter(target string) string { return "n_" + token(target) }

func (n *names) deadSubject(target, route string, id []byte) string {
	b := make([]byte, 0, len(n.deadPrefix)+len(target)+len(route)+len(id)+8)
	b = append(b, n.deadPrefix...)
	b = appendToken(b, target)
	b = append(b, '.')
	b = appendToken(b, route)
	b = append(b, '.')
	b = appendToken(b, string(id))
	return string(b)
}

// deadFilter is the subject filter of the dead letters of a target and/or
// route ("" matches any), and of one delivery id when id is not "".
func (n *names) deadFilter(target, route, id string) string {
	tok := func(s string) string {
		if s == "" {
			return "*"
		}
		return token(s)
	}
	return n.deadPrefix + tok(target) + "." + tok(route) + "." + tok(id)
}
