package abitest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// TestGuestProtocolDocumented: every mode the guest handles is in the mode
// protocol of its package documentation, and nothing else is, so a guest
// written from the documentation implements the table Run checks.
func TestGuestProtocolDocumented(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("guest", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var handled, documented []string
	for _, m := range regexp.MustCompile(`(?m)^\tcase "(\w+)":`).FindAllSubmatch(src, -1) {
		handled = append(handled, string(m[1]))
	}
	for _, m := range regexp.MustCompile(`(?m)^//   - (\w+): `).FindAllSubmatch(src, -1) {
		documented = append(documented, string(m[1]))
	}
	slices.Sort(handled)
	slices.Sort(documented)
	if len(handled) < 10 || !slices.Equal(handled, documented) {
		t.Fatalf("the guest handles the modes %v but documents %v", handled, documented)
	}
}
