// Command howxm-nps is a hookgate plugin for Howxm survey webhooks (seed
// 000): it keeps entry_submitted events whose NPS score is at or below
// max_score and turns each into a CRM ticket with the customer, the score
// and every answer labelled with its question. See README.md.
package main

import (
	"errors"
	"strconv"
	"unsafe"

	"github.com/hookgate/hookgate/plugins/sdk"
	"github.com/hookgate/hookgate/plugins/sdk/jsonw"
)

func init() { sdk.Handle(handle) }

func main() {}

type config struct {
	maxScore float64
	target   string // "" replaces the event body instead of emitting
	aboveMax string // " above max_score 6", the end of the usual drop reason
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
	c.aboveMax = " above max_score " + strconv.FormatFloat(c.maxScore, 'f', -1, 64)
	return c, nil
}

// Reused by every call (one instance runs one call at a time), so a call
// allocates nothing once they have grown.
var (
	buf []byte // the ticket, and drop reasons

	// The questions, element by element of campaign.fields: label (raw
	// JSON), code and type.
	labels, codes, types []string
	// The answers, member by member of entry.fields: key, raw JSON and
	// string content.
	keys, answerRaws, answerStrs []string
)

// ticket holds the parts of the payload the ticket needs, as raw JSON.
type ticket struct {
	serial, link, created    string
	surveyID, surveyName     string
	uid, name, email, mobile string
}

// Everything the ticket needs, by index in query.
const (
	pEventType = iota
	pSurveyID
	pSurveyName
	pLabel // of each question
	pCode
	pType
	pAnswer // each answer, keyed by question code
	pSerial
	pUID
	pName
	pEmail
	pMobile
	pLink
	pCreated
)

// query is answered by the host in one pass over the body: walking a
// 2 KB payload in the guest (Get per path, or even one Scanner pass) is
// what cost the most in a wasm guest.
var paths = [...]string{
	pEventType:  "event_type",
	pSurveyID:   "campaign.id",
	pSurveyName: "campaign.name",
	pLabel:      "campaign.fields.#.label",
	pCode:       "campaign.fields.#.code",
	pType:       "campaign.fields.#.type",
	pAnswer:     "entry.fields.#",
	pSerial:     "entry.serial_number",
	pUID:        "entry.customer.uid",
	pName:       "entry.customer.name",
	pEmail:      "entry.customer.email",
	pMobile:     "entry.customer.mobile",
	pLink:       "entry.system_link",
	pCreated:    "entry.created_at",
}

var query = sdk.NewQuery(paths[:]...)

func handle(e *sdk.Event) error {
	cfg, err := sdk.LoadConfig(e, parseConfig)
	if err != nil {
		return err
	}
	query.Run(e.Body())
	if query.Str(pEventType) != "entry_submitted" {
		return e.Drop("howxm-nps: event_type is " + quote(query.Get(pEventType)) + ", not entry_submitted")
	}
	// The questions are an array and the answers an object: '#' would go
	// through either. The usual outcome is a drop (most answers are above
	// max_score), decided on a few values read one at a time; the columns
	// the ticket needs are read only for a ticket.
	questions, answers := isArray(query.Raw(pLabel)), isObject(query.Raw(pAnswer))
	npsCode := ""
	for j, n := 0, query.Len(pType); questions && j < n; j++ {
		if query.StrAt(pType, j) == "NpsField" {
			npsCode = query.StrAt(pCode, j)
			break
		}
	}
	if npsCode == "" {
		return e.Drop("howxm-nps: the survey has no NpsField question")
	}
	var score sdk.Result
	for j, n := 0, query.Len(pAnswer); answers && j < n; j++ {
		if query.Key(pAnswer, j) == npsCode { // codes match exactly, not as paths
			score = query.At(pAnswer, j)
			break
		}
	}
	if !score.Exists() || score.Type == sdk.Null || isEmpty(score) {
		return e.Drop("howxm-nps: no NPS answer (" + npsCode + ")")
	}
	if score.Type != sdk.Number {
		if _, err := strconv.ParseFloat(score.Str, 64); score.Type != sdk.String || err != nil {
			return e.Drop("howxm-nps: NPS answer " + score.Raw + " is not a number")
		}
	}
	if score.Float() > cfg.maxScore {
		// The usual outcome: built in buf rather than allocated. The host
		// copies the reason before Drop returns.
		buf = append(append(append(buf[:0], "howxm-nps: score "...), scoreText(score)...), cfg.aboveMax...)
		return e.Drop(unsafe.String(unsafe.SliceData(buf), len(buf)))
	}

	// A ticket: each column in one call (Query.AppendRaws), not one per
	// value: in a wasm guest each call costs tens of ns.
	labels, codes, types = labels[:0], codes[:0], types[:0]
	if questions {
		labels = query.AppendRaws(labels, pLabel)
		codes = query.AppendStrs(codes, pCode)
		types = query.AppendStrs(types, pType)
	}
	keys, answerRaws, answerStrs = keys[:0], answerRaws[:0], answerStrs[:0]
	if answers {
		keys = query.AppendKeys(keys, pAnswer)
		answerRaws = query.AppendRaws(answerRaws, pAnswer)
		answerStrs = query.AppendStrs(answerStrs, pAnswer)
	}
	t := ticket{
		surveyID: query.Raw(pSurveyID), surveyName: query.Raw(pSurveyName),
		serial: query.Raw(pSerial), link: query.Raw(pLink), created: query.Raw(pCreated),
		uid: query.Raw(pUID), name: query.Raw(pName), email: query.Raw(pEmail), mobile: query.Raw(pMobile),
	}
	buf = writeTicket(buf[:0], &t, score)
	if cfg.target == "" {
		e.SetBody(buf)
		e.SetHeader("Content-Type", "application/json")
		return nil
	}
	e.Emit(cfg.target).SetBody(buf).SetHeader("Content-Type", "application/json")
	return nil
}

