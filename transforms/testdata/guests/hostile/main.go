// Command hostile misbehaves on purpose, one way per config mode, so the
// host's tests can show each failure is contained: "ok" behaves; "loop"
// never returns; "membomb" allocates past max_memory; "panic" panics;
// "bigoutput" produces more than max_output; "badptr" hands the host
// pointers outside its memory; "exit" calls proc_exit.
package main

import (
	"os"
	"strings"
	"unsafe"
)

//go:wasmimport hookgate_v1 meta_read
func metaRead(key int32, buf unsafe.Pointer, limit uint32) int32

//go:wasmimport hookgate_v1 body_read
func bodyRead(buf unsafe.Pointer, limit uint32) int32

//go:wasmimport hookgate_v1 set_body
func setBody(h int32, p unsafe.Pointer, n uint32) int32

//go:wasmimport hookgate_v1 emit
func emit(target unsafe.Pointer, n uint32) int32

var (
	cfg   = make([]byte, 256)
	sink  [][]byte
	spins int
)

func mode() string {
	n := metaRead(5, unsafe.Pointer(&cfg[0]), uint32(len(cfg)))
	_, rest, _ := strings.Cut(string(cfg[:max(n, 0)]), `"mode":"`)
	m, _, _ := strings.Cut(rest, `"`)
	return m
}

//go:wasmexport hookgate_handle
func handle(bodyLen, configID int32) int32 {
	switch mode() {
	case "ok":
		b := make([]byte, bodyLen+1)
		n := bodyRead(unsafe.Pointer(&b[0]), uint32(len(b)))
		t := "crm"
		h := emit(unsafe.Pointer(unsafe.StringData(t)), 3)
		setBody(h, unsafe.Pointer(&b[0]), uint32(n))
	case "loop":
		for {
			spins++
		}
	case "membomb":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "panic":
		var m map[string]int
		m["boom"] = 1 // assignment to entry in nil map
	case "bigoutput":
		big := make([]byte, 256<<10)
		for range 100 {
			if setBody(0, unsafe.Pointer(&big[0]), uint32(len(big))) == -3 {
				break
			}
		}
	case "badptr":
		bodyRead(unsafe.Pointer(uintptr(0xFFFFFF00)), 4096)
	case "exit":
		os.Exit(3)
	}
	return 0
}

func main() {}
