package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenEnv is the environment the golden configs see.
var goldenEnv = map[string]string{
	"CRM_URL":           "https://crm.example.com/api/tickets",
	"CRM_TOKEN":         "tok-123",
	"SURVEYLAB_TOKEN":   "sl-456",
	"ADMIN_TOKEN":       "adm-789",
	"GH_NEW":            "gh-new-secret",
	"GH_OLD":            "gh-old-secret",
	"WHSEC":             "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	"IDP_URL":           "https://idp.example.com",
	"CRM_CLIENT_SECRET": "oat-test-client-secret-6b1d",
}

// TestGolden loads each testdata/*.toml and compares the normalized Config,
// rendered as JSON, with testdata/NAME.golden. Run with -update to rewrite.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".toml")
		t.Run(name, func(t *testing.T) {
			c, err := LoadWith(in, Options{Env: mapEnv(goldenEnv), SkipWasmCheck: true})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(render(reflect.ValueOf(c))); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s; got:\n%s", in, path, got)
			}
		})
	}
}

// render turns a Config into plain values a reader can check: durations as
// "10s", URLs as strings, step configs as their exact JSON text, and
// secrets as both their value and their redacted form (the golden inputs
// hold only fake secrets).
func render(v reflect.Value) any {
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case *url.URL:
		if x == nil {
			return nil
		}
		return x.String()
	case Secret:
		if !x.IsSet() {
			return ""
		}
		return x.Reveal() + " (prints as " + x.String() + ")"
	case Step:
		return map[string]any{"Plugin": x.Plugin, "Config": string(x.Config)}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return render(v.Elem())
	case reflect.Struct:
		out := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				out[v.Type().Field(i).Name] = render(v.Field(i))
			}
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = render(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[k.String()] = render(v.MapIndex(k))
		}
		return out
	}
	return v.Interface()
}
