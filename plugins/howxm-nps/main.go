// Command howxm-nps is a hookgate plugin for Howxm survey webhooks (seed
// 000): it keeps entry_submitted events whose NPS score is at or below
// max_score and turns each into a CRM ticket with the customer, the score
// and every answer labelled with its question. See README.md.
package main

import (
	"errors"
	"strconv"

	"github.com/hookgate/hookgate/plugins/sdk"
	"github.com/hookgate/hookgate/plugins/sdk/jsonw"
)

func init() { sdk.Handle(handle) }

func main() {}

type config struct {
	maxScore float64
	target   string // "" replaces the event body instead of emitting
}

func parseConfig(raw []byte) (config, error) {
	if !sdk.Valid(raw) {
		return config{}, errors.New("howxm-nps: config is not valid JSON")
	}
	c := config{maxScore: 6}
	if v := sdk.Get(raw, "max_score"); v.Exists() {
		if v.Type != sdk.Number {
			return config{}, errors.New("howxm-nps: config max_score must be a number, e.g. 6")
		}
		c.maxScore = v.Float()
	}
	if v := sdk.Get(raw, "target"); v.Exists() {
		if v.Type != sdk.String {
			return config{}, errors.New("howxm-nps: config target must be a target name (a string)")
		}
		c.target = v.String()
	}
	return c, nil
}

// Reused by every call (one instance runs one call at a time), so a call
// allocates nothing once they have grown.
var (
	w         jsonw.Writer
	questions []question
	answers   []answer
)

type question struct{ label, code, typ sdk.Result }

type answer struct {
	code  string
	value sdk.Result
}

// ticket holds the parts of the payload the ticket needs.
type ticket struct {
	eventType, serial, customer, link, created sdk.Result
	surveyID, surveyName                       sdk.Result
}

// sc walks the body once: with Get per path, or ForEach over nested
// objects, a 2.5 KB payload would be read several times over, which is
// what costs in a wasm guest.
var sc sdk.Scanner

func handle(e *sdk.Event) error {
	cfg, err := sdk.LoadConfig(e, parseConfig)
	if err != nil {
		return err
	}
	var t ticket
	questions = questions[:0]
	answers = answers[:0]
	sc.Reset(e.Body())
	sc.Object(func(key string) bool {
		switch key {
		case "event_type":
			t.eventType = sc.Value()
		case "campaign":
			sc.Object(func(key string) bool {
				switch key {
				case "id":
					t.surveyID = sc.Value()
				case "name":
					t.surveyName = sc.Value()
				case "fields":
					sc.Array(readQuestion)
				}
				return true
			})
		case "entry":
			sc.Object(func(key string) bool {
				switch key {
				case "fields":
					sc.Object(func(code string) bool {
						answers = append(answers, answer{code, sc.Value()})
						return true
					})
				case "serial_number":
					t.serial = sc.Value()
				case "customer":
					t.customer = sc.Value()
				case "system_link":
					t.link = sc.Value()
				case "created_at":
					t.created = sc.Value()
				}
				return true
			})
		}
		return true
	})
	if t.eventType.Str != "entry_submitted" {
		return e.Drop("howxm-nps: event_type is " + quote(t.eventType) + ", not entry_submitted")
	}

	npsCode := ""
	for _, q := range questions {
		if q.typ.Str == "NpsField" {
			npsCode = q.code.Str
			break
		}
	}
	if npsCode == "" {
		return e.Drop("howxm-nps: the survey has no NpsField question")
	}
	score := answerTo(npsCode)
	if !score.Exists() || score.Type == sdk.Null || isEmpty(score) {
		return e.Drop("howxm-nps: no NPS answer (" + npsCode + ")")
	}
	if score.Type != sdk.Number {
		if _, err := strconv.ParseFloat(score.Str, 64); score.Type != sdk.String || err != nil {
			return e.Drop("howxm-nps: NPS answer " + score.Raw + " is not a number")
		}
	}
	if score.Float() > cfg.maxScore {
		return e.Drop("howxm-nps: score " + scoreText(score) + " above max_score " +
			strconv.FormatFloat(cfg.maxScore, 'f', -1, 64))
	}

	writeTicket(&t, score)
	if cfg.target == "" {
		e.SetBody(w.Bytes())
		e.SetHeader("Content-Type", "application/json")
		return nil
	}
	e.Emit(cfg.target).SetBody(w.Bytes()).SetHeader("Content-Type", "application/json")
	return nil
}

// readQuestion reads one element of campaign.fields.
func readQuestion(int) bool {
	var q question
	sc.Object(func(key string) bool {
		switch key {
		case "label":
			q.label = sc.Value()
		case "code":
			q.code = sc.Value()
		case "type":
			q.typ = sc.Value()
		}
		return true
	})
	questions = append(questions, q)
	return true
}

func writeTicket(t *ticket, score sdk.Result) {
	w.Reset()
	w.ObjectStart()
	w.Key("source")
	w.String("howxm")
	w.Key("survey")
	w.ObjectStart()
	w.Key("id")
	w.RawString(t.surveyID.Raw)
	w.Key("name")
	w.RawString(t.surveyName.Raw)
	w.ObjectEnd()
	w.Key("serial_number")
	w.RawString(t.serial.Raw)
	w.Key("score")
	if score.Type == sdk.Number {
		w.RawString(score.Raw)
	} else {
		w.Float(score.Float())
	}
	var uid, name, email, mobile sdk.Result
	t.customer.ForEach(func(k, v sdk.Result) bool {
		switch k.Str {
		case "uid":
			uid = v
		case "name":
			name = v
		case "email":
			email = v
		case "mobile":
			mobile = v
		}
		return true
	})
	w.Key("customer")
	w.ObjectStart()
	w.Key("uid")
	w.RawString(uid.Raw) // "" (absent) is written as null
	w.Key("name")
	w.RawString(name.Raw)
	w.Key("email")
	w.RawString(email.Raw)
	w.Key("mobile")
	w.RawString(mobile.Raw)
	w.ObjectEnd()
	w.Key("answers")
	w.ArrayStart()
	for _, q := range questions {
		if q.typ.Str == "EndingField" {
			continue
		}
		a := answerTo(q.code.Str)
		if !a.Exists() || a.Type == sdk.Null || isEmpty(a) || (a.Type == sdk.String && a.Str == "null") {
			continue
		}
		w.ObjectStart()
		w.Key("question")
		w.RawString(q.label.Raw)
		w.Key("answer")
		w.RawString(a.Raw)
		w.ObjectEnd()
	}
	w.ArrayEnd()
	w.Key("link")
	w.RawString(t.link.Raw)
	w.Key("created_at")
	w.RawString(t.created.Raw)
	w.ObjectEnd()
}

// answerTo returns the answer to the question with this code. Codes are
// matched exactly, not as gjson paths, so a code with '.' or '*' is safe.
func answerTo(code string) sdk.Result {
	if code == "" {
		return sdk.Result{}
	}
	for _, a := range answers {
		if a.code == code {
			return a.value
		}
	}
	return sdk.Result{}
}

func isEmpty(v sdk.Result) bool { return v.Type == sdk.String && v.Str == "" }

func quote(v sdk.Result) string {
	if !v.Exists() {
		return "missing"
	}
	return v.Raw
}

func scoreText(v sdk.Result) string {
	if v.Type == sdk.String {
		return v.Str
	}
	return v.Raw
}
