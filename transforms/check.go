package transforms

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/transforms/internal/interrupt"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// checkModule refuses a module that does not fit ABI v1, naming the first
// problem: a missing or mistyped export, an import from a module other than
// hookgate_v1 and WASI, or an hookgate_v1 import hookgate does not provide
// with that signature.
func checkModule(m wazero.CompiledModule) error {
	if _, ok := m.ExportedMemories()[abi.ExportMemory]; !ok {
		return fmt.Errorf("missing export %q", abi.ExportMemory)
	}
	fns := m.ExportedFunctions()
	handle, ok := fns[abi.ExportHandle]
	if !ok {
		return fmt.Errorf("missing export %q", abi.ExportHandle)
	}
	if !sameSig(handle, []api.ValueType{i32, i32}, []api.ValueType{i32}) {
		return fmt.Errorf("export %q has signature %s, want (i32, i32) -> i32", abi.ExportHandle, sigOf(handle.ParamTypes(), handle.ResultTypes()))
	}
	if init, ok := fns[abi.ExportInitialize]; ok && !sameSig(init, nil, nil) {
		return fmt.Errorf("export %q has signature %s, want () -> ()", abi.ExportInitialize, sigOf(init.ParamTypes(), init.ResultTypes()))
	}
	for _, mem := range m.ImportedMemories() {
		mod, name, _ := mem.Import()
		return fmt.Errorf("imports memory \"%s.%s\"; a plugin must define and export its own memory", mod, name)
	}
	for _, f := range m.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case abi.WASIModule:
			// Provided by wazero's WASI; an unknown name fails instantiation
			// with wazero's own message.
		case interrupt.ImportModule:
			// Added by interrupt.Instrument, which refuses a module that
			// imports from it on its own; checked so no other name or
			// signature slips through.
			if name != interrupt.ImportName || !sameSig(f, []api.ValueType{i32}, []api.ValueType{i32}) {
				return fmt.Errorf("imports \"%s.%s\", which is hookgate's own", mod, name)
			}
		case abi.HostModule:
			hf := findHostFunc(name)
			if hf == nil {
				return fmt.Errorf("imports \"%s.%s\", which hookgate does not provide (see plugins/ABI.md)", mod, name)
			}
			if !sameSig(f, hf.params, hf.results) {
				return fmt.Errorf("imports \"%s.%s\" with signature %s, but hookgate provides %s",
					mod, name, sigOf(f.ParamTypes(), f.ResultTypes()), sigOf(hf.params, hf.results))
			}
		default:
			return fmt.Errorf("imports \"%s.%s\", which hookgate does not provide (only %s and %s)", mod, name, abi.HostModule, abi.WASIModule)
		}
	}
	return nil
}

func sameSig(f api.FunctionDefinition, params, results []api.ValueType) bool {
	return slices.Equal(f.ParamTypes(), params) && slices.Equal(f.ResultTypes(), results)
}

func sigOf(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return names(params) + " -> " + names(results)
}
