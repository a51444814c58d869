package transforms

// Tests of the cache of instrumented modules (interrupt.go: instrumented),
// which keeps interrupt.Instrument's output by the sha256 of the original
// in memory and under cache_dir/instrumented/<sha256>-<interrupt.Version>.wasm,
// each file ending with the sha256 of what precedes it.
//
// Two modules that differ in one byte give the observable: m0's handle
// returns 0 (the call succeeds), m7's returns 7 (an ABI error), and their
// instrumented forms differ in that one byte too. So which bytes a Host ran
// shows in the call's outcome, and a cache file altered from m0's form into
// m7's is still a valid module, which only the checksum tells apart.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/plugins/abi"
	"github.com/hookgate/hookgate/transforms/internal/interrupt"
)

var (
	cacheM0 = handleModule(i32const(0))
	cacheM7 = handleModule(i32const(7))
)

// wantM7 is the error of a call that ran m7's bytes, under the plugin name "p".
const wantM7 = `plugin "p": hookgate_handle returned 7; want 0 (done) or 1 (failed)`

// cacheFile is where a Host with cache directory dir keeps wasm's
// instrumented form for the instrumenter version v.
func cacheFile(dir string, wasm []byte, v string) string {
	sum := sha256.Sum256(wasm)
	return filepath.Join(dir, "instrumented", hex.EncodeToString(sum[:])+"-"+v+".wasm")
}

// withChecksum is a cache file's content for the module b.
func withChecksum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return append(slices.Clone(b), sum[:]...)
}

