//go:build wasip1

package sdk

// The export lives in the SDK, not in the plugin's main package: Go accepts
// //go:wasmexport in any package linked into the module, so a plugin only
// registers its handler with Handle.

//go:wasmexport hookgate_handle
func hookgateHandle(bodyLen, configID int32) int32 {
	return call(bodyLen, configID)
}
