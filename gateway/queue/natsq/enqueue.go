package natsq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/queue"
)

// Enqueue stores ds and returns nil once the stream has acknowledged all
// of them. One delivery is one publish; several are one atomic batch
// (JetStream's atomic batch publish, nats-server 2.12 or later): the
// stream stores all of them or none, as the Pebble store does, at the
// cost of one round trip. A refusal for the stream's limits wraps
// queue.ErrFull; servers that cannot be reached or do not answer within
// Options.Timeout return another error (ingest answers 503
// queue_unavailable either way, with Retry-After).
//
// Nats-Msg-Id is the delivery id, so the duplicate window drops a repeat
// of the same event: a single publish answers it as a duplicate, a batch
// is refused whole as "contains a duplicate", which means that the same
// batch was stored before (batches are all or none), so both are
// successes.
func (e *Engine) Enqueue(ds []delivery.Delivery) error {
	if e.closed.Load() {
		return queue.ErrClosed
	}
	if len(ds) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	enq := strconv.FormatInt(now, 10)
	var err error
	if len(ds) == 1 {
		err = e.publishOne(&ds[0], enq, now)
	} else {
		err = e.publishBatch(ds, enq, now)
	}
	if err == nil {
		e.wakeOthers(ds)
		return nil
	}
	if isFull(err) {
		return fmt.Errorf("queue: nats: stream %s refused the event (%s): %w", e.n.work, fullReason(err), queue.ErrFull)
	}
	return fmt.Errorf("queue: nats: the event was not stored: %s", publishReason(err))
}

// message is d as the work stream stores it: the Pebble store's record,
// the delivery id as the message id, the enqueue and not-before times.
func (e *Engine) message(d *delivery.Delivery, enq string, now int64) *nats.Msg {
	m := nats.NewMsg(e.n.subjectOf(d)) // an ordered delivery: its key's subject (fifo.go)
	m.Data = queue.AppendRecord(nil, d)
	m.Header.Set(jetstream.MsgIDHeader, string(d.ID))
	m.Header.Set(jetstream.ExpectedStreamHeader, e.n.work)
	m.Header.Set(hEnqueued, enq)
	if d.NotBefore > now {
		m.Header.Set(hDue, strconv.FormatInt(d.NotBefore, 10))
	}
	return m
}

func (e *Engine) publishOne(d *delivery.Delivery, enq string, now int64) error {
	ctx, cancel := e.ctx()
	defer cancel()
	_, err := e.js.PublishMsg(ctx, e.message(d, enq, now))
	return err
}

// Atomic batch publish headers (nats-server ADR-50).
const (
	hBatchID     = "Nats-Batch-Id"
	hBatchSeq    = "Nats-Batch-Sequence"
	hBatchCommit = "Nats-Batch-Commit"
)

// Error codes of the server's answer to a batch commit.
const (
	errBatchDuplicate = 10201 // JSAtomicPublishContainsDuplicateMessageErr
)

// publishBatch publishes ds as one atomic batch: every message but the
// last without waiting, the last with the commit header as a request,
// whose answer is the stream's verdict on the whole batch.
func (e *Engine) publishBatch(ds []delivery.Delivery, enq string, now int64) error {
	id := nuid.Next()
	last := len(ds) - 1
	for i := range ds {
		m := e.message(&ds[i], enq, now)
		m.Header.Set(hBatchID, id)
		m.Header.Set(hBatchSeq, strconv.Itoa(i+1))
		if i < last {
			if err := e.nc.PublishMsg(m); err != nil {
				return err
			}
			continue
		}
		m.Header.Set(hBatchCommit, "1")
		resp, err := e.nc.RequestMsg(m, e.opts.Timeout)
		if err != nil {
			return err
		}
		return batchVerdict(resp.Data)
	}
	return nil
}

// batchVerdict reads the commit's answer: a PubAck, or an API error.
func batchVerdict(data []byte) error {
	var r struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Stream string `json:"stream"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("unreadable answer to the batch commit: %w", err)
	}
	switch {
	case r.Error == nil && r.Stream != "":
		return nil
	case r.Error == nil:
		return errors.New("empty answer to the batch commit")
	case r.Error.ErrCode == errBatchDuplicate:
		return nil // stored whole before: see Enqueue
	}
	return fmt.Errorf("%s (code %d)", r.Error.Description, r.Error.ErrCode)
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
