package main

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
)

func fixture(t testing.TB) []byte {
	b, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit returns the fixture with old replaced by new, failing when old is
// not there (so a test cannot silently run on the unedited payload).
func edit(t testing.TB, b []byte, pairs ...string) []byte {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if !bytes.Contains(b, []byte(pairs[i])) {
			t.Fatalf("fixture has no %q", pairs[i])
		}
		b = bytes.Replace(b, []byte(pairs[i]), []byte(pairs[i+1]), 1)
	}
	return b
}

const crm = `{"max_score": 6, "target": "crm"}`

func TestFixture(t *testing.T) {
	golden, err := os.ReadFile("testdata/ticket_score3.json")
	if err != nil {
		t.Fatal(err)
	}
	golden = bytes.TrimSpace(golden)
	fx := fixture(t)
	low := edit(t, fx, `"field_1": 10`, `"field_1": 3`)
	tests := []struct {
		name       string
		body       []byte
		config     string
		wantDrop   string
		wantTicket string // exact body of the one delivery to crm
	}{
		{name: "seed payload, score 10 is above 6", body: fx, config: crm,
			wantDrop: "howxm-nps: score 10 above max_score 6"},
		{name: "score 3 becomes a ticket", body: low, config: crm, wantTicket: string(golden)},
		{name: "score equal to max_score is kept", body: edit(t, fx, `"field_1": 10`, `"field_1": 6`), config: crm,
			wantTicket: string(bytes.Replace(bytes.Replace(golden, []byte(`"score":3`), []byte(`"score":6`), 1), []byte(`"answer":3}`), []byte(`"answer":6}`), 1))},
		{name: "max_score defaults to 6", body: fx, config: `{"target":"crm"}`,
			wantDrop: "howxm-nps: score 10 above max_score 6"},
		{name: "max_score 10 keeps the seed payload", body: fx, config: `{"max_score":10,"target":"crm"}`,
			wantTicket: string(bytes.Replace(bytes.Replace(golden, []byte(`"score":3`), []byte(`"score":10`), 1), []byte(`"answer":3}`), []byte(`"answer":10}`), 1))},
		{name: "other event type", body: edit(t, low, `"event_type": "entry_submitted"`, `"event_type": "entry_updated"`), config: crm,
			wantDrop: `howxm-nps: event_type is "entry_updated", not entry_submitted`},
		{name: "no event type", body: edit(t, low, `,
  "event_type": "entry_submitted"`, ``), config: crm,
			wantDrop: "howxm-nps: event_type is missing, not entry_submitted"},
		{name: "no NpsField question", body: edit(t, low, `"type": "NpsField"`, `"type": "Rating"`), config: crm,
			wantDrop: "howxm-nps: the survey has no NpsField question"},
		{name: "no NPS answer", body: edit(t, low, `"field_1": 3,`, ``), config: crm,
			wantDrop: "howxm-nps: no NPS answer (field_1)"},
		{name: "null NPS answer", body: edit(t, low, `"field_1": 3`, `"field_1": null`), config: crm,
			wantDrop: "howxm-nps: no NPS answer (field_1)"},
		{name: "NPS answer of the wrong type", body: edit(t, low, `"field_1": 3`, `"field_1": "great"`), config: crm,
			wantDrop: `howxm-nps: NPS answer "great" is not a number`},
		{name: "NPS answer as an object", body: edit(t, low, `"field_1": 3`, `"field_1": {"v":3}`), config: crm,
			wantDrop: `howxm-nps: NPS answer {"v":3} is not a number`},
		{name: "empty payload", body: []byte(`{}`), config: crm,
			wantDrop: "howxm-nps: event_type is missing, not entry_submitted"},
		{name: "NPS answer as a numeric string", body: edit(t, low, `"field_1": 3`, `"field_1": "3"`), config: crm,
			wantTicket: string(bytes.Replace(golden, []byte(`"answer":3}`), []byte(`"answer":"3"}`), 1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := sdktest.Run(handle, sdktest.Input{Body: tt.body, Config: []byte(tt.config), Targets: []string{"crm"}})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantDrop != "" {
				if !res.Dropped || res.DropReason != tt.wantDrop || len(res.Emitted) != 0 {
					t.Fatalf("dropped %v reason %q emitted %d; want drop %q", res.Dropped, res.DropReason, len(res.Emitted), tt.wantDrop)
				}
				return
			}
			if res.Dropped {
				t.Fatalf("dropped: %s", res.DropReason)
			}
			if len(res.Emitted) != 1 || res.Emitted[0].Target != "crm" {
				t.Fatalf("emitted %+v, want one delivery to crm", res.Emitted)
			}
			d := res.Emitted[0]
			if string(d.Body) != tt.wantTicket {
				t.Fatalf("ticket\n%s\nwant\n%s", d.Body, tt.wantTicket)
			}
			if d.Headers["Content-Type"] != "application/json" {
				t.Fatalf("Content-Type = %q", d.Headers["Content-Type"])
			}
		})
	}
}

// customerAndAnswers: questions of every kind the ticket treats apart
// (escaped label, code with a '.', empty, missing and array answers, an
// ending), customer fields missing.
const customerAndAnswers = `{"event_type":"entry_submitted",
		"campaign":{"id":"c1","name":"N","fields":[
			{"label":"Q \"one\"","code":"q.1","type":"TextArea"},
			{"label":"Score","code":"nps","type":"NpsField"},
			{"label":"Empty","code":"e","type":"TextArea"},
			{"label":"Missing","code":"m","type":"TextArea"},
			{"label":"Many","code":"multi","type":"MultipleChoice"},
			{"label":"Bye","code":"end","type":"EndingField"}]},
		"entry":{"serial_number":7,"fields":{"multi":["a","b"],"nps":0,"e":"","q.1":"line\nbreak","end":"bye","extra":"not asked"},
			"customer":{"uid":"u1","name":"Ann"},"system_link":"https://x/7","created_at":"2026-01-01T00:00:00Z"}}`

func TestCustomerAndAnswers(t *testing.T) {
	body := []byte(customerAndAnswers)
	res, err := sdktest.Run(handle, sdktest.Input{Body: body, Config: []byte(crm)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"source":"howxm","survey":{"id":"c1","name":"N"},"serial_number":7,"score":0,` +
		`"customer":{"uid":"u1","name":"Ann","email":null,"mobile":null},` +
		`"answers":[{"question":"Q \"one\"","answer":"line\nbreak"},{"question":"Score","answer":0},{"question":"Many","answer":["a","b"]}],` +
		`"link":"https://x/7","created_at":"2026-01-01T00:00:00Z"}`
	if len(res.Emitted) != 1 || string(res.Emitted[0].Body) != want {
		t.Fatalf("emitted %d; body\n%s\nwant\n%s", len(res.Emitted), firstBody(res), want)
	}
}

func TestNoTargetReplacesBody(t *testing.T) {
	low := edit(t, fixture(t), `"field_1": 10`, `"field_1": 3`)
	golden, _ := os.ReadFile("testdata/ticket_score3.json")
	res, err := sdktest.Run(handle, sdktest.Input{Body: low, Config: []byte(`{"max_score":6}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Emitted) != 0 || string(res.Body) != string(bytes.TrimSpace(golden)) {
		t.Fatalf("emitted %d, body %s", len(res.Emitted), res.Body)
	}
}

func TestBadConfig(t *testing.T) {
	tests := []struct {
		name, config, wantErr string
		targets               []string
	}{
		{"max_score not a number", `{"max_score":"six","target":"crm"}`, "howxm-nps: config max_score must be a number, e.g. 6", nil},
		{"target not a string", `{"target":5}`, "howxm-nps: config target must be a target name (a string)", nil},
		{"not JSON", `{"target":`, "howxm-nps: config is not valid JSON", nil},
		{"unknown target", `{"target":"crm2"}`, `sdk: emit("crm2"): unknown target`, []string{"crm"}},
	}
	low := edit(t, fixture(t), `"field_1": 10`, `"field_1": 3`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdktest.Run(handle, sdktest.Input{Body: low, Config: []byte(tt.config), Targets: tt.targets})
			var fe *sdktest.FailError
			if !errors.As(err, &fe) || fe.Msg != tt.wantErr {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func firstBody(r sdktest.Result) string {
	if len(r.Emitted) == 0 {
		return ""
	}
	return string(r.Emitted[0].Body)
}

func BenchmarkTicket(b *testing.B) {
	body := edit(b, fixture(b), `"field_1": 10`, `"field_1": 3`)
	sdktest.Benchmark(b, handle, sdktest.Input{Body: body, Config: []byte(crm)})
}

func BenchmarkDrop(b *testing.B) {
	sdktest.Benchmark(b, handle, sdktest.Input{Body: fixture(b), Config: []byte(crm)})
}

// skippedAnswers: answers the ticket leaves out, and two it keeps,
// escapes included ("\u006eull" is Howxm's "null" placeholder too).
const skippedAnswers = `{"event_type":"entry_submitted","campaign":{"fields":[{"label":"S","code":"s","type":"NpsField"},
		{"label":"A","code":"a"},{"label":"B","code":"b"},{"label":"C","code":"c"},{"label":"D","code":"d"},{"label":"E","code":"e"}]},
		"entry":{"fields":{"s":1,"a":"\u006eull","b":"\u0000","c":"","d":null,"e":"\"null\""}}}`

// TestSkippedAnswers: what leaves an answer out is decided on its value.
func TestSkippedAnswers(t *testing.T) {
	body := []byte(skippedAnswers)
	res, err := sdktest.Run(handle, sdktest.Input{Body: body, Config: []byte(crm)})
	if err != nil || len(res.Emitted) != 1 {
		t.Fatalf("err %v, emitted %d", err, len(res.Emitted))
	}
	want := `"answers":[{"question":"S","answer":1},{"question":"B","answer":"\u0000"},{"question":"E","answer":"\"null\""}]`
	if !bytes.Contains(res.Emitted[0].Body, []byte(want)) {
		t.Fatalf("ticket %s\nwant %s", res.Emitted[0].Body, want)
	}
}

// questionsNotArray: campaign.fields is an object whose member is an
// NpsField question. '#' goes through an object's members too, so only
// the plugin's check that the questions are an array keeps it out.
const questionsNotArray = `{"event_type":"entry_submitted","campaign":{"fields":{"x":{"label":"S","code":"s","type":"NpsField"}}},"entry":{"fields":{"s":1}}}`

// twoNpsFields: the first NpsField question decides, not a later one.
const twoNpsFields = `{"event_type":"entry_submitted","campaign":{"fields":[{"label":"S","code":"s","type":"NpsField"},{"label":"T","code":"t","type":"NpsField"}]},
	"entry":{"fields":{"s":2,"t":9}}}`

func TestWhichQuestions(t *testing.T) {
	res, err := sdktest.Run(handle, sdktest.Input{Body: []byte(questionsNotArray), Config: []byte(crm)})
	if err != nil || !res.Dropped || res.DropReason != "howxm-nps: the survey has no NpsField question" {
		t.Fatalf("fields an object: err %v, dropped %v %q", err, res.Dropped, res.DropReason)
	}
	res, err = sdktest.Run(handle, sdktest.Input{Body: []byte(twoNpsFields), Config: []byte(crm)})
	if err != nil || res.Dropped || len(res.Emitted) != 1 || !bytes.Contains(res.Emitted[0].Body, []byte(`"score":2,`)) {
		t.Fatalf("two NpsFields: err %v, dropped %v %q, emitted %+v; want a ticket with the first one's score, 2", err, res.Dropped, res.DropReason, res.Emitted)
	}
}
