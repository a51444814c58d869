// Command hostile misbehaves on purpose, one way per config mode, so the
// host's tests can show each failure is contained: "ok" behaves; "loop"
// never returns; "spin" is an empty `for {}`; "recurse" recurses without
// end; "membomb" allocates past max_memory; "panic" panics; "bigoutput"
// produces more than max_output; "badptr" hands the host pointers outside
// its memory; "exit" calls proc_exit. "features" behaves too, through what
// the Go compiler makes of indirect calls (the module's element segment)
// and copies (bulk memory), and sets a body the test can check.
//
// The guest in initloop/ never finishes its init.
package main

import (
	"os"
	"runtime/debug"
	"strconv"
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
	case "spin":
		for {
		}
	case "recurse":
		// Go grows a goroutine's stack by copying it, in linear memory; a
		// 1 MiB cap makes its own overflow check fire long before the
		// stack reaches max_memory.
		debug.SetMaxStack(1 << 20)
		spins = recurse(1)
	case "features":
		setBodyString(features(bodyLen))
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

//go:noinline
func recurse(n int) int { return recurse(n+1) + 1 }

// ops are called through func values: indirect calls through the
// module's table, which its element segment fills.
var ops = []func(a, b uint32) uint32{
	func(a, b uint32) uint32 { return a + b },
	func(a, b uint32) uint32 { return a ^ (b << 1) },
	func(a, b uint32) uint32 { return a*31 + b },
}

// features reads the body, copies it around (memmove and clear compile
// to memory.copy and memory.fill) and folds it through ops, giving a
// result the test computes the same way.
func features(bodyLen int32) string {
	if bodyLen <= 0 {
		return "features: empty body"
	}
	b := make([]byte, bodyLen)
	n := bodyRead(unsafe.Pointer(&b[0]), uint32(len(b)))
	big := make([]byte, 4096)
	for i := 0; i < len(big); i += int(n) {
		copy(big[i:], b[:n])
	}
	sum := uint32(0)
	for i, c := range big {
		sum = ops[i%len(ops)](sum, uint32(c))
	}
	clear(big)
	for _, c := range big {
		sum += uint32(c)
	}
	return "features " + strconv.FormatUint(uint64(sum), 10)
}

func setBodyString(s string) {
	setBody(0, unsafe.Pointer(unsafe.StringData(s)), uint32(len(s)))
}
