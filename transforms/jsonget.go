package transforms

import (
	"github.com/tetratelabs/wazero/api"

	"github.com/hookgate/hookgate/plugins/abi"
)

// json_get (capability "json_get", see FuncJSONGet): the host walks a JSON
// document in guest memory once, natively, for a list of paths, and hands
// back records of where each value lies. The evaluator is shared with the
// SDK's fake host (plugins/sdk/jsonget), so `go test` of a plugin and the
// gateway answer alike.

// jsonGet is json_get(json_ptr, json_len, paths_ptr, paths_len, out_ptr, out_limit) -> i32.
func jsonGet(st *callState, mod api.Module, stack []uint64) {
	mem := mod.Memory()
	jsonPtr, jsonLen := argU32(stack, 0), argU32(stack, 1)
	pathsPtr, pathsLen := argU32(stack, 2), argU32(stack, 3)
	outPtr, outLimit := argU32(stack, 4), argU32(stack, 5)
	// Views of guest memory, not copies: the evaluator only reads them,
	// before this function returns.
	json, ok1 := mem.Read(jsonPtr, jsonLen)
	paths, ok2 := mem.Read(pathsPtr, pathsLen)
	_, ok3 := mem.Read(outPtr, outLimit)
	if !ok1 || !ok2 || !ok3 {
		ret32(stack, st.bad(abi.FuncJSONGet))
		return
	}
	recs, ok := st.json.Eval(json, paths)
	switch {
	case !ok:
		ret32(stack, abi.ErrnoBadArgument)
	case uint64(len(recs)) > uint64(outLimit) || len(recs) == 0:
		ret32(stack, int32(len(recs)))
	default:
		// The records were built aside, so a buffer too small is left
		// untouched (buffer-limit-and-retry), and one overlapping the
		// document or the paths cannot disturb the walk.
		mem.Write(outPtr, recs)
		ret32(stack, int32(len(recs)))
	}
}
