package plugintest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// ascToolDir holds the package.json and package-lock.json that pin the
// AssemblyScript compiler; .ci/tools runs `npm ci` there.
const ascToolDir = "plugins/assemblyscript"

// ascFlags are given to every AssemblyScript build: optimized, and the stub
// runtime (a bump allocator with no GC and nothing exported), which keeps
// a plugin's imports to hookgate_v1 and the ones it declares. A project
// adds its own options (features, the abort handler) in an asconfig.json
// beside its assembly/ folder.
var ascFlags = []string{"-O3", "--runtime", "stub"}

// AssemblyScript compiles the AssemblyScript project in dir (a path from
// the module root; its entry point is dir/assembly/index.ts, and
// dir/asconfig.json is applied when present) with the compiler pinned in
// plugins/assemblyscript, and returns the module's bytes. The output is
// cached on disk by a hash of the project's files, the flags and the
// compiler's lockfile, as Build does. It fails tb when the compiler is not
// installed (run .ci/tools) or the build fails; it never skips.
func AssemblyScript(tb testing.TB, dir string) []byte {
	tb.Helper()
	path, err := AssemblyScriptPath(dir)
	if err != nil {
		tb.Fatalf("plugintest: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("plugintest: %v", err)
	}
	return b
}

// AssemblyScriptPath is AssemblyScript for programs that are not tests: it
// returns the path of the .wasm file.
func AssemblyScriptPath(dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return AssemblyScriptPathIn(root, dir)
}

// AssemblyScriptPathIn is AssemblyScriptPath for the project at dir in
// the module rooted at src (another checkout, as for BuildPathIn), built
// with this module's pinned compiler.
func AssemblyScriptPathIn(src, dir string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	if src, err = filepath.Abs(src); err != nil {
		return "", err
	}
	abs := filepath.Join(src, dir)
	key := "asc\x00" + abs
	if p, ok := built[key]; ok {
		return p, nil
	}
	asc := filepath.Join(root, ascToolDir, "node_modules", ".bin", "asc")
	if _, err := os.Stat(asc); err != nil {
		return "", fmt.Errorf("the AssemblyScript compiler is not installed (%s is missing): run .ci/tools, or make tools, to install it", filepath.Join(ascToolDir, "node_modules", ".bin", "asc"))
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("node is not on PATH, and the AssemblyScript compiler needs it: run .ci/tools, or make tools, to install it")
	}
	entry := filepath.Join("assembly", "index.ts")
	if _, err := os.Stat(filepath.Join(abs, entry)); err != nil {
		return "", fmt.Errorf("%s is not an AssemblyScript project: %w", dir, err)
	}
	args := append([]string{entry}, ascFlags...)
	if _, err := os.Stat(filepath.Join(abs, "asconfig.json")); err == nil {
		args = append(args, "--config", "asconfig.json")
	}
	sum, err := ascHash(root, src, abs, args)
	if err != nil {
		return "", err
	}
	cacheDir := filepath.Join(os.TempDir(), "hookgate-wasm-cache")
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, filepath.Base(abs)+"-as-"+sum[:16]+".wasm")
	if _, err := os.Stat(out); err == nil {
		built[key] = out
		return out, nil
	}
	tmp := out + fmt.Sprintf(".tmp%d", os.Getpid())
	cmd := exec.Command(asc, append(args, "-o", tmp)...)
	cmd.Dir = abs
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building %s with asc: %v\n%s", dir, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	built[key] = out
	return out, nil
}

// ascShared holds the files AssemblyScript projects in this module import
// from outside their own folder (the ABI's declarations, buffers).
const ascShared = "plugins/assemblyscript/assembly"

// ascHash covers the project's files (but not node_modules or build
// output), the shared ones of the module at src, the arguments and the
// compiler's lockfile (in the module at root): any of them changing means
// a new build.
func ascHash(root, src, dir string, args []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%q\n", args)
	var files []string
	for _, d := range []string{dir, filepath.Join(src, ascShared)} {
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) && d != dir {
			continue // an older checkout without shared files
		}
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && (e.Name() == "node_modules" || e.Name() == "build") {
				return filepath.SkipDir
			}
			if e.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	for _, f := range slices.Compact(slices.Sorted(slices.Values(files))) {
		rel, err := filepath.Rel(src, f)
		if err != nil {
			return "", err
		}
		if err := hashFile(h, rel, f); err != nil {
			return "", err
		}
	}
	lock := filepath.Join(root, ascToolDir, "package-lock.json")
	if err := hashFile(h, "compiler package-lock.json", lock); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s is missing: the AssemblyScript compiler is pinned by it", lock)
	} else if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashFile writes a file's name, length and bytes to h.
func hashFile(h io.Writer, name, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "%s %d\n", name, len(b))
	h.Write(b)
	return nil
}
