package main

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hookgate/hookgate/plugins/sdk"
	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
)

const cfg = `{"crm_target":"crm-transcripts","survey_target":"surveylab","collector_id":"C1"}`

var targets = []string{"crm-transcripts", "surveylab"}

func fixture(t testing.TB) []byte {
	b, err := os.ReadFile("../../testdata/smartsupp_chat_closed.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func edit(t testing.TB, b []byte, pairs ...string) []byte {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if !bytes.Contains(b, []byte(pairs[i])) {
			t.Fatalf("payload has no %q", pairs[i])
		}
		b = bytes.Replace(b, []byte(pairs[i]), []byte(pairs[i+1]), 1)
	}
	return b
}

func run(t *testing.T, body []byte, config string) sdktest.Result {
	t.Helper()
	res, err := sdktest.Run(handle, sdktest.Input{Body: body, Config: []byte(config), Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestSeedChat(t *testing.T) {
	golden, err := os.ReadFile("testdata/transcript.json")
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, fixture(t), cfg)
	if res.Dropped || len(res.Emitted) != 2 {
		t.Fatalf("dropped %v, emitted %d; want 2 deliveries", res.Dropped, len(res.Emitted))
	}
	crm, survey := res.Emitted[0], res.Emitted[1]
	if crm.Target != "crm-transcripts" || string(crm.Body) != string(bytes.TrimSpace(golden)) ||
		crm.Headers["Content-Type"] != "application/json" || crm.Method != "" || len(crm.Query) != 0 {
		t.Fatalf("transcript delivery %+v\nbody %s", crm, crm.Body)
	}
	wantQuery := map[string]string{
		"cId": "C1", "email": "dusan@domain.com", "crk": "ss-208-55039",
		"firstName": "Dusan", "lastName": "Kmet", "referrer": "http://developers.smartsupp.com/smartsupp/hook-post",
	}
	if survey.Target != "surveylab" || survey.Method != "GET" || len(survey.Body) != 0 || len(survey.Headers) != 0 || !sameMap(survey.Query, wantQuery) {
		t.Fatalf("invitation %+v\nwant query %v", survey, wantQuery)
	}
	// The crk is stable: the same chat gives the same key every time.
	if again := run(t, fixture(t), cfg); again.Emitted[1].Query["crk"] != "ss-208-55039" {
		t.Fatalf("crk changed: %q", again.Emitted[1].Query["crk"])
	}
}

func TestInvitation(t *testing.T) {
	fx := fixture(t)
	tests := []struct {
		name      string
		body      []byte
		config    string
		wantQuery map[string]string // nil: no invitation
	}{
		{"no email", edit(t, fx, `"email": "dusan@domain.com",`, ``), cfg, nil},
		{"empty email", edit(t, fx, `"dusan@domain.com"`, `""`), cfg, nil},
		{"blank email", edit(t, fx, `"dusan@domain.com"`, `"  "`), cfg, nil},
		{"null email", edit(t, fx, `"dusan@domain.com"`, `null`), cfg, nil},
		{"no survey target", fx, `{"crm_target":"crm-transcripts"}`, nil},
		{"one-word name", edit(t, fx, `"name": "Dusan Kmet",
    "email"`, `"name": "Dusan",
    "email"`), cfg,
			map[string]string{"cId": "C1", "email": "dusan@domain.com", "crk": "ss-208-55039", "firstName": "Dusan", "referrer": "http://developers.smartsupp.com/smartsupp/hook-post"}},
		{"three-word name, no paths", edit(t, edit(t, fx, `"name": "Dusan Kmet",
    "email"`, `"name": " Jan van Dijk ",
    "email"`), `"url": "http://developers.smartsupp.com/smartsupp/hook-post"`, `"x": 1`), cfg,
			map[string]string{"cId": "C1", "email": "dusan@domain.com", "crk": "ss-208-55039", "firstName": "Jan", "lastName": "van Dijk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, tt.body, tt.config)
			if tt.wantQuery == nil {
				if len(res.Emitted) != 1 || res.Emitted[0].Target != "crm-transcripts" {
					t.Fatalf("emitted %+v; want only the transcript", res.Emitted)
				}
				return
			}
			if len(res.Emitted) != 2 || !sameMap(res.Emitted[1].Query, tt.wantQuery) {
				t.Fatalf("emitted %+v\nwant query %v", res.Emitted, tt.wantQuery)
			}
		})
	}
}

func TestTranscriptEdgeCases(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"no messages",
			`{"accountId":1,"beginAt":0,"endAt":1000,"channel":{"id":9,"rating":null},"visitor":{"name":"V"},"messages":[]}`,
			`{"chat_id":9,"account_id":1,"visitor":{"name":"V","email":null,"id":null},"started_at":"1970-01-01T00:00:00.000Z","ended_at":"1970-01-01T00:00:01.000Z","rating":null,"messages":[]}`},
		{"messages and times missing",
			`{"channel":{"id":"c-9"}}`,
			`{"chat_id":"c-9","account_id":null,"visitor":{"name":null,"email":null,"id":null},"started_at":null,"ended_at":null,"rating":null,"messages":[]}`},
		{"wrong types",
			`{"accountId":1,"beginAt":"yesterday","channel":{"id":9},"visitor":"nobody","messages":{"type":"visitor"}}`,
			`{"chat_id":9,"account_id":1,"visitor":{"name":null,"email":null,"id":null},"started_at":null,"ended_at":null,"rating":null,"messages":[]}`},
		{"only system messages",
			`{"channel":{"id":9},"messages":[{"type":"system","content":"agent.join","sentAt":1},{"type":"bot","content":"x"}]}`,
			`{"chat_id":9,"account_id":null,"visitor":{"name":null,"email":null,"id":null},"started_at":null,"ended_at":null,"rating":null,"messages":[]}`},
		{"escaping and empty text",
			`{"channel":{"id":9},"visitor":{"name":"Žofie \"Z\""},"messages":[{"type":"visitor","content":"a\nb <c>","sentAt":1427470439703},{"type":"agent","name":"A","sentAt":"bad"}]}`,
			`{"chat_id":9,"account_id":null,"visitor":{"name":"Žofie \"Z\"","email":null,"id":null},"started_at":null,"ended_at":null,"rating":null,"messages":[` +
				`{"role":"visitor","name":"Žofie \"Z\"","text":"a\nb <c>","at":"2015-03-27T15:33:59.703Z"},{"role":"agent","name":"A","text":"","at":null}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, []byte(tt.body), `{"crm_target":"crm-transcripts"}`)
			if len(res.Emitted) != 1 || string(res.Emitted[0].Body) != tt.want {
				t.Fatalf("emitted %d\n%s\nwant\n%s", len(res.Emitted), firstBody(res), tt.want)
			}
		})
	}
}

func TestDropAndConfigErrors(t *testing.T) {
	res := run(t, []byte(`{"accountId":1,"messages":[]}`), cfg)
	if !res.Dropped || res.DropReason != "smartsupp-chat: no channel.id: not a chat export" {
		t.Fatalf("dropped %v %q", res.Dropped, res.DropReason)
	}
	tests := []struct{ name, config, want string }{
		{"no crm_target", `{"survey_target":"surveylab","collector_id":"C1"}`, "smartsupp-chat: config needs crm_target, the target that receives transcripts"},
		{"survey without collector", `{"crm_target":"crm-transcripts","survey_target":"surveylab"}`, "smartsupp-chat: config has survey_target but no collector_id (SurveyLab's cId)"},
		{"not JSON", `{`, "smartsupp-chat: config is not valid JSON"},
		{"unknown target", `{"crm_target":"crm"}`, `sdk: emit("crm"): unknown target`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdktest.Run(handle, sdktest.Input{Body: fixture(t), Config: []byte(tt.config), Targets: targets})
			var fe *sdktest.FailError
			if !errors.As(err, &fe) || fe.Msg != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
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

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func BenchmarkSeedChat(b *testing.B) {
	sdktest.Benchmark(b, handle, sdktest.Input{Body: fixture(b), Config: []byte(cfg)})
}

// TestCivil: civil agrees with the time package wherever it does its own
// arithmetic, and hands the rest to it.
func TestCivil(t *testing.T) {
	check := func(ms int64) {
		t.Helper()
		tm := time.UnixMilli(ms).UTC()
		y, mo, d := tm.Date()
		h, mi, s := tm.Clock()
		want := [7]int{y, int(mo), d, h, mi, s, tm.Nanosecond() / 1e6}
		year, month, day, hour, min, sec, milli := civil(ms)
		if got := [7]int{year, month, day, hour, min, sec, milli}; got != want {
			t.Fatalf("civil(%d) = %v, want %v", ms, got, want)
		}
	}
	for _, ms := range []int64{0, 1, 999, 1000, 86399999, 86400000, 951782400000, 951868800000, 1427470439703,
		4107542399999, 4107542400000, maxCivil - 1, maxCivil, -1, -86400001, math.MaxInt64 / 2, math.MinInt64 / 2} {
		check(ms)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		check(r.Int64N(maxCivil))
	}
	for d := int64(0); d < 200*366; d++ { // every day from 1970 to 2170
		check(d*86400000 + 43200123)
	}
}

// TestAppendTime: the hand-made format is time.Format's, in JSON quotes.
func TestAppendTime(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		ms := r.Int64N(maxCivil)
		res := sdktestNumber(ms)
		want := `"` + time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") + `"`
		if got := string(appendTime(nil, res)); got != want {
			t.Fatalf("appendTime(%d) = %s, want %s", ms, got, want)
		}
	}
}

func sdktestNumber(ms int64) sdk.Result {
	return sdk.Result{Type: sdk.Number, Num: float64(ms), Raw: strconv.FormatInt(ms, 10)}
}
