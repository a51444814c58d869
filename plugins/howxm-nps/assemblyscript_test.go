package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/plugins/plugintest"
	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
	"github.com/hookgate/hookgate/plugins/sdk/sdktest/wasmtest"
	"github.com/hookgate/hookgate/transforms"
)

// asDir is the same plugin written in AssemblyScript (README.md, "The same
// plugin in AssemblyScript").
const asDir = "plugins/howxm-nps/assemblyscript"

// differentialInputs are events and configs on which the Go plugin and
// its AssemblyScript twin must give the same outcome: the unit tests'
// cases, and what only a hand-written JSON reader can get wrong (escapes
// in every string it compares or prints, surrogate pairs, string scores).
func differentialInputs(t testing.TB) map[string]sdktest.Input {
	fx := fixture(t)
	low := edit(t, fx, `"field_1": 10`, `"field_1": 3`)
	in := func(body []byte, config string) sdktest.Input {
		return sdktest.Input{Body: body, Config: []byte(config), Targets: []string{"crm"}}
	}
	score := func(v string) []byte { return edit(t, low, `"field_1": 3`, `"field_1": `+v) }
	// small is a survey of two questions with these event_type, score and
	// other answer (raw JSON text); extra goes at the end of entry.
	small := func(eventType, score, other, extra string) []byte {
		return []byte(`{"event_type":` + eventType + `,"campaign":{"id":"c1","name":"N","fields":[{"label":"S","code":"s","type":"NpsField"},{"label":"A","code":"a","type":"Text"}]},` +
			`"entry":{"serial_number":1,"fields":{"s":` + score + `,"a":` + other + `},"customer":{"uid":"u"},"system_link":"l","created_at":"t"` + extra + `}}`)
	}
	return map[string]sdktest.Input{
		"seed payload dropped":        in(fx, crm),
		"ticket":                      in(low, crm),
		"score equal to max_score":    in(score("6"), crm),
		"default max_score":           in(fx, `{"target":"crm"}`),
		"max_score 10":                in(fx, `{"max_score":10,"target":"crm"}`),
		"fractional max_score":        in(score("6.5"), `{"max_score":6.25,"target":"crm"}`),
		"negative max_score":          in(score("-1"), `{"max_score":-0.5,"target":"crm"}`),
		"no target replaces the body": in(low, `{"max_score": 6}`),
		"empty target":                in(low, `{"target":""}`),
		"escaped target":              in(low, `{"target":"c\u0072m"}`),
		"other event type":            in(edit(t, low, `"event_type": "entry_submitted"`, `"event_type": "entry_updated"`), crm),
		"escaped event type":          in(edit(t, low, `"event_type": "entry_submitted"`, `"event_type": "entry\u005fsubmitted"`), crm),
		"event type not a string":     in(edit(t, low, `"event_type": "entry_submitted"`, `"event_type": ["entry_submitted"]`), crm),
		"no event type":               in(edit(t, low, ",\n  \"event_type\": \"entry_submitted\"", ``), crm),
		"empty payload":               in([]byte(`{}`), crm),
		"empty body":                  in([]byte(``), crm),
		"no NpsField":                 in(edit(t, low, `"type": "NpsField"`, `"type": "Rating"`), crm),
		"escaped NpsField type":       in(edit(t, low, `"type": "NpsField"`, `"type": "\u004epsField"`), crm),
		"NpsField without a code":     in(edit(t, low, `"code": "field_1",`, ``), crm),
		"fields an object": in(edit(t, low, `"fields": [`, `"fields": {"x": [`, `"type": "EndingField"
      }
    ]`, `"type": "EndingField"
      }
    ]}`), crm),
		"answers an array": in(edit(t, low, `"fields": {`, `"fields": [{`, `"field_5": "null"
    },`, `"field_5": "null"
    }],`), crm),
		"no NPS answer":         in(edit(t, low, `"field_1": 3,`, ``), crm),
		"null NPS answer":       in(score("null"), crm),
		"empty NPS answer":      in(score(`""`), crm),
		"NPS answer a word":     in(score(`"great"`), crm),
		"NPS answer an object":  in(score(`{"v":3}`), crm),
		"NPS answer true":       in(score(`true`), crm),
		"numeric string":        in(score(`"3"`), crm),
		"fractional string":     in(score(`"3.5"`), crm),
		"exponent string":       in(score(`"5e-1"`), crm),
		"tiny string":           in(score(`"1.5e-9"`), crm),
		"escaped numeric":       in(score(`"\u0033"`), crm),
		"string above max":      in(score(`"8.25"`), crm),
		"string with a space":   in(score(`" 3"`), crm),
		"two numbers in string": in(score(`"3,4"`), crm),
		"negative zero":         in(score(`-0`), crm),
		"fractional score":      in(score(`2.50`), crm),
		"exponent score":        in(score(`1e1`), crm),
		"huge score":            in(score(`1e400`), crm),
		"escaped keys and codes": in([]byte(`{"event_type":"entry_submitted",
			"campaign":{"id":"c1","name":"N","fields":[
				{"label":"Q \"one\"","code":"q\u002e1","type":"TextArea"},
				{"label":"Score","code":"n\u0070s","type":"NpsField"},
				{"label":"Emoji \ud83d\ude00","code":"\ud83d\ude00","type":"TextArea"},
				{"label":"Lone","code":"\ud800x","type":"TextArea"},
				{"label":"Bye","code":"end","type":"End\u0069ngField"}]},
			"entry":{"serial_number":7,"fields":{"q.1":"line\nbreak","nps":0,"\ud83d\ude00":"smile","\ufffdx":"lone","end":"bye"},
				"customer":{"uid":"u1","name":"Ann"},"system_link":"https://x/7","created_at":"2026-01-01T00:00:00Z"}}`), crm),
		"questions not an array": in([]byte(questionsNotArray), crm),
		"two NpsFields":          in([]byte(twoNpsFields), crm),
		"customer and answers":   in([]byte(customerAndAnswers), crm),
		"skipped answers":        in([]byte(skippedAnswers), crm),
		"duplicate answer keys": in([]byte(`{"event_type":"entry_submitted","campaign":{"fields":[{"label":"S","code":"s","type":"NpsField"},{"label":"S2","code":"s","type":"NpsField"}]},
			"entry":{"fields":{"s":2,"s":9}}}`), crm),
		// Text the host's walk passes without reading inside strings:
		// gjson's unescape, which the Go SDK uses, stops at a control
		// byte, an unknown escape or a short \u, and reads a \u that is
		// not hex as U+0000.
		"escape stops event type":    in(small(`"entry_submitted\x"`, `3`, `"x"`, ""), crm),
		"control byte in event type": in(small("\"entry_submitted\t\\n\"", `3`, `"x"`, ""), crm),
		"escape stops score":         in(small(`"entry_submitted"`, `"3\x"`, `"x"`, ""), crm),
		"short u in score":           in(small(`"entry_submitted"`, `"3\u"`, `"x"`, ""), crm),
		"answer cut to nothing":      in(small(`"entry_submitted"`, `3`, `"\x"`, ""), crm),
		"answer cut to null":         in(small(`"entry_submitted"`, `3`, "\"null\x01\\n\"", ""), crm),
		"key cut short":              in([]byte(`{"event_type":"entry_submitted","campaign":{"fields":[{"label":"S","code":"s","type":"NpsField"}]},"entry":{"fields":{"s\x":9,"s":1}}}`), crm),
		"code cut short":             in([]byte(`{"event_type":"entry_submitted","campaign":{"fields":[{"label":"S","code":"s\x","type":"NpsField"}]},"entry":{"fields":{"s":1,"sx":2}}}`), crm),
		"type cut short":             in([]byte(`{"event_type":"entry_submitted","campaign":{"fields":[{"label":"S","code":"s","type":"NpsField\x"}]},"entry":{"fields":{"s":1}}}`), crm),
		"u not hex":                  in([]byte(`{"event_type":"entry_submitted","campaign":{"fields":[{"label":"S","code":"\uzzzz","type":"NpsField"}]},"entry":{"fields":{"\u0000":1}}}`), crm),
		// Whole numbers past 2^53, which AssemblyScript's dtoa writes
		// with a ".0".
		"huge max_score":         in(small(`"entry_submitted"`, `1e21`, `"x"`, ""), `{"max_score":1e20,"target":"crm"}`),
		"2^53 max_score":         in(small(`"entry_submitted"`, `1e17`, `"x"`, ""), `{"max_score":9007199254740992,"target":"crm"}`),
		"huge string score":      in(small(`"entry_submitted"`, `"-1e20"`, `"x"`, ""), crm),
		"2^53 string score":      in(small(`"entry_submitted"`, `"-9007199254740992"`, `"x"`, ""), crm),
		"18-digit string score":  in(small(`"entry_submitted"`, `"-123456789012345678"`, `"x"`, ""), crm),
		"max_score not a number": in(low, `{"max_score":"six","target":"crm"}`),
		"target not a string":    in(low, `{"target":5}`),
		"config not JSON":        in(low, `{"target":`),
		"unknown target":         in(low, `{"target":"crm2"}`),
	}
}

