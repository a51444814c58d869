package transforms

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrUnknownPlugin is returned by Chain for a step naming a plugin that
	// was never loaded.
	ErrUnknownPlugin = errors.New("unknown plugin")
	// ErrClosed is returned once the Host is closed.
	ErrClosed = errors.New("transforms: host closed")
)

// PluginError is a failed plugin call: it names the plugin and the cause, and
// is what the gateway turns into a 502 for the sender and a log line for the
// operator.
type PluginError struct {
	Plugin string
	Kind   string // one of the abi.Kind* constants
	Err    error
}

func (e *PluginError) Error() string {
	return fmt.Sprintf("plugin %q: %v", e.Plugin, e.Err)
}

func (e *PluginError) Unwrap() error { return e.Err }

// PluginName and FailureKind let an observer that cannot import this
// package (gateway/record's log lines) name the plugin and the kind.
func (e *PluginError) PluginName() string  { return e.Plugin }
func (e *PluginError) FailureKind() string { return e.Kind }

// timeoutError is the cause of a KindTimeout error.
type timeoutError time.Duration

func (e timeoutError) Error() string {
	return fmt.Sprintf("timed out after %v", time.Duration(e))
}

// busyError is the cause of a KindBusy error.
type busyError struct {
	instances int
	waited    time.Duration
}

func (e busyError) Error() string {
	return fmt.Sprintf("all %d instances stayed busy for %v: raise instances, or find what makes calls slow", e.instances, e.waited)
}

// LoadError is a plugin refused at load: a missing export, an import hookgate
// does not provide, a module that does not compile or traps in _initialize.
type LoadError struct {
	Plugin string
	Err    error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("plugin %q: %v", e.Plugin, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }
