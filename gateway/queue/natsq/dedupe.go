package natsq

// Dedupe keys shared by every gateway on one stream.
//
// With the Pebble backend a route's dedupe memory (gateway/dedupe) lives
// in one process: a repeat that reaches another gateway behind the load
// balancer, or arrives after a restart, is delivered again. With the nats
// backend the keys live in the JetStream key-value bucket
// "<stream>_dedupe", so every gateway sees every other's.
//
// # Protocol
//
// A key's entry is one KV message: a state byte ('f' in flight, 'a'
// accepted) followed by the first copy's event id, with a per-message TTL
// (the Nats-TTL header; the bucket has LimitMarkerTTL, which allows it).
//
//  1. Begin claims the key as in flight with create-if-absent (the KV
//     Create, which publishes with Nats-Expected-Last-Subject-Sequence 0,
//     or the revision of a delete marker). JetStream checks the
//     expectation on the stream leader, so of two gateways claiming the
//     same key at once exactly one succeeds: that one is First. The loser
//     reads the entry: accepted is Duplicate (with the first event id),
//     in flight is InFlight (the caller answers 409, the sender retries).
//  2. Accept replaces the caller's claim with an accepted entry whose TTL
//     is the route's dedupe ttl, as a compare-and-set on the claim's
//     revision (Nats-Expected-Last-Subject-Sequence): it never overwrites
//     another event's claim.
//  3. Forget purges the caller's claim, compare-and-set on the same
//     revision, so the sender's retry is handled afresh.
//
// Why in flight first, rather than writing the accepted entry at once:
// between the claim and the 202 the event still has to be stored (the
// chain runs, the deliveries are published to the stream). If the gateway
// crashed, or the store failed, in between and the key were already
// "accepted", the sender's retry would be answered "duplicate" for an
// event that was never stored: it would be lost. An in-flight claim only
// makes the retry wait (409), and it expires on its own after inFlight
// (about a minute, as gateway/dedupe's inFlightLimit), so a gateway that
// died mid-request does not block the sender's retries for the whole TTL.
//
// Keys are stored as "<token of the route name>.<base64url of SHA-256 of
// the key>" (names.go has token): any bytes make a valid KV key of bounded length, no key
// material is kept, and each route's keys share a prefix.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookgate/hookgate/gateway/dedupe"
)

// ErrClaimLost is returned by Accept and Forget when the key is no longer
// claimed by the caller's event: its claim expired (the request outlived
// inFlight) and the key was since claimed by another event, accepted or
// forgotten. Nothing was changed.
var ErrClaimLost = errors.New("natsq: dedupe claim is no longer held by this event")

const (
	// dedupeInFlight is how long a claim lives without Accept or Forget:
	// longer than any ingest request lasts, short enough that a gateway
	// that died mid-request does not block the sender's retries for the
	// whole TTL. The same as gateway/dedupe's inFlightLimit.
	dedupeInFlight = time.Minute
	// dedupeTimeout bounds each call: NATS unreachable answers the sender
	// 503 in a few seconds rather than holding the request.
	dedupeTimeout = 3 * time.Second
	// dedupeMarkerTTL is how long the marker left by an expired or
	// forgotten key stays in the bucket (the server's minimum): nothing
	// reads it, and without a TTL each forgotten key would leave one
	// message behind forever.
	dedupeMarkerTTL = time.Second
	// Entry states, the first byte of a value.
	dedupeStateInFlight = 'f'
	dedupeStateAccepted = 'a'
	// claimsSweep is the number of local claims above which Begin drops
	// the expired ones (claims whose Accept or Forget never came).
	claimsSweep = 4096
)

// Dedupe is the dedupe memory shared by every gateway on a stream. It is
// safe for concurrent use.
type Dedupe struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	prefix string // the bucket's subject prefix, "$KV.<bucket>."

	// inFlight is how long a claim lives (dedupeInFlight; tests shorten it).
	inFlight time.Duration
	// timeout bounds each call (dedupeTimeout; tests shorten it).
	timeout time.Duration

	// claims are this gateway's claims, key and event id to revision:
	// Accept and Forget compare-and-set on the revision Begin got, with no
	// read first. A read right after the write could be answered by a
	// replica that has not applied it yet, and would cost a round trip.
	mu        sync.Mutex
	claims    map[string]claim
	sweepOver int
}

type claim struct {
	rev uint64
	at  time.Time
}

