// Command initloop never finishes its init: the Go runtime runs package
// init functions inside the reactor's _initialize, so the host's Load
// must give up on it with a timeout instead of hanging.
package main

var spins int

func init() {
	for {
		spins++
	}
}

//go:wasmexport hookgate_handle
func handle(bodyLen, configID int32) int32 { return 0 }

func main() {}
