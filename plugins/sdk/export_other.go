//go:build !wasip1

package sdk

import "github.com/hookgate/hookgate/plugins/sdk/internal/hostcall"

// Outside wasm the fake host (used by sdktest) calls the guest through
// hostcall.Export, the way the real host calls the hookgate_handle export.
func init() { hostcall.Export = call }
