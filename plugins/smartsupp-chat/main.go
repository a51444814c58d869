// Command smartsupp-chat is a hookgate plugin for Smartsupp's finished-chat
// export (seeds 004 and 001): each chat becomes a transcript for a CRM and,
// when the visitor left an email, a SurveyLab invitation (a GET with query
// parameters). See README.md.
package main

import (
	"errors"
	"strings"
	"time"

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
	w        jsonw.Writer
	sc       sdk.Scanner
	messages []message
)

// chat holds the parts of the export the outputs need.
type chat struct {
	account, begin, end, chatID, rating sdk.Result
	vName, vEmail, vID                  sdk.Result
	referrer                            sdk.Result // the first paths[].url
}

type message struct{ typ, name, content, sentAt sdk.Result }

// read walks the body once with the Scanner (see howxm-nps for why).
func read(body []byte) chat {
	var c chat
	messages = messages[:0]
	sc.Reset(body)
	sc.Object(func(key string) bool {
		switch key {
		case "accountId":
			c.account = sc.Value()
		case "beginAt":
			c.begin = sc.Value()
		case "endAt":
			c.end = sc.Value()
		case "channel":
			sc.Object(func(key string) bool {
				switch key {
				case "id":
					c.chatID = sc.Value()
				case "rating":
					c.rating = sc.Value()
				}
				return true
			})
		case "visitor":
			sc.Object(func(key string) bool {
				switch key {
				case "name":
					c.vName = sc.Value()
				case "email":
					c.vEmail = sc.Value()
				case "id":
					c.vID = sc.Value()
				}
				return true
			})
		case "paths":
			sc.Array(func(i int) bool {
				sc.Object(func(key string) bool {
					if key == "url" {
						c.referrer = sc.Value()
					}
					return true
				})
				return false // only the first
			})
		case "messages":
			sc.Array(readMessage)
		}
		return true
	})
	return c
}

func readMessage(int) bool {
	var m message
	sc.Object(func(key string) bool {
		switch key {
		case "type":
			m.typ = sc.Value()
		case "name":
			m.name = sc.Value()
		case "content":
			m.content = sc.Value()
		case "sentAt":
			m.sentAt = sc.Value()
		}
		return true
	})
	messages = append(messages, m)
	return true
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

	writeTranscript(&c)
	e.Emit(cfg.crmTarget).SetBody(w.Bytes()).SetHeader("Content-Type", "application/json")

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
		SetQuery("crk", "ss-"+text(c.account)+"-"+text(c.chatID))
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

func writeTranscript(c *chat) {
	w.Reset()
	w.ObjectStart()
	w.Key("chat_id")
	w.RawString(c.chatID.Raw)
	w.Key("account_id")
	w.RawString(c.account.Raw) // absent is written as null
	w.Key("visitor")
	w.ObjectStart()
	w.Key("name")
	w.RawString(c.vName.Raw)
	w.Key("email")
	w.RawString(c.vEmail.Raw)
	w.Key("id")
	w.RawString(c.vID.Raw)
	w.ObjectEnd()
	w.Key("started_at")
	writeTime(c.begin)
	w.Key("ended_at")
	writeTime(c.end)
	w.Key("rating")
	w.RawString(c.rating.Raw)
	w.Key("messages")
	w.ArrayStart()
	for _, m := range messages {
		// Only what people wrote: system messages (joins, closes) and
		// unknown types are left out.
		if m.typ.Str != "visitor" && m.typ.Str != "agent" {
			continue
		}
		name := m.name
		if name.Str == "" && m.typ.Str == "visitor" {
			name = c.vName // Smartsupp often leaves the visitor's name off
		}
		w.ObjectStart()
		w.Key("role")
		w.String(m.typ.Str)
		w.Key("name")
		w.String(name.Str)
		w.Key("text")
		w.String(m.content.Str)
		w.Key("at")
		writeTime(m.sentAt)
		w.ObjectEnd()
	}
	w.ArrayEnd()
	w.ObjectEnd()
}

// timeBuf is reused for formatting times.
var timeBuf [32]byte

// writeTime writes a millisecond epoch as ISO 8601 UTC with milliseconds,
// e.g. 1427470439703 -> "2015-03-27T15:33:59.703Z"; null when absent.
// It formats by hand: time.Format parses its layout on every call, which a
// wasm guest pays for dearly.
func writeTime(ms sdk.Result) {
	if ms.Type != sdk.Number {
		w.Null()
		return
	}
	t := time.UnixMilli(ms.Int()).UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	b := timeBuf[:0]
	b = digits(b, year, 4)
	b = append(b, '-')
	b = digits(b, int(month), 2)
	b = append(b, '-')
	b = digits(b, day, 2)
	b = append(b, 'T')
	b = digits(b, hour, 2)
	b = append(b, ':')
	b = digits(b, min, 2)
	b = append(b, ':')
	b = digits(b, sec, 2)
	b = append(b, '.')
	b = digits(b, t.Nanosecond()/1e6, 3)
	b = append(b, 'Z')
	w.StringBytes(b)
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