// newDedupe creates (or opens, and updates to this configuration) the
// key-value bucket "<stream>_dedupe" with replicas copies of each key.
func newDedupe(js jetstream.JetStream, stream string, replicas int) (*Dedupe, error) {
	bucket := stream + "_dedupe"
	ctx, cancel := context.WithTimeout(context.Background(), 2*dedupeTimeout)
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "hookgate dedupe keys of stream " + stream,
		History:     1,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
		// Allows a TTL per key (in flight: a minute; accepted: the
		// route's ttl); expired keys leave a marker for this long.
		LimitMarkerTTL: dedupeMarkerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("natsq: dedupe bucket %q: %w", bucket, err)
	}
	return &Dedupe{
		js:        js,
		kv:        kv,
		prefix:    "$KV." + bucket + ".",
		inFlight:  dedupeInFlight,
		timeout:   dedupeTimeout,
		claims:    make(map[string]claim),
		sweepOver: claimsSweep,
	}, nil
}

// Begin claims key (a route's dedupe key: any bytes) for eventID.
//
//   - First: claimed now, as in flight; the caller must call Accept once
//     the event is stored, or Forget if it fails before that.
//   - Duplicate: accepted earlier within the route's ttl; first is that
//     event's id.
//   - InFlight: another request, on this gateway or another, holds the
//     key right now; first is its event id when known. The caller asks
//     the sender to retry later (409).
//
// Begin again with the same eventID while its claim is in flight is First
// again: a call that timed out after the server stored the claim can be
// repeated.
//
// err: NATS unreachable, or no answer within the timeout (a few seconds);
// the caller answers 503 and must not look at first or seen.
func (d *Dedupe) Begin(route string, key, eventID []byte) (first []byte, seen dedupe.Seen, err error) {
	k := dedupeKey(route, key)
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	value := dedupeValue(dedupeStateInFlight, eventID)
	// A few rounds: the key can expire or be forgotten between our create
	// failing and our read (or the read is answered by a replica a little
	// behind the leader), and then we try to claim it again.
	for range 3 {
		rev, err := d.kv.Create(ctx, k, value, jetstream.KeyTTL(wholeSeconds(d.inFlight)))
		if err == nil {
			d.remember(k, eventID, rev)
			return nil, dedupe.First, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongLastSeq(err) {
			return nil, dedupe.First, fmt.Errorf("natsq: dedupe claim: %w", err)
		}
		e, err := d.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, dedupe.First, fmt.Errorf("natsq: dedupe read: %w", err)
		}
		v := e.Value()
		if len(v) == 0 {
			return nil, dedupe.InFlight, nil
		}
		if v[0] == dedupeStateAccepted {
			return v[1:], dedupe.Duplicate, nil
		}
		if string(v[1:]) == string(eventID) {
			// Our own claim: an earlier Begin for this event timed out
			// after the server had stored it. Begin is idempotent.
			d.remember(k, eventID, e.Revision())
			return nil, dedupe.First, nil
		}
		return v[1:], dedupe.InFlight, nil
	}
	// The key changed hands under us every time: others are handling it.
	return nil, dedupe.InFlight, nil
}

// Accept turns eventID's in-flight claim on key into an accepted entry
// that lives ttl (the route's dedupe ttl, rounded up to whole seconds; 0
// means dedupe.DefaultTTL). It changes nothing and returns ErrClaimLost
// when the claim is no longer eventID's.
func (d *Dedupe) Accept(route string, key, eventID []byte, ttl time.Duration) error {
	if ttl <= 0 {
		ttl = dedupe.DefaultTTL
	}
	k := dedupeKey(route, key)
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	rev, err := d.claimed(ctx, k, eventID)
	if err != nil {
		return err
	}
	for try := 1; ; try++ {
		msg := &nats.Msg{Subject: d.prefix + k, Data: dedupeValue(dedupeStateAccepted, eventID), Header: nats.Header{}}
		_, err = d.js.PublishMsg(ctx, msg,
			jetstream.WithExpectLastSequencePerSubject(rev),
			jetstream.WithMsgTTL(wholeSeconds(ttl)))
		if !isWrongLastSeq(err) || try == casTries {
			break
		}
		if rev, err = d.stillClaimed(ctx, k, eventID); err != nil {
			return err
		}
		casPause(ctx, try)
	}
	if isWrongLastSeq(err) {
		return ErrClaimLost
	}
	if err != nil {
		return fmt.Errorf("natsq: dedupe accept: %w", err)
	}
	return nil
}

