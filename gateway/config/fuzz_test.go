package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/gateway/dedupe"
	"github.com/hookgate/hookgate/gateway/verify"
)

// FuzzParse: no input panics, every failure is an *Error of one-line
// problems, the same input always gives the same answer, and a config that
// passes holds together (its routes name defined targets and plugins).
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../../config.toml", "testdata/minimal.toml", "testdata/full.toml", "testdata/chain.toml", "testdata/verify.toml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	env := mapEnv(map[string]string{"A": "a-value", "CRM_URL": "http://127.0.0.1:9000/crm", "EMPTY": "",
		"GH_NEW": "n", "GH_OLD": "o", "WHSEC": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	path := filepath.Join(f.TempDir(), "config.toml")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseWith(data, path, Options{Env: env})
		_, err2 := ParseWith(data, path, Options{Env: env})
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("two parses differ:\n%v\n---\n%v", err, err2)
		}
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 || c != nil {
				t.Fatalf("error %T %v with config %v", err, err, c)
			}
			for _, p := range ce.Problems {
				if p == "" || strings.Contains(p, "\n") {
					t.Fatalf("problem is not one line: %q", p)
				}
			}
			return
		}
		_ = c.Summary()
		for _, r := range c.Routes {
			for _, tg := range r.Targets {
				if c.Target(tg) == nil {
					t.Fatalf("route %q names undefined target %q", r.Name, tg)
				}
			}
			if r.Verify != nil {
				if _, err := verify.New(r.Verify.Spec()); err != nil {
					t.Fatalf("route %q: verify passed the loader but not verify.New: %v", r.Name, err)
				}
			}
			if r.Dedupe != nil {
				if _, err := dedupe.New(r.Dedupe.Spec()); err != nil {
					t.Fatalf("route %q: dedupe passed the loader but not dedupe.New: %v", r.Name, err)
				}
			}
			for _, s := range r.Transforms {
				if c.Plugin(s.Plugin) == nil || len(s.Config) == 0 {
					t.Fatalf("route %q step %+v", r.Name, s)
				}
			}
		}
		for _, tg := range c.Targets {
			if tg.URL == nil || tg.MaxConns < 1 || tg.Timeout <= 0 {
				t.Fatalf("target %+v", tg)
			}
		}
	})
}
