package transforms

import (
	"context"
	"errors"
	"fmt"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/plugins/abi"
)

// Step is one link of a route's chain: a loaded plugin and its config
// (JSON; nil or empty means "{}").
type Step struct {
	Plugin string
	Config []byte
}

type step struct {
	plugin   *plugin
	config   []byte
	configID uint32
}

// Chain is one route's transform chain. It implements gateway.Chain and is
// safe for concurrent use.
type Chain struct {
	route   string
	steps   []step
	targets []string
	batch   *batcher // nil: each Run on its own goroutine (Options.noBatch)
}

// Chain builds the chain of route: steps run in order; targets are the
// target names its plugins may emit to. Each step gets a config id never
// used before, so a guest may cache its parsed config by id.
func (h *Host) Chain(route string, steps []Step, targets []string) (*Chain, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	c := &Chain{route: route, targets: append([]string(nil), targets...)}
	if !h.opts.noBatch {
		c.batch = &h.batch
	}
	for i, s := range steps {
		p := h.plugins[s.Plugin]
		if p == nil {
			return nil, fmt.Errorf("transforms: route %q, step %d: plugin %q: %w; define it in a [[plugin]] section", route, i+1, s.Plugin, ErrUnknownPlugin)
		}
		cfg := s.Config
		if len(cfg) == 0 {
			cfg = emptyConfig
		}
		c.steps = append(c.steps, step{plugin: p, config: append([]byte(nil), cfg...), configID: configIDs.Add(1)})
	}
	return c, nil
}

// ConfigIDs returns the config id of each step, in order (for tests and
// tools).
func (c *Chain) ConfigIDs() []uint32 {
	ids := make([]uint32, len(c.steps))
	for i := range c.steps {
		ids[i] = c.steps[i].configID
	}
	return ids
}

// Run runs the chain over ev and records the decision in out, which the
// caller has Reset.
//
// Each plugin sees ev as the previous one left it: set_* on handle 0 write
// into ev's own buffers (append to [:0]), so ev must not alias memory
// anyone reads afterwards. Emitted deliveries accumulate in out
// (out.Emitted); a drop stops the chain and clears them (out.Dropped,
// out.DropReason). An event-wide delay (set_delay on handle 0) becomes
// out.NotBefore and the NotBefore of every emitted delivery without its
// own. Run never makes the default deliveries, delayed or not: when nobody
// emitted, the caller makes them with delivery.Defaults, which applies
// out.NotBefore.
//
// The error is a *PluginError naming the plugin and the cause, or the
// context's error if ctx ended while waiting for an instance. Run keeps
// nothing of ev or out after it returns.
//
// # Notes
//
//   - ctx bounds only the wait for an instance; a running call is bounded
//     by the plugin's timeout.
//   - Runs that are ready at the same time may run back to back on one of
//     their goroutines (see batcher); each still returns its own result.
func (c *Chain) Run(ctx context.Context, ev *delivery.Event, out *delivery.Outcome) error {
	if c.batch == nil {
		return c.run(ctx, ev, out)
	}
	return c.batch.run(c, ctx, ev, out)
}

// run is Run on the calling goroutine.
func (c *Chain) run(ctx context.Context, ev *delivery.Event, out *delivery.Outcome) error {
	delay := int64(-1)
	for i := range c.steps {
		s := &c.steps[i]
		p := s.plugin
		in, err := p.get(ctx)
		if err != nil {
			return err
		}
		in.st.begin(c, s, ev, out, delay)
		res, err := in.call(len(ev.Body), s.configID)
		if err != nil {
			return err
		}
		delay = res.eventDelay
		if p.obs != nil {
			kind := ""
			switch res.result {
			case 0:
			case 1:
				kind = abi.KindFailed
			default:
				kind = abi.KindABI
			}
			p.obs.Call(res.took, kind)
		}
		switch res.result {
		case 0:
		case 1:
			p.stats.fail(abi.KindFailed)
			return &PluginError{Plugin: p.name, Kind: abi.KindFailed, Err: failCause(res.failMsg)}
		default:
			p.stats.fail(abi.KindABI)
			return &PluginError{Plugin: p.name, Kind: abi.KindABI, Err: fmt.Errorf("%s returned %d; want 0 (done) or 1 (failed)", abi.ExportHandle, res.result)}
		}
		if res.dropped {
			out.Dropped = true
			out.Emitted = false
			out.Deliveries = out.Deliveries[:0]
			return nil
		}
	}
	if delay >= 0 {
		applyDelay(out, notBefore(ev, delay))
	}
	return nil
}

func failCause(msg string) error {
	if msg == "" {
		return errors.New("failed (the plugin gave no reason)")
	}
	return errors.New("failed: " + msg)
}

// applyDelay records the event-wide not-before time nb and gives it to
// every emitted delivery that has none of its own.
func applyDelay(out *delivery.Outcome, nb int64) {
	out.NotBefore = nb
	for i := range out.Deliveries {
		if out.Deliveries[i].NotBefore == 0 {
			out.Deliveries[i].NotBefore = nb
		}
	}
}
