package gateway

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Event ids are "evt_" + 26 characters of Crockford base32 (lower case)
// encoding 128 bits, laid out like a ULID: 48 bits of Unix milliseconds,
// then 80 bits that are 40 bits of a per-process sequence and 40 random
// bits. The time prefix makes ids sort by arrival; the sequence makes
// them unique within a process without a lock; the random bits (and the
// sequence's random start) keep processes apart.
const (
	eventIDPrefix = "evt_"
	eventIDLen    = len(eventIDPrefix) + 26
	crockford     = "0123456789abcdefghjkmnpqrstvwxyz"
)

var eventSeq atomic.Uint64

func init() {
	// A random start so two processes started in the same millisecond do
	// not walk the same sequence.
	eventSeq.Store(rand.Uint64())
}

// NewEventID returns a new event id, for tools that make events outside
// ingest (hookgate try, test sends).
func NewEventID() []byte { return appendEventID(make([]byte, 0, eventIDLen), time.Now()) }

// appendEventID appends a new event id to dst. It allocates nothing when
// dst has room for eventIDLen more bytes.
func appendEventID(dst []byte, now time.Time) []byte {
	ms := uint64(now.UnixMilli()) & (1<<48 - 1)
	seq := eventSeq.Add(1) & (1<<40 - 1)
	rnd := rand.Uint64() & (1<<40 - 1)
	hi := ms<<16 | seq>>24
	lo := (seq&(1<<24-1))<<40 | rnd

	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	dst = append(dst, eventIDPrefix...)
	return append(dst, out[:]...)
}

// appendDeliveryID appends the id of delivery i of an event: the event id,
// a dot and the index, so a target can deduplicate retries per delivery.
func appendDeliveryID(dst, eventID []byte, i int) []byte {
	dst = append(dst, eventID...)
	dst = append(dst, '.')
	return appendInt(dst, i)
}

func appendInt(dst []byte, n int) []byte {
	if n < 0 {
		dst = append(dst, '-')
		n = -n
	}
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}