// writeTicket appends the ticket to b. It writes the JSON by hand, each
// run of constant text in one append and each value as its raw JSON (the
// payload's own text, valid JSON): in a wasm guest a JSON writer's call
// per key and value costs several times that. The output is what
// jsonw.Writer wrote, byte for byte.
func writeTicket(b []byte, t *ticket, score sdk.Result) []byte {
	b = append(b, `{"source":"howxm","survey":{"id":`...)
	b = raw(b, t.surveyID)
	b = append(b, `,"name":`...)
	b = raw(b, t.surveyName)
	b = append(b, `},"serial_number":`...)
	b = raw(b, t.serial)
	b = append(b, `,"score":`...)
	if score.Type == sdk.Number {
		b = append(b, score.Raw...)
	} else {
		b = jsonw.AppendFloat(b, score.Float())
	}
	b = append(b, `,"customer":{"uid":`...)
	b = raw(b, t.uid)
	b = append(b, `,"name":`...)
	b = raw(b, t.name)
	b = append(b, `,"email":`...)
	b = raw(b, t.email)
	b = append(b, `,"mobile":`...)
	b = raw(b, t.mobile)
	b = append(b, `},"answers":[`...)
	n := 0
	for i, label := range labels {
		if at(types, i) == "EndingField" {
			continue
		}
		j := answerAt(at(codes, i))
		if j < 0 || skipAnswer(j) {
			continue
		}
		if n++; n > 1 {
			b = append(b, ',')
		}
		b = append(b, `{"question":`...)
		b = raw(b, label)
		b = append(b, `,"answer":`...)
		b = append(b, at(answerRaws, j)...)
		b = append(b, '}')
	}
	b = append(b, `],"link":`...)
	b = raw(b, t.link)
	b = append(b, `,"created_at":`...)
	b = raw(b, t.created)
	return append(b, '}')
}

// at returns col[j], "" past its end (the columns of one '#' container
// have the same length; this only keeps a surprise from panicking).
func at(col []string, j int) string {
	if j < len(col) {
		return col[j]
	}
	return ""
}

// raw appends a value's raw JSON, null when absent.
func raw(b []byte, v string) []byte {
	if v == "" {
		return append(b, "null"...)
	}
	return append(b, v...)
}

func isArray(raw string) bool  { return raw != "" && raw[0] == '[' }
func isObject(raw string) bool { return raw != "" && raw[0] == '{' }

// answerAt returns the element of query's pAnswer whose key is code, or
// -1. Codes are matched exactly, not as gjson paths, so a code with '.'
// or '*' is safe.
func answerAt(code string) int {
	if code == "" {
		return -1
	}
	for i, k := range keys {
		if k == code {
			return i
		}
	}
	return -1
}

// skipAnswer reports whether answer j is left out of the ticket: missing,
// null, "" or the string "null" (Howxm's placeholder), as the checks on
// the score's Result decide.
func skipAnswer(j int) bool {
	switch raw := at(answerRaws, j); {
	case raw == "" || raw == "null":
		return true
	case raw[0] == '"':
		s := at(answerStrs, j) // unescaped: "\u006eull" is "null"
		return s == "" || s == "null"
	}
	return false
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
