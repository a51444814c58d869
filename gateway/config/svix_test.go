package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSvixDedupe: the dedupe a standard-webhooks route gets by default
// keys on webhook-id, or svix-id when a Svix sender uses its own names
// (issue 12 item 6); a dedupe table can say the same with fallback.
func TestSvixDedupe(t *testing.T) {
	c, err := Parse([]byte(verifyRoute(`verify = { type = "standard-webhooks", secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] }`)),
		filepath.Join(t.TempDir(), "config.toml"), mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Routes[0].Dedupe; d == nil || d.Header != "webhook-id" || d.Fallback != "svix-id" || d.Spec().Fallback != "svix-id" {
		t.Fatalf("default dedupe %+v, want header webhook-id with fallback svix-id", d)
	}

	c, err = Parse([]byte(verifyRoute(`dedupe = { header = "webhook-id", fallback = "svix-id", ttl = "1h" }`)),
		filepath.Join(t.TempDir(), "config.toml"), mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Routes[0].Dedupe; d.Header != "webhook-id" || d.Fallback != "svix-id" {
		t.Fatalf("dedupe table %+v, want header webhook-id with fallback svix-id", d)
	}

	dir := t.TempDir()
	_, err = Parse([]byte(verifyRoute(`dedupe = { json = ["id"], fallback = "svix-id" }`)), filepath.Join(dir, "config.toml"), mapEnv(nil))
	want := []string{
		`route "howxm": dedupe: fallback: is a second header for when header is absent: set header too, or remove fallback`,
	}
	if err == nil {
		t.Fatal("a fallback without header was accepted")
	}
	if got := problems(t, err, dir); !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
