// Command smartsupp-chat is a hookgate plugin for Smartsupp's finished-chat
// export (seeds 004 and 001): each chat becomes a transcript for a CRM and,
// when the visitor left an email, a SurveyLab invitation (a GET with query
// parameters). See README.md.
package main

import (
	"errors"
	"strings"
	"time"
	"unsafe"

	"github.com/hookgate/hookgate/plugins/sdk"
	"github.com/hookgate/hookgate/plugins/sdk/jsonw"
)

func init() { sdk.Handle(handle) }

func main() {}

type config struct {
	crmTarget    string
	surveyTarget string // "" sends no invitations
	collectorID  string
}

func parseConfig(raw []byte) (config, error) {
	if !sdk.Valid(raw) {
		return config{}, errors.New("smartsupp-chat: config is not valid JSON")
	}
	c := config{
		crmTarget:    sdk.Get(raw, "crm_target").String(),
		surveyTarget: sdk.Get(raw, "survey_target").String(),
		collectorID:  sdk.Get(raw, "collector_id").String(),
	}
	if c.crmTarget == "" {
		return config{}, errors.New("smartsupp-chat: config needs crm_target, the target that receives transcripts")
	}
	if c.surveyTarget != "" && c.collectorID == "" {
		return config{}, errors.New("smartsupp-chat: config has survey_target but no collector_id (SurveyLab's cId)")
	}
	return c, nil
}

// Reused by every call: one instance runs one call at a time.
var (
	buf []byte // the transcript
	// The messages, element by element: type, name and content, each
	// column read in one call (Query.AppendStrs). Strings, not
	// sdk.Results: in a wasm guest every copy of a Result (80 bytes) costs.
	msgTypes, msgNames, msgContents []string
)

// chat holds the parts of the export the outputs need.
type chat struct {
	account, begin, end, chatID, rating sdk.Result
	vName, vEmail, vID                  sdk.Result
	referrer                            sdk.Result // the first paths[].url
}

// What the outputs need, by index in query.
const (
	qAccount = iota
	qBegin
	qEnd
	qChatID
	qRating
	qVisitorName
	qVisitorEmail
	qVisitorID
	qPaths
	qReferrer
	qType // of each message
	qName
	qContent
	qSentAt
)

var paths = [...]string{
	qAccount:      "accountId",
	qBegin:        "beginAt",
	qEnd:          "endAt",
	qChatID:       "channel.id",
	qRating:       "channel.rating",
	qVisitorName:  "visitor.name",
	qVisitorEmail: "visitor.email",
	qVisitorID:    "visitor.id",
	qPaths:        "paths",
	qReferrer:     "paths.0.url",
	qType:         "messages.#.type",
	qName:         "messages.#.name",
	qContent:      "messages.#.content",
	qSentAt:       "messages.#.sentAt",
}

// query is answered by the host in one pass over the body (see howxm-nps
// for why that matters in a wasm guest).
var query = sdk.NewQuery(paths[:]...)

// read takes what the outputs need from the body.
func read(body []byte) chat {
	query.Run(body)
	c := chat{
		account: query.Get(qAccount), begin: query.Get(qBegin), end: query.Get(qEnd),
		chatID: query.Get(qChatID), rating: query.Get(qRating),
		vName: query.Get(qVisitorName), vEmail: query.Get(qVisitorEmail), vID: query.Get(qVisitorID),
	}
	if query.Get(qPaths).IsArray() { // "paths.0" is also a key of an object
		c.referrer = query.Get(qReferrer)
	}
	msgTypes, msgNames, msgContents = msgTypes[:0], msgNames[:0], msgContents[:0]
	if !query.Get(qType).IsArray() {
		return c // messages must be an array, not an object
	}
	msgTypes = query.AppendStrs(msgTypes, qType)
	msgNames = query.AppendStrs(msgNames, qName)
	msgContents = query.AppendStrs(msgContents, qContent)
	return c
}

func handle(e *sdk.Event) error {
	cfg, err := sdk.LoadConfig(e, parseConfig)
	if err != nil {
		return err
	}
	c := read(e.Body())
	if c.chatID.Type != sdk.Number && c.chatID.Type != sdk.String {
		return e.Drop("smartsupp-chat: no channel.id: not a chat export")
	}

	buf = writeTranscript(buf[:0], &c)
	e.Emit(cfg.crmTarget).SetBody(buf).SetHeader("Content-Type", "application/json")

	if cfg.surveyTarget == "" || c.vEmail.Type != sdk.String || strings.TrimSpace(c.vEmail.Str) == "" {
		return nil
	}
	first, last := splitName(c.vName.Str)
	d := e.Emit(cfg.surveyTarget).
		SetMethod("GET").
		SetBody(nil).
		DelHeader("Content-Type").
		SetQuery("cId", cfg.collectorID).
		SetQuery("email", strings.TrimSpace(c.vEmail.Str)).
		SetQuery("crk", crk(&c))
	if first != "" {
		d.SetQuery("firstName", first)
	}
	if last != "" {
		d.SetQuery("lastName", last)
	}
	if c.referrer.Type == sdk.String && c.referrer.Str != "" {
		d.SetQuery("referrer", c.referrer.Str)
	}
	return nil
}