func instrumentOrFail(t testing.TB, wasm []byte) []byte {
	t.Helper()
	out, err := interrupt.Instrument(wasm)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// loadAndRun is one start of the process: a new Host on the cache
// directory dir loads wasm as "p" and runs one event through it. It
// returns the call's error; a Load error fails the test.
func loadAndRun(t testing.TB, dir string, wasm []byte) error {
	t.Helper()
	h, err := NewHost(context.Background(), Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	load(t, h, PluginSpec{Name: "p", Wasm: wasm, Instances: 1, Timeout: 10 * time.Second})
	_, _, err = runBody(h, "p", "", featureBody)
	return err
}

// plant writes content to file with a modification time an hour ago, so
// that a rewrite (a new file renamed over it) shows in its mtime as well
// as in its identity.
func plant(t testing.TB, file string, content []byte) os.FileInfo {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(file, old, old); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// sameFile fails unless file is still the file before was, unmodified,
// holding want.
func sameFile(t testing.TB, file string, before os.FileInfo, want []byte) {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, fi) || !fi.ModTime().Equal(before.ModTime()) {
		t.Fatalf("%s was rewritten (mtime %v, was %v; same file: %v)", filepath.Base(file), fi.ModTime(), before.ModTime(), os.SameFile(before, fi))
	}
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s changed (%d bytes, err %v)", filepath.Base(file), len(got), err)
	}
}

// cacheEntries lists dir's instrumented/ directory.
func cacheEntries(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, "instrumented"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestInstrumentedCacheReused: a second Host on the same cache directory
// (a restart) takes the instrumented module from the file, without
// rewriting it: the file is the same file, with the same mtime, after the
// second Load; and a valid file holding other bytes (m7's) under m0's key
// is what the second Host runs, so the bytes come from the file, not from
// a fresh rewrite.
func TestInstrumentedCacheReused(t *testing.T) {
	dir := t.TempDir()
	if err := loadAndRun(t, dir, cacheM0); err != nil {
		t.Fatalf("first start: %v", err)
	}
	file := cacheFile(dir, cacheM0, interrupt.Version)
	good := withChecksum(instrumentOrFail(t, cacheM0))
	// The key is the original's sha256 and the instrumenter's version; no
	// temporary file is left behind.
	if names := cacheEntries(t, dir); !slices.Equal(names, []string{filepath.Base(file)}) {
		t.Fatalf("instrumented/ holds %q; want only %q", names, filepath.Base(file))
	}
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, good) {
		t.Fatalf("the cache file is not the instrumented module and its checksum (%d bytes, want %d; err %v)", len(got), len(good), err)
	}

	t.Run("the file is not rewritten", func(t *testing.T) {
		before := plant(t, file, good)
		if err := loadAndRun(t, dir, cacheM0); err != nil {
			t.Fatalf("second start: %v", err)
		}
		sameFile(t, file, before, good)
	})

	t.Run("the bytes come from the file", func(t *testing.T) {
		other := withChecksum(instrumentOrFail(t, cacheM7))
		before := plant(t, file, other)
		err := loadAndRun(t, dir, cacheM0)
		if err := checkPluginError(err, abi.KindABI, wantM7); err != nil {
			t.Fatalf("a Host loading m0 over a valid cache file holding m7 did not run m7: %v", err)
		}
		sameFile(t, file, before, other)
	})
}

// TestInstrumentedCacheInMemory: within one Host, the same bytes loaded
// again (under another name) come from memory: the file, removed in
// between, is not read or written again.
func TestInstrumentedCacheInMemory(t *testing.T) {
	dir := t.TempDir()
	h, err := NewHost(context.Background(), Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	load(t, h, PluginSpec{Name: "a", Wasm: cacheM0, Instances: 1, Timeout: 10 * time.Second})
	file := cacheFile(dir, cacheM0, interrupt.Version)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	load(t, h, PluginSpec{Name: "p", Wasm: cacheM0, Instances: 1, Timeout: 10 * time.Second})
	if _, _, err := runBody(h, "p", "", featureBody); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("the second Load of the same bytes wrote the cache file again; want the in-memory copy used")
	}
}

// TestInstrumentedCacheDamaged: a cache file that is torn (truncated
// anywhere) or altered (a byte changed in the module or in the checksum,
// a byte appended) is not used: the module is rewritten, the file
// replaced by a good one, and the call has the right outcome. The
// "module byte" case turns m0's form into m7's, a valid module that
// returns 7: only the checksum can tell.
func TestInstrumentedCacheDamaged(t *testing.T) {
	i0, i7 := instrumentOrFail(t, cacheM0), instrumentOrFail(t, cacheM7)
	diff := -1
	for i := range min(len(i0), len(i7)) {
		if i0[i] != i7[i] {
			if diff >= 0 {
				t.Fatalf("the instrumented m0 and m7 differ in more than one byte (%d and %d)", diff, i)
			}
			diff = i
		}
	}
	if len(i0) != len(i7) || diff < 0 {
		t.Fatalf("the instrumented m0 and m7 (%d, %d bytes) do not differ in exactly one byte", len(i0), len(i7))
	}
	good := withChecksum(i0)
	n := len(i0)
	damage := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"shorter than a checksum", good[:sha256.Size-1]},
		{"torn in the module", good[:n/2]},
		{"torn at the end of the module", good[:n]},
		{"torn in the checksum", good[:len(good)-1]},
		{"a module byte changed (m0 into m7)", func() []byte { b := slices.Clone(good); b[diff] = i7[diff]; return b }()},
		{"a checksum byte flipped", func() []byte { b := slices.Clone(good); b[len(b)-1] ^= 1; return b }()},
		{"a byte appended", append(slices.Clone(good), 0)},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			file := cacheFile(dir, cacheM0, interrupt.Version)
			plant(t, file, d.b)
			if err := loadAndRun(t, dir, cacheM0); err != nil {
				t.Fatalf("call on a Host that found a damaged cache file: %v", err)
			}
			if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, good) {
				t.Fatalf("the damaged file was not replaced by the instrumented module (%d bytes, want %d; err %v)", len(got), len(good), err)
			}
		})
	}
}

