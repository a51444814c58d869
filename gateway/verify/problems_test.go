package verify

import (
	"errors"
	"slices"
	"testing"
)

// TestNewReportsEveryProblem: New names every field at fault, not only
// the first, so `hookgate check` shows a whole table's problems at once.
func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Spec{Type: TypeHMAC, Secrets: []string{"", "x"}, Algorithm: "md5", Encoding: "base32", Username: "u", AllowIPs: []string{"10.0.0.300"}})
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var got []string
	for _, e := range errs {
		var se *SpecError
		if !errors.As(e, &se) {
			t.Fatalf("%v is not a *SpecError", e)
		}
		got = append(got, se.Field)
	}
	want := []string{"username", "allow_ips[0]", "secrets[0]", "algorithm", "encoding"}
	if !slices.Equal(got, want) {
		t.Fatalf("fields at fault %q, want %q", got, want)
	}
}
