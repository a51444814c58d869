package natsq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
)

// Enqueue publishes every delivery and returns nil once the stream has
// acknowledged all of them. The publishes go out together and their
// acknowledgements are awaited together, so an event with several
// deliveries costs one round trip, not one per delivery. A refusal for the
// stream's limits wraps queue.ErrFull; servers that cannot be reached or
// do not answer within Options.Timeout return another error (ingest
// answers 503 queue_unavailable either way, with Retry-After).
func (e *Engine) Enqueue(ds []delivery.Delivery) error {
	if e.closed.Load() {
		return queue.ErrClosed
	}
	if len(ds) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	enq := strconv.FormatInt(now, 10)
	futs := make([]jetstream.PubAckFuture, 0, len(ds))
	var failed error
	for i := range ds {
		d := &ds[i]
		m := nats.NewMsg(e.n.workSubject(d.Target))
		m.Data = queue.AppendRecord(nil, d)
		m.Header.Set(jetstream.MsgIDHeader, string(d.ID))
		m.Header.Set(hEnqueued, enq)
		if d.NotBefore > now {
			m.Header.Set(hDue, strconv.FormatInt(d.NotBefore, 10))
		}
		f, err := e.js.PublishMsgAsync(m, jetstream.WithExpectStream(e.n.work))
		if err != nil {
			failed = err
			break
		}
		futs = append(futs, f)
	}
	var stored []uint64
	timeout := time.NewTimer(e.opts.Timeout + time.Second)
	defer timeout.Stop()
wait:
	for _, f := range futs {
		select {
		case ack := <-f.Ok():
			stored = append(stored, ack.Sequence)
		case err := <-f.Err():
			if failed == nil || isFull(err) {
				failed = err
			}
		case <-timeout.C:
			// The publish timeout (Options.Timeout) should have answered
			// first; this bounds Enqueue even if it did not.
			failed = errors.New("no acknowledgement in time")
			break wait
		}
	}
	if failed == nil {
		e.wakeOthers(ds)
		return nil
	}
	if len(stored) > 0 {
		e.unstore(stored)
	}
	if isFull(failed) {
		return fmt.Errorf("queue: nats: stream %s refused the event (%s): %w", e.n.work, fullReason(failed), queue.ErrFull)
	}
	return fmt.Errorf("queue: nats: the event was not stored: %s", publishReason(failed))
}

// wakeOthers tells the other gateways that ds's targets have work.
func (e *Engine) wakeOthers(ds []delivery.Delivery) {
	for i := range ds {
		seen := false
		for j := 0; j < i; j++ {
			if ds[j].Target == ds[i].Target {
				seen = true
				break
			}
		}
		if !seen {
			e.presence.wake(ds[i].Target)
		}
	}
}

// unstore deletes the deliveries of an Enqueue that failed part way, so a
// 503 leaves nothing behind to be sent (best effort: see the package doc).
func (e *Engine) unstore(seqs []uint64) {
	ctx, cancel := e.ctx()
	defer cancel()
	for _, seq := range seqs {
		if err := e.work.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			e.log.Warn("queue: nats: a delivery of a refused event stays queued; it may be sent although the sender was answered 503", "seq", seq, "err", err)
		}
	}
}

// isFull reports a refusal for the stream's MaxMsgs or MaxBytes
// (DiscardNew): the server's "maximum messages exceeded" or "maximum bytes
// exceeded".
func isFull(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "maximum messages") || strings.Contains(s, "maximum bytes")
}

func fullReason(err error) string {
	if strings.Contains(err.Error(), "maximum bytes") {
		return "max_bytes reached"
	}
	return "max_depth reached"
}

// publishReason says in a few words why a publish failed, for the log.
func publishReason(err error) string {
	switch {
	case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrDisconnected):
		return "not connected to NATS (reconnecting)"
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout):
		return "NATS did not acknowledge in time"
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return "no JetStream server answered for the stream"
	}
	return err.Error()
}