// TestInstrumentedCacheKeyedByVersion: a file another instrumenter version
// wrote (a valid one, holding m7's bytes, under m0's hash) is never read:
// the key includes interrupt.Version, so a rewriter whose output changed,
// with its Version bumped (TestInstrumentVersionGolden checks that it is),
// rewrites every module instead of running old bytes. Each original has
// its own key: m0 and m7 are two files.
func TestInstrumentedCacheKeyedByVersion(t *testing.T) {
	dir := t.TempDir()
	stale := withChecksum(instrumentOrFail(t, cacheM7))
	sum := sha256.Sum256(cacheM0)
	others := []string{
		filepath.Join(dir, "instrumented", hex.EncodeToString(sum[:])+".wasm"),
		cacheFile(dir, cacheM0, ""),
		cacheFile(dir, cacheM0, interrupt.Version+"0"),
	}
	for v := range 10 {
		if s := fmt.Sprint(v); s != interrupt.Version {
			others = append(others, cacheFile(dir, cacheM0, s))
		}
	}
	planted := map[string]os.FileInfo{}
	for _, f := range others {
		planted[f] = plant(t, f, stale)
	}
	if err := loadAndRun(t, dir, cacheM0); err != nil {
		t.Fatalf("a Host with other versions' files in its cache: %v", err)
	}
	for f, fi := range planted {
		sameFile(t, f, fi, stale)
	}
	if got, err := os.ReadFile(cacheFile(dir, cacheM0, interrupt.Version)); err != nil || !bytes.Equal(got, withChecksum(instrumentOrFail(t, cacheM0))) {
		t.Fatalf("this version's file: %d bytes, err %v; want the instrumented m0", len(got), err)
	}

	dir = t.TempDir()
	h, err := NewHost(context.Background(), Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	load(t, h, PluginSpec{Name: "m0", Wasm: cacheM0, Instances: 1, Timeout: 10 * time.Second})
	load(t, h, PluginSpec{Name: "m7", Wasm: cacheM7, Instances: 1, Timeout: 10 * time.Second})
	want := []string{filepath.Base(cacheFile(dir, cacheM0, interrupt.Version)), filepath.Base(cacheFile(dir, cacheM7, interrupt.Version))}
	slices.Sort(want)
	if names := cacheEntries(t, dir); !slices.Equal(names, want) {
		t.Fatalf("instrumented/ holds %q; want %q", names, want)
	}
}

// TestInstrumentedCacheUnwritable: the cache is best effort. When its
// directory cannot be made (here a file stands in its place), Load still
// succeeds and the plugin runs.
func TestInstrumentedCacheUnwritable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "instrumented"), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := loadAndRun(t, dir, cacheM0); err != nil {
		t.Fatal(err)
	}
}

// TestInstrumentedCacheConcurrentStarts: Hosts starting at once on one
// cache directory (each writes the same file, through a temporary file
// named by the process id, so the same name for all of them) all load
// and run the module, and leave one good file and no temporary one.
func TestInstrumentedCacheConcurrentStarts(t *testing.T) {
	good := withChecksum(instrumentOrFail(t, cacheM0))
	for round := range 5 {
		dir := t.TempDir()
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				h, err := NewHost(context.Background(), Options{CacheDir: dir})
				if err != nil {
					errs[i] = err
					return
				}
				defer h.Close(context.Background())
				if err := h.Load(context.Background(), PluginSpec{Name: "p", Wasm: cacheM0, Instances: 1, Timeout: 10 * time.Second}); err != nil {
					errs[i] = err
					return
				}
				_, _, errs[i] = runBody(h, "p", "", featureBody)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, host %d: %v", round, i, err)
			}
		}
		file := cacheFile(dir, cacheM0, interrupt.Version)
		if names := cacheEntries(t, dir); !slices.Equal(names, []string{filepath.Base(file)}) {
			t.Fatalf("round %d: instrumented/ holds %q; want only %q", round, names, filepath.Base(file))
		}
		if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, good) {
			t.Fatalf("round %d: the cache file is not the instrumented module (%d bytes, err %v)", round, len(got), err)
		}
	}
}

// TestInstrumentVersionGolden keeps interrupt.Version honest: the cache
// trusts a file under the current Version, so Instrument's output must not
// change while Version stays the same. The test hashes Instrument's output
// over a fixed corpus (wat2wasm's output for some of testdata/wat, frozen
// here so a new wat2wasm cannot change the input) and compares it with the
// hash recorded for the current Version. When the instrumenter's output
// changes on purpose: bump interrupt.Version and record the new hash here.
func TestInstrumentVersionGolden(t *testing.T) {
	golden := map[string]string{
		"3": "d5ee5fb712ac667a2091651be4721cf8f13f3f3d3a46b53ed0d4aa4dfe429a65",
	}
	h := sha256.New()
	for _, m := range instrumentCorpus {
		wasm, err := hex.DecodeString(m.hex)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		out := instrumentOrFail(t, wasm)
		h.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(out))))
		h.Write(out)
	}
	got := hex.EncodeToString(h.Sum(nil))
	want, ok := golden[interrupt.Version]
	switch {
	case !ok:
		t.Fatalf("no hash recorded for interrupt.Version %q: add %q: %q to the golden map", interrupt.Version, interrupt.Version, got)
	case got != want:
		t.Fatalf("Instrument's output changed, and interrupt.Version is still %q: a cache_dir written before would serve the old bytes. Bump Version and record the new hash (%s) for it", interrupt.Version, got)
	}
}

// instrumentCorpus is the input of TestInstrumentVersionGolden: modules
// wat2wasm 1.0.32 wrote from testdata/wat (loops, a start function,
// recursion, a call tree, tail calls, atomics, and element segments,
// ref.func in constant expressions, SIMD, bulk memory and multi-value).
var instrumentCorpus = []struct{ name, hex string }{
	{"loop.wat", "" +
		"0061736d0100000001070160027f7f017f030201000503010001071c02066d656d6f727902000f686f6f6b676174655f" +
		"68616e646c6500000a0b01090003400c000b41000b"},
	{"recurse.wat", "" +
		"0061736d01000000010c0260017f017f60027f7f017f03030200010503010001071c02066d656d6f727902000f686f6f" +
		"6b676174655f68616e646c6500010a18020c00200041016a100041016a0b0900410010001a41000b"},
	{"start_loop.wat", "" +
		"0061736d01000000010a0260000060027f7f017f03030200010503010001071c02066d656d6f727902000f686f6f6b67" +
		"6174655f68616e646c6500010801000a0e02070003400c000b0b040041000b"},
	{"calltree.wat", "" +
		"0061736d01000000010b026000017f60027f7f017f032b2a000000000000000000000000000000000000000000000000" +
		"0000000000000000000000000000000000010503010001071c02066d656d6f727902000f686f6f6b676174655f68616e" +
		"646c6500290ace022a0700100110016a0b0700100210026a0b0700100310036a0b0700100410046a0b0700100510056a" +
		"0b0700100610066a0b0700100710076a0b0700100810086a0b0700100910096a0b0700100a100a6a0b0700100b100b6a" +
		"0b0700100c100c6a0b0700100d100d6a0b0700100e100e6a0b0700100f100f6a0b0700101010106a0b0700101110116a" +
		"0b0700101210126a0b0700101310136a0b0700101410146a0b0700101510156a0b0700101610166a0b0700101710176a" +
		"0b0700101810186a0b0700101910196a0b0700101a101a6a0b0700101b101b6a0b0700101c101c6a0b0700101d101d6a" +
		"0b0700101e101e6a0b0700101f101f6a0b0700102010206a0b0700102110216a0b0700102210226a0b0700102310236a" +
		"0b0700102410246a0b0700102510256a0b0700102610266a0b0700102710276a0b0700102810286a0b040041010b0700" +
		"10001a41000b"},
	{"tailcall.wat", "" +
		"0061736d0100000001140360027e7e017e60037f7f7f017f60027f7f017f0218010b686f6f6b676174655f7631087365" +
		"745f626f6479000103030200020404017000010503010001071c02066d656d6f727902000f686f6f6b676174655f6861" +
		"6e646c6500020907010041000b01010a51023000200150047e200005200142018350047e200020017c200142017d1201" +
		"05200020017c200142017d41001300000b0b0b1e004100420042c0843d2000ad7c100137030041004100410810001a41" +
		"000b"},
	{"atomics.wat", "" +
		"0061736d01000000010e0260037f7f7f017f60027f7f017f0218010b686f6f6b676174655f7631087365745f626f6479" +
		"0000030201010503010001071c02066d656d6f727902000f686f6f6b676174655f68616e646c6500010a640162004100" +
		"4100fe1702004108422afe18030041002000fe1e02001a41002000fe1e02001a41002000fe1e02001a4108422a2000ad" +
		"42e8077efe4903001afe030041104100fe10020036020041144108fe110300a736020041004110410810001a41000b"},
	{"features.wat", "" +
		"0061736d0100000001150360027f7f017f60037f7f7f017f60027f7f027f7f0230020b686f6f6b676174655f76310962" +
		"6f64795f7265616400000b686f6f6b676174655f7631087365745f626f64790001030706000000000200040401700004" +
		"05030100010606017000d2030b071c02066d656d6f727902000f686f6f6b676174655f68616e646c650007091f030441" +
		"000b03d2020bd2030bd0700b057003d2040bd2050bd0700b010001020c01020afb01060700200020016a0b0700200020" +
		"016c0b0700200020016b0b070020002001730b0c00200020016e20002001700bcb0101037f4100412e418002fc0b0041" +
		"800141c000100021024100418001fd0004004101fd0ffd6efd0b0400200241071006020221042103200420030b210321" +
		"04411020033a0000411120043a00004112200241e40041001100003a000041132002410341011100003a000041024100" +
		"4102fc0c0100fc0d0241142002410141021100003a00004115200241ff0141031100003a000041022300260041162002" +
		"410541021100003a0000411741004105fc080000fc0901411c41004104fc0a000041004100412010011a41000b0b0f02" +
		"010562756c6b2101057370656e74"},
}
