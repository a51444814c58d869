package main

import (
	"errors"
	"testing"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
)

// coupon is seed 003's story 1: a coupon service gets {"amount", "user"}.
const coupon = `{
	"body": "{\"amount\": ${amount}, \"user\": \"${user.id|guest}\"}",
	"params": {"amount": {"type": "integer", "default": 100}},
	"target": "coupons"
}`

func TestRender(t *testing.T) {
	tests := []struct {
		name     string
		config   string
		body     string
		wantBody string // of the one emitted delivery, or of the event when target is unset
	}{
		{"seed 003: param from the event", coupon, `{"amount": 250, "user": {"id": "u1"}}`, `{"amount": 250, "user": "u1"}`},
		{"seed 003: param default, path default", coupon, `{"user": {}}`, `{"amount": 100, "user": "guest"}`},
		{"seed 003: integer as a string", coupon, `{"amount": "300", "user": {"id": 42}}`, `{"amount": 300, "user": "42"}`},
		{"seed 003: empty string falls back", coupon, `{"amount": "", "user": {"id": ""}}`, `{"amount": 100, "user": "guest"}`},
		{"seed 002: variable with default",
			`{"body": "{\"text\": \"Dear ${name|Member} Hello\"}", "target": "sms"}`,
			`{"name": "Zhang San"}`, `{"text": "Dear Zhang San Hello"}`},
		{"seed 002: default when absent",
			`{"body": "{\"text\": \"Dear ${name|Member} Hello\"}", "target": "sms"}`,
			`{}`, `{"text": "Dear Member Hello"}`},
		{"escaped inside quotes",
			`{"body": "{\"text\": \"Hi ${name}\"}", "target": "sms"}`,
			`{"name": "A \"B\"\nC\\ 张"}`, `{"text": "Hi A \"B\"\nC\\ 张"}`},
		{"number inside quotes is text", `{"body": "{\"id\": \"#${n}\"}", "target": "sms"}`, `{"n": 12.5}`, `{"id": "#12.5"}`},
		{"unquoted string becomes a JSON string", `{"body": "{\"u\": ${user.name}}", "target": "crm"}`, `{"user": {"name": "Ann \"A\""}}`, `{"u": "Ann \"A\""}`},
		{"unquoted object is raw JSON", `{"body": "{\"u\": ${user}}", "target": "crm"}`, `{"user": {"name": "Ann", "tags": [1, 2]}}`, `{"u": {"name": "Ann", "tags": [1, 2]}}`},
		{"unquoted bool", `{"body": "[${ok}]", "target": "crm"}`, `{"ok": false}`, `[false]`},
		{"unquoted missing is null", `{"body": "{\"u\": ${missing}}", "target": "crm"}`, `{}`, `{"u": null}`},
		{"unquoted JSON default is raw", `{"body": "{\"n\": ${n|5}, \"b\": ${b|true}}", "target": "crm"}`, `{}`, `{"n": 5, "b": true}`},
		{"unquoted text default becomes a string", `{"body": "{\"s\": ${s|no one}}", "target": "crm"}`, `{}`, `{"s": "no one"}`},
		{"quoted missing without default is empty", `{"body": "{\"s\": \"[${s}]\"}", "target": "crm"}`, `{}`, `{"s": "[]"}`},
		{"text param with default",
			`{"body": "{\"msg\": \"${message}\"}", "params": {"message": {"type": "text", "default": "Dear Member"}}, "target": "sms"}`,
			`{}`, `{"msg": "Dear Member"}`},
		{"text param unquoted is a string",
			`{"body": "{\"msg\": ${message}}", "params": {"message": {"type": "text"}}, "target": "sms"}`,
			`{"message": 42}`, `{"msg": "42"}`},
		{"text param without value or default uses the inline default",
			`{"body": "{\"msg\": \"${message|hi}\"}", "params": {"message": {"type": "text"}}, "target": "sms"}`,
			`{}`, `{"msg": "hi"}`},
		{"params_from",
			`{"body": "{\"amount\": ${param:amount}}", "params": {"amount": {"type": "integer"}}, "params_from": "attrs", "target": "coupons"}`,
			`{"amount": 1, "attrs": {"amount": 7}}`, `{"amount": 7}`},
		{"literal ${", `{"body": "{\"s\": \"$${not a var}\"}", "target": "crm"}`, `{}`, `{"s": "${not a var}"}`},
		{"text body", `{"body": "Hello ${name|friend}, \"${n}\"", "body_format": "text", "target": "sms"}`, `{"n": 3}`, `Hello friend, "3"`},
		{"no target replaces the event body", `{"body": "{\"a\": ${a}}"}`, `{"a": [1]}`, `{"a": [1]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := sdktest.Run(handle, sdktest.Input{Body: []byte(tt.body), Config: []byte(tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			got := string(res.Body)
			if len(res.Emitted) > 1 {
				t.Fatalf("emitted %d deliveries", len(res.Emitted))
			}
			if len(res.Emitted) == 1 {
				got = string(res.Emitted[0].Body)
			}
			if got != tt.wantBody {
				t.Fatalf("body\n%s\nwant\n%s", got, tt.wantBody)
			}
		})
	}
}

func TestQueryHeadersMethod(t *testing.T) {
	cfg := `{
		"target": "surveylab", "method": "GET",
		"query": {"cId": "c-1", "email": "${visitor.email}", "name": "${visitor.name|anonymous}"},
		"headers": {"X-Chat": "${channel.id}"}
	}`
	res, err := sdktest.Run(handle, sdktest.Input{
		Body:    []byte(`{"visitor": {"email": "a+b@x.cz"}, "channel": {"id": 55039}}`),
		Config:  []byte(cfg),
		Targets: []string{"surveylab"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Emitted) != 1 {
		t.Fatalf("emitted %d", len(res.Emitted))
	}
	d := res.Emitted[0]
	if d.Target != "surveylab" || d.Method != "GET" {
		t.Fatalf("delivery %+v", d)
	}
	wantQ := map[string]string{"cId": "c-1", "email": "a+b@x.cz", "name": "anonymous"}
	if len(d.Query) != len(wantQ) || d.Query["cId"] != "c-1" || d.Query["email"] != "a+b@x.cz" || d.Query["name"] != "anonymous" {
		t.Fatalf("query %v, want %v", d.Query, wantQ)
	}
	if d.Headers["X-Chat"] != "55039" {
		t.Fatalf("headers %v", d.Headers)
	}
	// Without a body template the delivery keeps the event's body.
	if string(d.Body) != `{"visitor": {"email": "a+b@x.cz"}, "channel": {"id": 55039}}` {
		t.Fatalf("body %s", d.Body)
	}
}

func TestEventChanged(t *testing.T) {
	res, err := sdktest.Run(handle, sdktest.Input{
		Body:   []byte(`{"id": 7}`),
		Config: []byte(`{"body": "{\"ref\": \"${id}\"}", "query": {"ref": "${id}"}, "headers": {"X-Ref": "r-${id}"}, "method": "PUT"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != `{"ref": "7"}` || res.Query["ref"] != "7" || res.Headers["X-Ref"] != "r-7" || res.Method != "PUT" ||
		res.Headers["Content-Type"] != "application/json" || len(res.Emitted) != 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct{ name, config, body, want string }{
		{"integer param not an integer", coupon, `{"amount": "abc"}`, `template: param amount: value "abc" at amount is not an integer`},
		{"integer param fractional", coupon, `{"amount": 2.5}`, `template: param amount: value 2.5 at amount is not an integer`},
		{"integer param object", coupon, `{"amount": {"v": 1}}`, `template: param amount: value {"v": 1} at amount is not an integer`},
		{"integer param without value or default",
			`{"body": "{\"a\": ${a}}", "params": {"a": {"type": "integer"}}}`, `{}`, `template: param a: no value at a and no default`},
		{"undefined param", `{"body": "{\"a\": ${param:nope}}"}`, `{}`,
			`template: body: ${param:nope} refers to param "nope", which params does not declare`},
		{"bad param type", `{"body": "{}", "params": {"amount": {"type": "float"}}}`, `{}`,
			`template: param amount: type is "float"; want "text" or "integer"`},
		{"missing param type", `{"body": "{}", "params": {"amount": {"default": 1}}}`, `{}`,
			`template: param amount: missing type ("text" or "integer")`},
		{"integer default not an integer", `{"body": "{}", "params": {"amount": {"type": "integer", "default": "abc"}}}`, `{}`,
			`template: param amount: default "abc" is not an integer`},
		{"integer default fractional", `{"body": "{}", "params": {"amount": {"type": "integer", "default": 1.5}}}`, `{}`,
			`template: param amount: default 1.5 is not an integer`},
		{"text default not a string", `{"body": "{}", "params": {"m": {"type": "text", "default": 5}}}`, `{}`,
			`template: param m: default 5 of a text param must be a string`},
		{"unknown param key", `{"body": "{}", "params": {"m": {"type": "text", "max": 5}}}`, `{}`,
			`template: param m: unknown key "max" (want type, default)`},
		{"unterminated variable", `{"body": "{\"a\": ${a"}`, `{}`, `template: body: unterminated ${ at byte 6`},
		{"empty variable", `{"body": "{\"a\": ${}}"}`, `{}`, `template: body: empty variable ${}`},
		{"body template not JSON", `{"body": "{\"a\": ${a}"}`, `{}`,
			`template: body is not a JSON template (with each unquoted ${...} read as a value): {"a": 0`},
		{"body not a string", `{"body": {"a": 1}}`, `{}`,
			`template: body must be a string holding the template, e.g. "{\"amount\": ${amount}}"`},
		{"unknown key", `{"body": "{}", "taget": "crm"}`, `{}`,
			`template: unknown config key "taget" (want body, body_format, query, headers, params, params_from, target, method)`},
		{"nothing to render", `{"target": "crm"}`, `{}`, `template: nothing to render: set body, query or headers`},
		{"bad body_format", `{"body": "x", "body_format": "xml"}`, `{}`, `template: body_format is "xml"; want "json" or "text"`},
		{"query not an object", `{"query": "a=1"}`, `{}`, `template: query must be an object of name: template, e.g. {"email": "${visitor.email}"}`},
		{"query value not a string", `{"query": {"a": 1}}`, `{}`, `template: query.a must be a string template`},
		{"unknown target", `{"body": "{}", "target": "nope"}`, `{}`, `sdk: emit("nope"): unknown target`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdktest.Run(handle, sdktest.Input{Body: []byte(tt.body), Config: []byte(tt.config), Targets: []string{"coupons", "crm"}})
			var fe *sdktest.FailError
			if !errors.As(err, &fe) || fe.Msg != tt.want {
				t.Fatalf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func BenchmarkCoupon(b *testing.B) {
	sdktest.Benchmark(b, handle, sdktest.Input{Body: []byte(`{"amount": 250, "user": {"id": "u1"}}`), Config: []byte(coupon)})
}