// writeTranscript appends the transcript to b, by hand: each run of
// constant text in one append, raw values as the payload's own JSON,
// strings escaped by jsonw.AppendString. In a wasm guest a JSON writer's
// call per key and value costs several times that; the output is what
// jsonw.Writer wrote, byte for byte.
func writeTranscript(b []byte, c *chat) []byte {
	b = append(b, `{"chat_id":`...)
	b = raw(b, c.chatID.Raw)
	b = append(b, `,"account_id":`...)
	b = raw(b, c.account.Raw) // absent is written as null
	b = append(b, `,"visitor":{"name":`...)
	b = raw(b, c.vName.Raw)
	b = append(b, `,"email":`...)
	b = raw(b, c.vEmail.Raw)
	b = append(b, `,"id":`...)
	b = raw(b, c.vID.Raw)
	b = append(b, `},"started_at":`...)
	b = appendTime(b, c.begin)
	b = append(b, `,"ended_at":`...)
	b = appendTime(b, c.end)
	b = append(b, `,"rating":`...)
	b = raw(b, c.rating.Raw)
	b = append(b, `,"messages":[`...)
	n := 0
	for j, typ := range msgTypes {
		// Only what people wrote: system messages (joins, closes) and
		// unknown types are left out.
		if typ != "visitor" && typ != "agent" {
			continue
		}
		name := at(msgNames, j)
		if name == "" && typ == "visitor" {
			name = c.vName.Str // Smartsupp often leaves the visitor's name off
		}
		if n++; n > 1 {
			b = append(b, ',')
		}
		b = append(b, `{"role":`...)
		b = jsonw.AppendString(b, typ)
		b = append(b, `,"name":`...)
		b = jsonw.AppendString(b, name)
		b = append(b, `,"text":`...)
		b = jsonw.AppendString(b, at(msgContents, j))
		b = append(b, `,"at":`...)
		b = appendTime(b, query.At(qSentAt, j))
		b = append(b, '}')
	}
	return append(b, "]}"...)
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

// appendTime appends a millisecond epoch as a JSON string in ISO 8601 UTC
// with milliseconds, e.g. 1427470439703 -> "2015-03-27T15:33:59.703Z";
// null when absent. It formats by hand: time.Format parses its layout on
// every call, and even time.Date's calendar arithmetic costs a wasm guest
// dearly.
func appendTime(b []byte, ms sdk.Result) []byte {
	if ms.Type != sdk.Number {
		return append(b, "null"...)
	}
	year, month, day, hour, min, sec, milli := civil(ms.Int())
	b = append(b, '"')
	if year < 0 || year > 9999 {
		b = digits(b, year, 4)
	} else {
		b = append(b, pairs[2*(year/100):2*(year/100)+2]...)
		b = append(b, pairs[2*(year%100):2*(year%100)+2]...)
	}
	// Two digits from a table: a division costs a wasm guest dearly.
	b = append(b, '-', pairs[2*month], pairs[2*month+1], '-', pairs[2*day], pairs[2*day+1],
		'T', pairs[2*hour], pairs[2*hour+1], ':', pairs[2*min], pairs[2*min+1], ':', pairs[2*sec], pairs[2*sec+1], '.')
	b = append(b, byte('0'+milli/100))
	b = append(b, pairs[2*(milli%100)], pairs[2*(milli%100)+1], 'Z', '"')
	return b
}

// pairs holds "00" to "99".
const pairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// maxCivil is 10000-01-01 in unix milliseconds: civil's own arithmetic
// covers 1970 up to there, the time package the rest.
const maxCivil = 253402300800000

// civil splits a unix millisecond time into its UTC calendar fields, as
// time.UnixMilli(ms).UTC() does.
func civil(ms int64) (year, month, day, hour, min, sec, milli int) {
	if ms < 0 || ms >= maxCivil {
		t := time.UnixMilli(ms).UTC()
		y, mo, d := t.Date()
		h, mi, s := t.Clock()
		return y, int(mo), d, h, mi, s, t.Nanosecond() / 1e6
	}
	days, rem := ms/86400000, int(ms%86400000)
	milli, rem = rem%1000, rem/1000
	sec, rem = rem%60, rem/60
	min, hour = rem%60, rem/60
	// Days to civil date, proleptic Gregorian (H. Hinnant's algorithm,
	// eras of 400 years from 0000-03-01).
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year = int(yoe + era*400)
	if month <= 2 {
		year++
	}
	return year, month, day, hour, min, sec, milli
}

// digits appends n zero-padded to width (n >= 0; years past 9999 keep
// their digits).
func digits(b []byte, n, width int) []byte {
	var tmp [8]byte
	i := len(tmp)
	for n > 0 || width > 0 {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		width--
		if i == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// crkBuf is reused by crk.
var crkBuf []byte

// crk is SurveyLab's respondent key, "ss-<account>-<chat id>": built in a
// reused buffer and handed to the host as a view, which is safe because
// the host copies it before SetQuery returns (ABI.md).
func crk(c *chat) string {
	crkBuf = append(append(append(append(crkBuf[:0], "ss-"...), text(c.account)...), '-'), text(c.chatID)...)
	return unsafe.String(unsafe.SliceData(crkBuf), len(crkBuf))
}

// text is a scalar's text: a string's content or a number's digits.
func text(v sdk.Result) string {
	if v.Type == sdk.String {
		return v.Str
	}
	return v.Raw
}

// splitName splits "Dusan Kmet" into "Dusan" and "Kmet"; everything after
// the first word is the last name.
func splitName(name string) (first, last string) {
	name = strings.TrimSpace(name)
	first, last, _ = strings.Cut(name, " ")
	return first, strings.TrimSpace(last)
}
