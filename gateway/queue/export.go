package queue

import "github.com/hookgate/hookgate/delivery"

// AppendAttempt appends the stored form of a (the Pebble store's attempt
// value: At, Duration, Status, Error and up to MaxAttemptBody bytes of
// Body; Outcome is not stored) to dst. Another engine (natsq) stores
// attempts in the same form, so there is one format to read.
func AppendAttempt(dst []byte, a *delivery.Attempt) []byte { return appendAttempt(dst, a) }

// DecodeAttempt reads what AppendAttempt wrote; ErrCorrupt if it is not
// that.
func DecodeAttempt(src []byte) (delivery.Attempt, error) { return decodeAttempt(src) }