// TestAssemblyScriptSameOutcomes runs both builds in the real host on
// every differential input: same drop and reason, same ticket, same
// failure.
func TestAssemblyScriptSameOutcomes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin to wasm twice")
	}
	as := plugintest.AssemblyScript(t, asDir)
	for name, in := range differentialInputs(t) {
		t.Run(name, func(t *testing.T) {
			want, wantErr := wasmtest.Run(t, "plugins/howxm-nps", in)
			got, gotErr := wasmtest.RunModule(t, "howxm-nps-as", as, in)
			if (wantErr == nil) != (gotErr == nil) {
				t.Fatalf("error: Go %v, AssemblyScript %v", wantErr, gotErr)
			}
			if wantErr != nil {
				// Same kind, same sentence after the plugin's prefix
				// (the Go SDK says "sdk:" where the twin says "howxm-nps:").
				var we, ge *transforms.PluginError
				if !errors.As(wantErr, &we) || !errors.As(gotErr, &ge) || we.Kind != ge.Kind || tail(we.Err.Error()) != tail(ge.Err.Error()) {
					t.Fatalf("error: Go %v, AssemblyScript %v", wantErr, gotErr)
				}
				return
			}
			if d := wasmtest.Diff(want, got, "Go", "AssemblyScript"); d != "" {
				t.Fatal(d)
			}
			if !want.Dropped && len(want.Emitted) == 0 && string(want.Body) == string(in.Body) {
				t.Fatal("neither build changed the event: the case tests nothing")
			}
		})
	}
}

