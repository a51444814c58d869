package verify

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"
)

// The fuzz targets feed every header parser through Verify, the way a
// sender would reach it. Each checks that nothing panics, that the answer
// is nil or one of the documented refusals, and that a correctly signed
// request for the same body still passes (the parser did not lose its
// footing on earlier input). Seed corpora: testdata/fuzz/<FuzzName>/.

var fuzzNow = time.Unix(1_700_000_000, 0)

func checkRefusal(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("not a *verify.Error: %v", err)
	}
	switch e {
	case ErrMissingSignature, ErrMissingCredentials, ErrMalformedHeader, ErrBadSignature,
		ErrBadCredentials, ErrTimestampTolerance, ErrIPNotAllowed:
	default:
		t.Fatalf("unknown refusal %q", e.Reason)
	}
}

func FuzzHMACHeader(f *testing.F) {
	f.Add("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", []byte("Hello, World!"))
	f.Add("sha256=", []byte(""))
	f.Add("sha256= 00 ", []byte("x"))
	f.Add("SHA256=ZZ", []byte("{}"))
	hexV, err := New(Spec{Type: TypeHMAC, Secrets: []string{"It's a Secret to Everybody", "k2"}, Header: "X-Sig", Prefix: "sha256="})
	if err != nil {
		f.Fatal(err)
	}
	b64V, err := New(Spec{Type: TypeHMAC, Secrets: []string{"k2"}, Header: "X-Sig", Encoding: EncodingBase64, Algorithm: AlgorithmSHA512})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		for _, v := range []*Verifier{hexV, b64V} {
			err := v.Verify(Request{Header: h("X-Sig", header), Body: body}, fuzzNow)
			checkRefusal(t, err)
			if err == nil && header == "" {
				t.Fatal("an empty header passed")
			}
		}
		good := "sha256=" + hex.EncodeToString(mac(sha256.New, "k2", string(body)))
		if err := hexV.Verify(Request{Header: h("X-Sig", good), Body: body}, fuzzNow); err != nil {
			t.Fatalf("a valid signature refused: %v", err)
		}
	})
}

func FuzzStripeHeader(f *testing.F) {
	ts := strconv.FormatInt(fuzzNow.Unix(), 10)
	f.Add("t="+ts+",v1="+hex.EncodeToString(mac(sha256.New, "whsec_k", ts, ".", "{}")), []byte("{}"))
	f.Add("t=1,v1=00,v0=11", []byte("a"))
	f.Add(",,,=,t=,v1=", []byte(""))
	f.Add("t=1700000000,t=1700000000,v1=zz", []byte("b"))
	f.Add(" t = 1700000000 , v1 = ab ", []byte("c"))
	v, err := New(Spec{Type: TypeTimestamped, Secrets: []string{"whsec_k", "whsec_old"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		checkRefusal(t, v.Verify(Request{Header: h("Stripe-Signature", header), Body: body}, fuzzNow))
		if hasStripeT(header) {
			return
		}
		// Without a t of its own, whatever the header holds must not stop a
		// valid t and v1 put in front of it from passing.
		good := "t=" + ts + ",v1=" + hex.EncodeToString(mac(sha256.New, "whsec_old", ts, ".", string(body))) + "," + header
		if err := v.Verify(Request{Header: h("Stripe-Signature", good), Body: body}, fuzzNow); err != nil {
			t.Fatalf("a valid signature before %q refused: %v", header, err)
		}
	})
}

func hasStripeT(header string) bool {
	for rest := []byte(header); len(rest) > 0; {
		var k []byte
		k, _, rest = nextStripeItem(rest)
		if string(k) == "t" {
			return true
		}
	}
	return false
}

func FuzzStandardSignatures(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	ts := strconv.FormatInt(fuzzNow.Unix(), 10)
	f.Add("msg_1", ts, "v1,"+base64.StdEncoding.EncodeToString(mac(sha256.New, string(key), "msg_1", ".", ts, ".", "{}")), []byte("{}"))
	f.Add("msg_1", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,xyz", []byte(`{"test": 2432232314}`))
	f.Add("", "", "", []byte(""))
	f.Add("a", "99999999999999999999", "v1, v1,,  v1,====", []byte("x"))
	v, err := New(Spec{Type: TypeStandardWebhooks, Secrets: []string{"whsec_" + base64.StdEncoding.EncodeToString(key)}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, stamp, sigs string, body []byte) {
		checkRefusal(t, v.Verify(Request{Header: h("webhook-id", id, "webhook-timestamp", stamp, "webhook-signature", sigs), Body: body}, fuzzNow))
		if id == "" {
			return
		}
		good := sigs + " v1," + base64.StdEncoding.EncodeToString(mac(sha256.New, string(key), id, ".", ts, ".", string(body)))
		if err := v.Verify(Request{Header: h("webhook-id", id, "webhook-timestamp", ts, "webhook-signature", good), Body: body}, fuzzNow); err != nil {
			t.Fatalf("a valid signature after %q refused: %v", sigs, err)
		}
	})
}

func FuzzBasicHeader(f *testing.F) {
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("u:p")))
	f.Add("basic ")
	f.Add("Basic ====")
	f.Add("Basic dTo=")
	f.Add("Bearer x")
	v, err := New(Spec{Type: TypeBasic, Username: "u", Secrets: []string{"p"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		err := v.Verify(Request{Header: h("Authorization", header)}, fuzzNow)
		checkRefusal(t, err)
		var buf [maxCredential]byte
		user, pass, perr := parseBasic(buf[:], []byte(header))
		if err == nil && (perr != nil || string(user) != "u" || string(pass) != "p") {
			t.Fatalf("%q passed as %q:%q (%v)", header, user, pass, perr)
		}
	})
}

func FuzzQueryToken(f *testing.F) {
	f.Add("apiToken=t+o%20k")
	f.Add("apiToken=%")
	f.Add("apiToken=%zz&apiToken=t")
	f.Add("&&=&apiToken")
	v, err := New(Spec{Type: TypeToken, Query: "apiToken", Secrets: []string{"t o k"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, q string) {
		checkRefusal(t, v.Verify(Request{Header: h(), RawQuery: []byte(q)}, fuzzNow))
		if err := v.Verify(Request{Header: h(), RawQuery: []byte("apiToken=t+o+k&" + q)}, fuzzNow); err != nil {
			t.Fatalf("a valid token before %q refused: %v", q, err)
		}
	})
}
