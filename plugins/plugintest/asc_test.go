package plugintest

import (
	"os"
	"path/filepath"
	"testing"
)

// The cache key of an AssemblyScript build covers the project, the shared
// files of its checkout, the flags and the compiler's lockfile, and a
// checkout without shared files (an older one) still hashes.
func TestAscHash(t *testing.T) {
	root, src := t.TempDir(), t.TempDir()
	write := func(dir, name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(root, filepath.Join(ascToolDir, "package-lock.json"), "lock 1")
	project := filepath.Join(src, "plugins", "p")
	write(project, "assembly/index.ts", "code 1")
	write(project, "node_modules/x.js", "ignored")
	hash := func(args ...string) string {
		t.Helper()
		h, err := ascHash(root, src, project, args)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	seen := map[string]string{}
	differs := func(what, h string) {
		t.Helper()
		if prev, ok := seen[h]; ok {
			t.Fatalf("%s: the same key as %s", what, prev)
		}
		seen[h] = what
	}
	differs("project without shared files", hash("-O3"))
	write(src, filepath.Join(ascShared, "buffer.ts"), "shared 1")
	differs("shared file added", hash("-O3"))
	write(src, filepath.Join(ascShared, "buffer.ts"), "shared 2")
	differs("shared file changed", hash("-O3"))
	write(project, "assembly/index.ts", "code 2")
	differs("project changed", hash("-O3"))
	differs("flags changed", hash("-O2"))
	write(root, filepath.Join(ascToolDir, "package-lock.json"), "lock 2")
	differs("lockfile changed", hash("-O2"))
	before := hash("-O2")
	write(project, "node_modules/x.js", "still ignored")
	if hash("-O2") != before {
		t.Fatal("node_modules changed the key")
	}
	if err := os.Remove(filepath.Join(root, ascToolDir, "package-lock.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := ascHash(root, src, project, nil); err == nil {
		t.Fatal("no error without the compiler's lockfile")
	}
}