// tail is a fail message without "failed: " and the prefix of whoever
// wrote it ("sdk: " or "howxm-nps: ").
func tail(msg string) string {
	msg = strings.TrimPrefix(msg, "failed: ")
	if _, rest, ok := strings.Cut(msg, ": "); ok {
		return rest
	}
	return msg
}

// TestAssemblyScriptDifferences pins where the twin knowingly differs
// from the Go plugin (README.md lists them): a body the host's JSON walk
// refuses, a string score Go's ParseFloat reads but JSON does not, a
// target name Go would quote, a max_score only an exponent can write.
func TestAssemblyScriptDifferences(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin to wasm twice")
	}
	as := plugintest.AssemblyScript(t, asDir)
	low := edit(t, fixture(t), `"field_1": 10`, `"field_1": 3`)
	in := func(body []byte, config string) sdktest.Input {
		return sdktest.Input{Body: body, Config: []byte(config), Targets: []string{"crm"}}
	}
	// Go makes a ticket where the twin drops.
	drops := []struct{ name, body, reason string }{
		// Everything the ticket needs comes before the damage: Go's SDK,
		// refused by the host, reads it with gjson, which forgives.
		{"truncated body", `{"event_type":"entry_submitted","campaign":{"fields":[{"label":"S","code":"s","type":"NpsField"}]},"entry":{"fields":{"s":1}}`,
			"howxm-nps: event_type is missing, not entry_submitted"},
		{"score +3", string(edit(t, low, `"field_1": 3`, `"field_1": "+3"`)), `howxm-nps: NPS answer "+3" is not a number`},
		{"score 03", string(edit(t, low, `"field_1": 3`, `"field_1": "03"`)), `howxm-nps: NPS answer "03" is not a number`},
	}
	for _, tt := range drops {
		t.Run(tt.name, func(t *testing.T) {
			want, _ := wasmtest.Run(t, "plugins/howxm-nps", in([]byte(tt.body), crm))
			got, err := wasmtest.RunModule(t, "howxm-nps-as", as, in([]byte(tt.body), crm))
			if err != nil || !got.Dropped || got.DropReason != tt.reason {
				t.Fatalf("AssemblyScript: err %v, dropped %v %q; want %q", err, got.Dropped, got.DropReason, tt.reason)
			}
			if want.Dropped || len(want.Emitted) != 1 {
				t.Fatalf("Go: dropped %v %q, emitted %d; want a ticket", want.Dropped, want.DropReason, len(want.Emitted))
			}
		})
	}
	t.Run("target name quoted", func(t *testing.T) {
		config := `{"target":"c\"rm"}`
		_, wantErr := wasmtest.Run(t, "plugins/howxm-nps", in(low, config))
		_, gotErr := wasmtest.RunModule(t, "howxm-nps-as", as, in(low, config))
		if wantErr == nil || !strings.Contains(wantErr.Error(), `emit("c\"rm"): unknown target`) {
			t.Fatalf("Go: %v", wantErr)
		}
		if gotErr == nil || !strings.Contains(gotErr.Error(), `emit("c"rm"): unknown target`) {
			t.Fatalf("AssemblyScript: %v", gotErr)
		}
	})
	t.Run("max_score 1e-7", func(t *testing.T) {
		_, err := wasmtest.RunModule(t, "howxm-nps-as", as, in(low, `{"max_score":1e-7,"target":"crm"}`))
		var pe *transforms.PluginError
		if !errors.As(err, &pe) || !strings.Contains(pe.Error(), "max_score must be 0 or between 1e-6 and 1e21") {
			t.Fatalf("err = %v", err)
		}
		if _, err := wasmtest.Run(t, "plugins/howxm-nps", in(low, `{"max_score":1e-7,"target":"crm"}`)); err != nil {
			t.Fatalf("Go: %v", err)
		}
	})
}

// BenchmarkAssemblyScript measures both builds on the seed fixture side by
// side: the ticket (score 3) and the usual drop (score 10).
func BenchmarkAssemblyScript(b *testing.B) {
	as := plugintest.AssemblyScript(b, asDir)
	fx := fixture(b)
	inputs := []struct {
		name string
		body []byte
	}{
		{"ticket", edit(b, fx, `"field_1": 10`, `"field_1": 3`)},
		{"drop", fx},
	}
	for _, in := range inputs {
		input := sdktest.Input{Body: in.body, Config: []byte(crm), Targets: []string{"crm"}}
		b.Run(in.name+"/go", func(b *testing.B) { wasmtest.Benchmark(b, "plugins/howxm-nps", input) })
		b.Run(in.name+"/assemblyscript", func(b *testing.B) { wasmtest.BenchmarkModule(b, "howxm-nps-as", as, input) })
	}
}
