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
		return drop(e, "howxm-nps: event_type is ", quote(query.Raw(pEventType)), ", not entry_submitted")
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
		return drop(e, "howxm-nps: the survey has no NpsField question", "", "")
	}
	var score sdk.Result
	for j, n := 0, query.Len(pAnswer); answers && j < n; j++ {
		if query.Key(pAnswer, j) == npsCode { // codes match exactly, not as paths
			score = query.At(pAnswer, j)
			break
		}
	}
	if !score.Exists() || score.Type == sdk.Null || isEmpty(score) {
		return drop(e, "howxm-nps: no NPS answer (", npsCode, ")")
	}
	if score.Type != sdk.Number {
		if _, err := strconv.ParseFloat(score.Str, 64); score.Type != sdk.String || err != nil {
			return drop(e, "howxm-nps: NPS answer ", score.Raw, " is not a number")
		}
	}
	if score.Float() > cfg.maxScore {
		return drop(e, "howxm-nps: score ", scoreText(score), cfg.aboveMax) // the usual outcome
	}

	return sendTicket(e, &cfg, score, questions, answers)
}

// drop drops the event with the reason a+b+c, built in buf rather than
// allocated (the host copies the reason before Drop returns). One
// function for every drop keeps their code out of handle's.
//
//go:noinline
func drop(e *sdk.Event, a, b, c string) error {
	buf = append(append(append(buf[:0], a...), b...), c...)
	return e.Drop(unsafe.String(unsafe.SliceData(buf), len(buf)))
}

// sendTicket builds the ticket and emits it (or makes it the body). It is
// a function of its own, and the ticket is written by loops over tables
// rather than an append per piece, because of how much machine code a Go
// guest runs per call: the compiled code of a Go function is about ten
// times its wasm, and a call that runs straight through dozens of
// inlined appends touches nearly every page of it. Under load those
// pages are out of the caches at every call (transforms/RATIONALE.md, "A
// Go guest's code footprint").
//
//go:noinline
func sendTicket(e *sdk.Event, cfg *config, score sdk.Result, questions, answers bool) error {
	// Each column in one call (Query.AppendRaws), not one per value: in a
	// wasm guest each call costs tens of ns.
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
	buf = writeTicket(buf[:0], score)
	if cfg.target == "" {
		e.SetBody(buf)
		e.SetHeader("Content-Type", "application/json")
		return nil
	}
	e.Emit(cfg.target).SetBody(buf).SetHeader("Content-Type", "application/json")
	return nil
}

// writeTicket appends the ticket to b: the JSON written by hand, each
// value as its raw JSON (the payload's own text, valid JSON), which in a
// wasm guest costs a fraction of a JSON writer's call per key and value.
// The output is what jsonw.Writer wrote, byte for byte.
func writeTicket(b []byte, score sdk.Result) []byte {
	var vals [len(valuePaths)]string
	for k, p := range valuePaths {
		if p < 0 {
			vals[k] = scoreJSON(score)
		} else {
			vals[k] = query.Raw(p)
		}
	}
	b = fields(b, headText[:], vals[:len(headText)-1])
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
		answer := [...]string{label, at(answerRaws, j)}
		b = fields(b, answerText[:], answer[:])
	}
	return fields(b, tailText[:], vals[len(headText)-1:])
}

// The ticket: its values, by path in query (-1: the score), and its
// constant text, each piece before the value of its index and the last
// one after them all: headText up to the answers, tailText after them.
var (
	valuePaths = [...]int{pSurveyID, pSurveyName, pSerial, -1, pUID, pName, pEmail, pMobile, pLink, pCreated}
	headText   = [...]string{`{"source":"howxm","survey":{"id":`, `,"name":`, `},"serial_number":`, `,"score":`,
		`,"customer":{"uid":`, `,"name":`, `,"email":`, `,"mobile":`, `},"answers":[`}
	answerText = [...]string{`{"question":`, `,"answer":`, `}`}
	tailText   = [...]string{`],"link":`, `,"created_at":`, `}`}
)

// fields appends text[k] and the raw JSON vals[k] (null when absent) for
// each value, then text's last piece.
//
//go:noinline
func fields(b []byte, text, vals []string) []byte {
	for k, v := range vals {
		b = append(b, text[k]...)
		if v == "" {
			v = "null"
		}
		b = append(b, v...)
	}
	return append(b, text[len(vals)]...)
}

// scoreJSON is the score as a JSON number: its own text when it is one.
func scoreJSON(score sdk.Result) string {
	if score.Type == sdk.Number {
		return score.Raw
	}
	scoreBuf = jsonw.AppendFloat(scoreBuf[:0], score.Float())
	return unsafe.String(unsafe.SliceData(scoreBuf), len(scoreBuf))
}

var scoreBuf []byte // scoreJSON's text for a score given as a string

// at returns col[j], "" past its end (the columns of one '#' container
// have the same length; this only keeps a surprise from panicking).
func at(col []string, j int) string {
	if j < len(col) {
		return col[j]
	}
	return ""
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

// quote is a value for a drop reason: its JSON, or "missing".
func quote(raw string) string {
	if raw == "" {
		return "missing"
	}
	return raw
}

func scoreText(v sdk.Result) string {
	if v.Type == sdk.String {
		return v.Str
	}
	return v.Raw
}
