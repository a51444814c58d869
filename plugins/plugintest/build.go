// Package plugintest builds Go plugins to WebAssembly for tests and tools.
//
// Tests across the repository need the same .wasm files (the host's
// conformance tests, the plugins' own end-to-end tests, the gateway's
// integration tests, the benchmarks), and a wasm link takes a second or two.
// Build caches the output on disk keyed by a hash of the package's sources,
// so each plugin is linked once per change, not once per test binary.
package plugintest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
)

// Build compiles the Go package in dir (a path relative to the module root,
// such as "plugins/filter") with GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared and returns the path of the .wasm file. It fails tb
// when the build fails.
func Build(tb testing.TB, dir string) string {
	tb.Helper()
	path, err := BuildPath(dir)
	if err != nil {
		tb.Fatalf("plugintest: %v", err)
	}
	return path
}

// BuildPath is Build for programs that are not tests.
func BuildPath(dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return BuildPathIn(root, dir)
}

// BuildPathIn is BuildPath from the module rooted at root (another
// checkout, such as a worktree of an older revision the load harness
// measures beside this one).
func BuildPathIn(root, dir string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	abs := filepath.Join(root, dir)
	if p, ok := built[abs]; ok {
		return p, nil
	}
	sum, err := sourceHash(root, abs)
	if err != nil {
		return "", err
	}
	cacheDir := filepath.Join(os.TempDir(), "hookgate-wasm-cache")
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, filepath.Base(abs)+"-"+sum[:16]+".wasm")
	if _, err := os.Stat(out); err == nil {
		built[abs] = out
		return out, nil
	}
	tmp := out + fmt.Sprintf(".tmp%d", os.Getpid())
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", tmp, "./"+filepath.ToSlash(dir))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building %s to wasm: %v\n%s", dir, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	built[abs] = out
	return out, nil
}

// ModuleRoot finds the directory holding go.mod, starting from the working
// directory (a test runs in its package's directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// sourceHash covers the plugin's own files, the SDK and the ABI constants
// it links, go.mod/go.sum and the Go version: any of them changing means a
// new build.
func sourceHash(root, dir string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version())
	var files []string
	for _, d := range []string{dir, filepath.Join(root, "plugins", "sdk"), filepath.Join(root, "plugins", "abi")} {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() && strings.HasSuffix(p, ".go") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	files = append(files, filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum"))
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
