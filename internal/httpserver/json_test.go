package httpserver

import (
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
