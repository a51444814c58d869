package abi

// Kinds of a failed plugin call: transforms.PluginError.Kind, the kind label
// of the hookgate_plugin_errors_total metric, the kind field of the
// "plugin error" log line. plugins/ABI.md shows an example message of each.
const (
	KindTimeout = "timeout" // the call overran the plugin's timeout
	KindBusy    = "busy"    // every instance stayed busy for the plugin's timeout; the call never started
	KindTrap    = "trap"    // the guest trapped (unreachable, bad memory access, Go panic)
	KindExit    = "exit"    // the guest exited (proc_exit) during the call
	KindMemory  = "memory"  // the guest ran out of its max_memory
	KindOutput  = "output"  // the call produced more than max_output bytes
	KindFailed  = "failed"  // the guest returned 1 (see FuncFail)
	KindABI     = "abi"     // the guest broke the ABI (bad pointer, bad return value, ...)
)

// Kinds lists every Kind*, in a fixed order, for counters indexed by kind.
// Read it; never write it.
var Kinds = [...]string{KindTimeout, KindTrap, KindExit, KindMemory, KindOutput, KindFailed, KindABI, KindBusy}
