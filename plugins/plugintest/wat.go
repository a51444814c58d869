package plugintest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Wat compiles the WebAssembly text file at path (relative to the test's
// working directory) with wat2wasm and returns the binary. flags go to
// wat2wasm before the file name, for example "--enable-all" or
// "--debug-names". It fails tb, never skips, when wat2wasm is missing or the
// file does not compile.
func Wat(tb testing.TB, path string, flags ...string) []byte {
	tb.Helper()
	bin, err := exec.LookPath("wat2wasm")
	if err != nil {
		tb.Fatalf("plugintest: wat2wasm not found (%v): install it with `apt-get install wabt`", err)
	}
	out := filepath.Join(tb.TempDir(), filepath.Base(path)+".wasm")
	args := append(append([]string{}, flags...), path, "-o", out)
	if b, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		tb.Fatalf("plugintest: wat2wasm %s: %v\n%s", path, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatalf("plugintest: %v", err)
	}
	return b
}
