package main

import (
	"errors"
	"os"
	"testing"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
)

func howxm(t testing.TB) []byte {
	b, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFilter(t *testing.T) {
	fx := howxm(t)
	doc := []byte(`{"n":5,"s":"7","name":"Dusan Kmet","tags":["vip","pro"],"nums":[1,2],"ok":true,"nil":null,"obj":{"a":1},"empty":""}`)
	tests := []struct {
		name     string
		body     []byte
		config   string
		wantDrop string // "" means kept
	}{
		{"seed: score 10 is not lte 6", fx, `{"rules":[{"path":"entry.fields.field_1","op":"lte","value":6}]}`,
			"filter: rule 0 not met: entry.fields.field_1 lte 6"},
		{"seed: score 10 is gte 9", fx, `{"rules":[{"path":"entry.fields.field_1","op":"gte","value":9}]}`, ""},
		{"seed: all rules hold", fx, `{"mode":"all","rules":[{"path":"event_type","op":"eq","value":"entry_submitted"},{"path":"entry.customer.email","op":"exists"}]}`, ""},
		{"seed: custom reason", fx, `{"rules":[{"path":"entry.fields.field_1","op":"lt","value":7}],"reason":"promoter, not a CRM case"}`,
			"promoter, not a CRM case"},
		{"any: second rule holds", fx, `{"mode":"any","rules":[{"path":"entry.platform","op":"eq","value":"Windows"},{"path":"entry.platform","op":"eq","value":"Mac"}]}`, ""},
		{"any: none holds", fx, `{"mode":"any","rules":[{"path":"entry.platform","op":"eq","value":"Windows"},{"path":"entry.fields.field_1","op":"lt","value":5}]}`,
			"filter: no rule met"},
		{"any: none holds, custom reason", fx, `{"mode":"any","reason":"r","rules":[{"path":"x","op":"exists"}]}`, "r"},
		{"all: second rule fails", doc, `{"rules":[{"path":"n","op":"eq","value":5},{"path":"ok","op":"eq","value":false}]}`,
			"filter: rule 1 not met: ok eq false"},

		{"eq number", doc, `{"rules":[{"path":"n","op":"eq","value":5}]}`, ""},
		{"eq numeric string to number", doc, `{"rules":[{"path":"s","op":"eq","value":7}]}`, ""},
		{"eq string", doc, `{"rules":[{"path":"name","op":"eq","value":"Dusan Kmet"}]}`, ""},
		{"eq wrong type", doc, `{"rules":[{"path":"ok","op":"eq","value":"true"}]}`, "filter: rule 0 not met: ok eq \"true\""},
		{"eq null", doc, `{"rules":[{"path":"nil","op":"eq","value":null}]}`, ""},
		{"eq object", doc, `{"rules":[{"path":"obj","op":"eq","value":{"a":1}}]}`, ""},
		{"eq missing field", doc, `{"rules":[{"path":"missing","op":"eq","value":1}]}`, "filter: rule 0 not met: missing eq 1"},
		{"ne", doc, `{"rules":[{"path":"n","op":"ne","value":6}]}`, ""},
		{"ne equal", doc, `{"rules":[{"path":"n","op":"ne","value":5}]}`, "filter: rule 0 not met: n ne 5"},
		{"ne missing field holds", doc, `{"rules":[{"path":"missing","op":"ne","value":1}]}`, ""},
		{"lt", doc, `{"rules":[{"path":"n","op":"lt","value":6}]}`, ""},
		{"lt equal fails", doc, `{"rules":[{"path":"n","op":"lt","value":5}]}`, "filter: rule 0 not met: n lt 5"},
		{"gt", doc, `{"rules":[{"path":"n","op":"gt","value":4.5}]}`, ""},
		{"gte numeric string", doc, `{"rules":[{"path":"s","op":"gte","value":7}]}`, ""},
		{"lte strings", doc, `{"rules":[{"path":"name","op":"lte","value":"E"}]}`, ""},
		{"lt wrong type", doc, `{"rules":[{"path":"name","op":"lt","value":3}]}`, "filter: rule 0 not met: name lt 3"},
		{"lt missing", doc, `{"rules":[{"path":"missing","op":"lt","value":3}]}`, "filter: rule 0 not met: missing lt 3"},
		{"in", doc, `{"rules":[{"path":"n","op":"in","value":[1,5,9]}]}`, ""},
		{"in strings", doc, `{"rules":[{"path":"name","op":"in","value":["a","Dusan Kmet"]}]}`, ""},
		{"in not found", doc, `{"rules":[{"path":"n","op":"in","value":[1,2]}]}`, "filter: rule 0 not met: n in [1,2]"},
		{"in missing", doc, `{"rules":[{"path":"missing","op":"in","value":[null]}]}`, "filter: rule 0 not met: missing in [null]"},
		{"exists", doc, `{"rules":[{"path":"empty","op":"exists"}]}`, ""},
		{"exists null is absent", doc, `{"rules":[{"path":"nil","op":"exists"}]}`, "filter: rule 0 not met: nil exists"},
		{"exists false", doc, `{"rules":[{"path":"missing","op":"exists","value":false}]}`, ""},
		{"exists false on present", doc, `{"rules":[{"path":"n","op":"exists","value":false}]}`, "filter: rule 0 not met: n exists false"},
		{"contains substring", doc, `{"rules":[{"path":"name","op":"contains","value":"Kmet"}]}`, ""},
		{"contains substring missing", doc, `{"rules":[{"path":"name","op":"contains","value":"kmet"}]}`, "filter: rule 0 not met: name contains \"kmet\""},
		{"contains array element", doc, `{"rules":[{"path":"tags","op":"contains","value":"vip"}]}`, ""},
		{"contains array number", doc, `{"rules":[{"path":"nums","op":"contains","value":2}]}`, ""},
		{"contains array missing element", doc, `{"rules":[{"path":"tags","op":"contains","value":"free"}]}`, "filter: rule 0 not met: tags contains \"free\""},
		{"contains on number", doc, `{"rules":[{"path":"n","op":"contains","value":"5"}]}`, "filter: rule 0 not met: n contains \"5\""},
		{"empty body", []byte(``), `{"rules":[{"path":"n","op":"exists"}]}`, "filter: rule 0 not met: n exists"},
		{"body not JSON", []byte(`not json`), `{"rules":[{"path":"n","op":"eq","value":1}]}`, "filter: rule 0 not met: n eq 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := sdktest.Run(handle, sdktest.Input{Body: tt.body, Config: []byte(tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			if res.DropReason != tt.wantDrop || res.Dropped != (tt.wantDrop != "") {
				t.Fatalf("dropped %v reason %q; want %q", res.Dropped, res.DropReason, tt.wantDrop)
			}
			if !res.Dropped && (string(res.Body) != string(tt.body) || len(res.Emitted) != 0) {
				t.Fatal("a kept event must pass unchanged")
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	tests := []struct{ name, config, want string }{
		{"unknown op", `{"rules":[{"path":"a","op":"eq","value":1},{"path":"b","op":"lessthan","value":1}]}`,
			`filter: rule 1: unknown op "lessthan" (want one of eq, ne, lt, lte, gt, gte, in, exists, contains)`},
		{"missing op", `{"rules":[{"path":"a"}]}`, `filter: rule 0: missing op (one of eq, ne, lt, lte, gt, gte, in, exists, contains)`},
		{"missing path", `{"rules":[{"op":"eq","value":1}]}`, `filter: rule 0: missing path (a JSON path such as "entry.fields.field_1")`},
		{"empty path", `{"rules":[{"path":"","op":"eq","value":1}]}`, `filter: rule 0: missing path (a JSON path such as "entry.fields.field_1")`},
		{"missing value", `{"rules":[{"path":"a","op":"gt"}]}`, `filter: rule 0: op gt needs a value`},
		{"in without array", `{"rules":[{"path":"a","op":"in","value":3}]}`, `filter: rule 0: op in needs an array value, got 3`},
		{"lt with object", `{"rules":[{"path":"a","op":"lt","value":{}}]}`, `filter: rule 0: op lt compares numbers or strings, got {}`},
		{"exists with string", `{"rules":[{"path":"a","op":"exists","value":"yes"}]}`, `filter: rule 0: exists takes value true or false (or none, meaning true)`},
		{"rule not an object", `{"rules":["a"]}`, `filter: rule 0: want an object {"path", "op", "value"}, got "a"`},
		{"no rules", `{"mode":"all"}`, `filter: rules must be a non-empty array of {"path", "op", "value"}`},
		{"empty rules", `{"rules":[]}`, `filter: rules must be a non-empty array of {"path", "op", "value"}`},
		{"bad mode", `{"mode":"some","rules":[{"path":"a","op":"exists"}]}`, `filter: mode is "some"; want "all" or "any"`},
		{"reason not a string", `{"reason":1,"rules":[{"path":"a","op":"exists"}]}`, `filter: reason must be a string`},
		{"not JSON", `{"rules":`, `filter: config is not valid JSON`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdktest.Run(handle, sdktest.Input{Body: []byte(`{"a":1}`), Config: []byte(tt.config)})
			var fe *sdktest.FailError
			if !errors.As(err, &fe) || fe.Msg != tt.want {
				t.Fatalf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func BenchmarkFilterSeed(b *testing.B) {
	sdktest.Benchmark(b, handle, sdktest.Input{
		Body:   howxm(b),
		Config: []byte(`{"rules":[{"path":"event_type","op":"eq","value":"entry_submitted"},{"path":"entry.fields.field_1","op":"gte","value":6}]}`),
	})
}
