// Command trivial is the overhead guest: hookgate_handle returns 0 at once.
package main

//go:wasmexport hookgate_handle
func handle(bodyLen, configID int32) int32 { return 0 }

func main() {}
