package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/failure"
)

// TestDecodeJSONRefusesAmbiguousAndUnreadableBodies: encoding/json lets the last of two keys
// win and matches keys to fields case-insensitively (KELVIN SIGN folds to k), so each of these
// bodies would decode into a value the client may not have meant; and a number beyond float64
// or a very deep document would be stored and then fail every read. Each is refused with 400
// invalid_request naming the value by its path, before the handler sees a decoded value.
func TestDecodeJSONRefusesAmbiguousAndUnreadableBodies(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxJSONDepth) + `1` + strings.Repeat(`}`, MaxJSONDepth)
	tooDeep := `{"x":` + strings.Repeat(`[`, MaxJSONDepth) + strings.Repeat(`]`, MaxJSONDepth) + `}`
	for _, c := range []struct {
		name, body, field string // field "": accepted
	}{
		{"plain", `{"email":"a@example.com","first_name":"Ann"}`, ""},
		{"distinct keys in different objects", `{"email":"a","raw_attributes":{"email":"b"}}`, ""},
		{"same key in sibling objects", `{"raw_attributes":{"l":[{"k":1},{"k":2}]}}`, ""},
		{"32 levels", deep, ""},
		{"big but finite numbers", `{"n":1.7976931348623157e308,"m":-1e308,"tiny":1e-999999,"i":123456789012345678901234567890}`, ""},
		{"exact duplicate", `{"email":"a","email":"b"}`, "email"},
		{"case variant", `{"email":"a","EMAIL":"b"}`, "EMAIL"},
		{"Unicode fold (KELVIN SIGN)", `{"kind":"a","` + "\u212a" + `ind":"b"}`, "\u212aind"},
		{"escaped variant", `{"email":"a","\u0045mail":"b"}`, "Email"},
		{"duplicate in a nested object", `{"raw_attributes":{"Team":"a","team":"b"}}`, "raw_attributes.team"},
		{"duplicate in an array element", `{"raw_attributes":{"l":[{},{"k":1,"K":2}]}}`, "raw_attributes.l[1].K"},
		{"number beyond float64", `{"raw_attributes":{"n":1e999999}}`, "raw_attributes.n"},
		{"negative number beyond float64", `{"raw_attributes":{"l":[-1E+400]}}`, "raw_attributes.l[0]"},
		{"integer beyond float64", `{"n":1` + strings.Repeat("0", 400) + `}`, "n"},
		{"nested deeper than the bound", tooDeep, "x" + strings.Repeat("[0]", MaxJSONDepth-1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var v map[string]any
			r := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
			err := DecodeJSON(httptest.NewRecorder(), r, &v)
			if c.field == "" {
				if err != nil {
					t.Fatalf("DecodeJSON(%s) = %v, want it accepted", c.body, err)
				}
				return
			}
			fe, ok := failure.As(err)
			if !ok || fe.Kind != failure.Invalid || fe.Code != "invalid_request" || fe.Field != c.field {
				t.Fatalf("DecodeJSON(%.80s) = %#v, want invalid_request naming %q", c.body, err, c.field)
			}
		})
	}
}

// TestDecodeJSONIntoAStructRefusesCaseVariants is the attack itself: with a struct, "EMAIL"
// fills the email field, so a body with both would set it to whichever came last.
func TestDecodeJSONIntoAStructRefusesCaseVariants(t *testing.T) {
	var v struct {
		Email string `json:"email"`
	}
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"email":"victim@example.com","EMAIL":"attacker@example.com"}`))
	err := DecodeJSON(httptest.NewRecorder(), r, &v)
	if fe, ok := failure.As(err); !ok || fe.Code != "invalid_request" || fe.Field != "EMAIL" {
		t.Fatalf("DecodeJSON = %v (email %q), want invalid_request naming EMAIL", err, v.Email)
	}
}

// BenchmarkCheckJSON measures the shape check against the decoding it guards, on a body of
// the size of a user with full raw_attributes.
func BenchmarkCheckJSON(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"email":"a@example.com","first_name":"Ann","raw_attributes":{`)
	for i := range 400 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"attribute_` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":[1.5,"text",{"k":true}]`)
	}
	sb.WriteString(`}}`)
	body := []byte(sb.String())
	b.Run("check", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := CheckJSON(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var v map[string]any
			r := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
			if err := DecodeJSON(httptest.NewRecorder(), r, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzCheckJSON holds CheckJSON to encoding/json. Syntax is the decoder's to judge (a body
// CheckJSON lets through is decoded next), but a document it accepts must never fail to decode
// into an any for a reason it exists to catch (a number beyond float64), and a document that
// decodes must be refused only for a reason (nesting deeper than MaxJSONDepth, or keys that
// fold to one).
func FuzzCheckJSON(f *testing.F) {
	for _, seed := range []string{`{}`, `[]`, `{"a":1,"b":[true,null,"x"]}`, `{"email":"a","EMAIL":"b"}`,
		`{"n":1e999999}`, `{"k":1,"\u212a":2}`, `"\ud800"`, `[[[[1]]]]`, `{"a":{"a":{"a":1}}}`, ` {"a" : 1 } `, `{"a":1,}`, `01`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := CheckJSON(doc)
		var v any
		decodeErr := json.Unmarshal(doc, &v)
		var typeErr *json.UnmarshalTypeError
		if err == nil && errors.As(decodeErr, &typeErr) {
			t.Fatalf("CheckJSON accepted %q, which encoding/json cannot read back: %v", doc, decodeErr)
		}
		if err != nil && decodeErr == nil && depth(v) <= MaxJSONDepth && !hasFoldedKeys(doc) {
			t.Fatalf("CheckJSON refused %q (%v), which decodes, is not too deep and has no folded keys", doc, err)
		}
	})
}

// depth is how deeply v nests; a scalar is 1.
func depth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, depth(e))
		}
	case []any:
		for _, e := range x {
			d = max(d, depth(e))
		}
	default:
		return 1
	}
	return d + 1
}

// hasFoldedKeys reports whether some object in doc has two keys equal under strings.EqualFold,
// read with a json.Decoder (an independent reading of the keys).
func hasFoldedKeys(doc []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		object bool
		keys   []string
		expect bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tk := tok.(type) {
		case json.Delim:
			switch tk {
			case '{', '[':
				if top != nil && top.object {
					top.expect = true
				}
				stack = append(stack, &frame{object: tk == '{', expect: tk == '{'})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].expect = true
				}
			}
		case string:
			if top != nil && top.object && top.expect {
				for _, k := range top.keys {
					if strings.EqualFold(k, tk) {
						return true
					}
				}
				top.keys = append(top.keys, tk)
				top.expect = false
				continue
			}
			if top != nil && top.object {
				top.expect = true
			}
		default:
			if top != nil && top.object {
				top.expect = true
			}
		}
	}
}