// casTries bounds the compare-and-set writes of Accept and Forget. On a
// replicated bucket the server also refuses one (10164) for a while after
// another write to the same key was proposed: here, the losing gateway's
// claim, refused in turn. Seen with the key read back at exactly the
// revision the refused write expected, and the same write taken a few
// milliseconds later (TestDedupeCluster met it about once in 30 runs on a
// loaded machine). So a refusal is checked against the key, and tried
// again after a pause, before it means the claim was lost.
const casTries = 5

// casPause waits before compare-and-set try+1: 10, 40, 90, 160 ms, less
// than a second in all, within the call's timeout.
func casPause(ctx context.Context, try int) {
	t := time.NewTimer(time.Duration(try*try) * 10 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Forget removes eventID's in-flight claim on key, so the sender's retry
// is handled afresh. It changes nothing and returns ErrClaimLost when the
// claim is no longer eventID's.
func (d *Dedupe) Forget(route string, key, eventID []byte) error {
	k := dedupeKey(route, key)
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	rev, err := d.claimed(ctx, k, eventID)
	if err != nil {
		return err
	}
	lost := func(err error) bool { return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSeq(err) }
	for try := 1; ; try++ {
		err = d.kv.Purge(ctx, k, jetstream.LastRevision(rev), jetstream.PurgeTTL(dedupeMarkerTTL))
		if !lost(err) || try == casTries {
			break
		}
		if rev, err = d.stillClaimed(ctx, k, eventID); err != nil {
			return err
		}
		casPause(ctx, try)
	}
	if lost(err) {
		return ErrClaimLost
	}
	if err != nil {
		return fmt.Errorf("natsq: dedupe forget: %w", err)
	}
	return nil
}

// claimed returns the revision of eventID's claim on k: the one Begin got
// on this gateway, or else (a claim made through another Dedupe value)
// the entry read back, when it is eventID's claim.
func (d *Dedupe) claimed(ctx context.Context, k string, eventID []byte) (uint64, error) {
	if rev, ok := d.take(k, eventID); ok {
		return rev, nil
	}
	return d.stillClaimed(ctx, k, eventID)
}

// stillClaimed reads k back: the revision of eventID's claim on it, or
// ErrClaimLost when it is no longer eventID's claim.
func (d *Dedupe) stillClaimed(ctx context.Context, k string, eventID []byte) (uint64, error) {
	e, err := d.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, ErrClaimLost
	}
	if err != nil {
		return 0, fmt.Errorf("natsq: dedupe read: %w", err)
	}
	v := e.Value()
	if len(v) == 0 || v[0] != dedupeStateInFlight || string(v[1:]) != string(eventID) {
		return 0, ErrClaimLost
	}
	return e.Revision(), nil
}

func (d *Dedupe) remember(k string, eventID []byte, rev uint64) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.claims) >= d.sweepOver {
		// Claims never accepted nor forgotten (a caller's bug): the
		// server expired them after inFlight, so they can only fail.
		for c, v := range d.claims {
			if now.Sub(v.at) > d.inFlight {
				delete(d.claims, c)
			}
		}
		d.sweepOver = max(claimsSweep, 2*len(d.claims))
	}
	d.claims[claimID(k, eventID)] = claim{rev: rev, at: now}
}

func (d *Dedupe) take(k string, eventID []byte) (uint64, bool) {
	id := claimID(k, eventID)
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.claims[id]
	if ok {
		delete(d.claims, id)
	}
	return c.rev, ok
}

// claimID names one claim: a KV key (no NUL in it) and an event id.
func claimID(k string, eventID []byte) string {
	return k + "\x00" + string(eventID)
}

// dedupeKey is the KV key of route's dedupe key: the route name's token
// (names.go: route names may hold '.', a KV token separator), a dot, and
// the unpadded base64url SHA-256 of the key.
func dedupeKey(route string, key []byte) string {
	sum := sha256.Sum256(key)
	b := make([]byte, 0, len(route)+8+1+base64.RawURLEncoding.EncodedLen(len(sum)))
	b = appendToken(b, route)
	b = append(b, '.')
	b = base64.RawURLEncoding.AppendEncode(b, sum[:])
	return string(b)
}

func dedupeValue(state byte, eventID []byte) []byte {
	return append([]byte{state}, eventID...)
}

// wholeSeconds rounds d up to whole seconds, at least one: JetStream keeps
// a message TTL in whole seconds and truncates, which would make a key
// expire before the route's ttl.
func wholeSeconds(d time.Duration) time.Duration {
	s := (d + time.Second - 1) / time.Second * time.Second
	return max(s, time.Second)
}

// isWrongLastSeq reports a compare-and-set that failed: the key's last
// revision was not the one expected (10071; 10164 on replicated streams).
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
