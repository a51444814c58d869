package target

import (
	"errors"
	"fmt"
	"net"

	"github.com/hookgate/hookgate/delivery"
	"github.com/valyala/fasthttp"
)

// Sentinels a caller can test a Do error against with errors.Is, without
// importing fasthttp.
var (
	// ErrTimeout: the attempt did not finish within the target's timeout,
	// whether it waited for one of max_conns busy connections, dialed,
	// sent, or waited for the answer.
	ErrTimeout = errors.New("target: timed out")
)

// Error is a transport failure of one Do call. Its message never holds a
// secret: configured query values and the URL's userinfo are redacted.
type Error struct {
	Target string
	Method string
	URL    string // redacted
	Err    error  // the transport error
}

func (e *Error) Error() string {
	return fmt.Sprintf("target %q: %s %s: %v", e.Target, e.Method, e.URL, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrTimeout) work.
func (e *Error) Is(target error) bool {
	return target == ErrTimeout && isTimeout(e.Err)
}

// Timeout reports whether the attempt ran out of time.
func (e *Error) Timeout() bool { return isTimeout(e.Err) }

func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, errOutOfTime) ||
		errors.Is(err, fasthttp.ErrNoFreeConns) ||
		errors.Is(err, fasthttp.ErrTLSHandshakeTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wrap builds the Error of a failed Do. It allocates, but only on failure.
func (c *Client) wrap(d *delivery.Delivery, err error) error {
	method := string(c.method)
	if len(d.Method) > 0 {
		method = string(d.Method)
	}
	if isTimeout(err) {
		err = fmt.Errorf("timed out after %v: %w", c.timeout, err)
	}
	return &Error{Target: c.cfg.Name, Method: method, URL: c.shownURL(d), Err: err}
}
