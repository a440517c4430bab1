package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/failure"
)

// MaxBodyBytes is the largest request body any JSON endpoint accepts.
const MaxBodyBytes = 1 << 20

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v) // the status is sent; a failed write means the client went away
}

// DecodeJSON reads a JSON body of at most MaxBodyBytes into v. Unknown fields are ignored; a
// body that is too large, malformed, or has a value of the wrong type is refused with an error
// that names the problem and, where it can, the field.
//
// Before anything is decoded the body must pass CheckJSON: encoding/json lets the last of two
// equal keys win and matches keys to fields case-insensitively, so {"email":"a","EMAIL":"b"}
// would mean whatever the decoder's order says, and a number such as 1e999999 or a document
// nested a thousand levels deep would be stored and then fail every read.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return jsonError(err)
	}
	// The shape goes first, so that its errors name values the same way on every route
	// whatever v is; a body it cannot walk is left to the decoder to describe.
	if err := CheckJSON(body); err != nil && !errors.Is(err, errMalformed) {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	// Anything but white space after the value is a malformed body, not a second request.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return failure.New(failure.Invalid, "invalid_request", "request body must hold a single JSON value")
		}
		return jsonError(err)
	}
	return nil
}

func jsonError(err error) error {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return &failure.Error{Kind: failure.TooLarge, Code: "request_too_large",
			Description: "request body is larger than 1 MiB", Err: err}
	case errors.Is(err, io.EOF):
		return failure.New(failure.Invalid, "invalid_request", "request body is empty; a JSON object is required")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return &failure.Error{Kind: failure.Invalid, Code: "invalid_request",
			Description: "request body is not valid JSON", Err: err}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &failure.Error{Kind: failure.Invalid, Code: "invalid_request",
				Description: "request body must be a JSON " + typ.Type.Kind().String(), Err: err}
		}
		return &failure.Error{Kind: failure.Invalid, Code: "invalid_request", Field: field,
			Description: field + ": must be " + jsonTypeName(typ.Type.Kind().String()) + ", not " + typ.Value, Err: err}
	}
	return &failure.Error{Kind: failure.Invalid, Code: "invalid_request", Description: "request body could not be read", Err: err}
}

func jsonTypeName(goKind string) string {
	switch {
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "a boolean"
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "slice", goKind == "array":
		return "an array"
	case goKind == "map", goKind == "struct":
		return "an object"
	}
	return "a " + goKind
}
