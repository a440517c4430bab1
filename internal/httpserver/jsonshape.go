package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/latchkey-dev/latchkey/internal/failure"
)

// MaxJSONDepth is how deeply a request body may nest objects and arrays; the body itself is
// level 1. Nothing in the API needs more than a few levels, and a bound far below
// encoding/json's own (10000) keeps a stored document readable by every reader.
const MaxJSONDepth = 32

// CheckJSON refuses, with 400 invalid_request naming the field by its path (raw_attributes.n,
// groups[2]), a JSON document that
//   - has two keys in one object that encoding/json would match to the same field: equal, or
//     equal after its case folding ("email" and "EMAIL", "k" and KELVIN SIGN). The rule holds in
//     nested objects too, including free-form ones such as raw_attributes, so that one rule
//     covers every body;
//   - holds a number that overflows a float64 (1e999999), which encoding/json refuses to read
//     back into a float64 or an any;
//   - nests deeper than MaxJSONDepth.
//
// It walks the bytes once without building values, so its cost is a small fraction of the
// decoding it guards.
func CheckJSON(doc []byte) error {
	c := shapeChecker{doc: doc}
	c.space()
	if err := c.value(1); err != nil {
		return err
	}
	return nil
}

// shapeChecker walks one JSON document. path holds the raw (still quoted) keys and array
// indexes from the root to the value being read; it is turned into a name only on an error.
type shapeChecker struct {
	doc  []byte
	i    int
	path []pathStep
}

type pathStep struct {
	key   []byte // quoted, as in the document; nil for an array element
	index int
}

var errMalformed = errors.New("malformed JSON")

func (c *shapeChecker) value(depth int) error {
	if c.i >= len(c.doc) {
		return c.malformed()
	}
	switch ch := c.doc[c.i]; {
	case ch == '{' || ch == '[':
		if depth > MaxJSONDepth {
			return c.refuse("is nested more than " + strconv.Itoa(MaxJSONDepth) + " levels deep")
		}
		if ch == '{' {
			return c.object(depth)
		}
		return c.array(depth)
	case ch == '"':
		_, _, err := c.str()
		return err
	case ch == '-' || (ch >= '0' && ch <= '9'):
		return c.number()
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(c.doc[c.i:], []byte(lit)) {
				c.i += len(lit)
				return nil
			}
		}
		return c.malformed()
	}
}

func (c *shapeChecker) object(depth int) error {
	c.i++ // {
	c.space()
	if c.peek() == '}' {
		c.i++
		return nil
	}
	// Most objects have a few keys: a linear scan over them beats a map's allocation.
	var small [8]string
	seen := small[:0]
	var many map[string]bool
	for {
		raw, escaped, err := c.str()
		if err != nil {
			return err
		}
		key, err := foldKey(raw, escaped)
		if err != nil {
			return c.malformed()
		}
		c.path = append(c.path, pathStep{key: raw})
		dup := false
		if many != nil {
			dup = many[key]
			many[key] = true
		} else {
			for _, k := range seen {
				if k == key {
					dup = true
					break
				}
			}
			seen = append(seen, key)
			if len(seen) > len(small) {
				many = make(map[string]bool, 2*len(seen))
				for _, k := range seen {
					many[k] = true
				}
			}
		}
		if dup {
			return c.refuse("is given more than once (keys are matched case-insensitively)")
		}
		c.space()
		if c.peek() != ':' {
			return c.malformed()
		}
		c.i++
		c.space()
		if err := c.value(depth + 1); err != nil {
			return err
		}
		c.path = c.path[:len(c.path)-1]
		c.space()
		switch c.peek() {
		case ',':
			c.i++
			c.space()
		case '}':
			c.i++
			return nil
		default:
			return c.malformed()
		}
	}
}

func (c *shapeChecker) array(depth int) error {
	c.i++ // [
	c.space()
	if c.peek() == ']' {
		c.i++
		return nil
	}
	for n := 0; ; n++ {
		c.path = append(c.path, pathStep{index: n})
		if err := c.value(depth + 1); err != nil {
			return err
		}
		c.path = c.path[:len(c.path)-1]
		c.space()
		switch c.peek() {
		case ',':
			c.i++
			c.space()
		case ']':
			c.i++
			return nil
		default:
			return c.malformed()
		}
	}
}

// str reads a string and returns it quoted, and whether it holds an escape.
func (c *shapeChecker) str() ([]byte, bool, error) {
	if c.peek() != '"' {
		return nil, false, c.malformed()
	}
	start := c.i
	escaped := false
	for c.i++; c.i < len(c.doc); c.i++ {
		switch c.doc[c.i] {
		case '\\':
			escaped = true
			c.i++
		case '"':
			c.i++
			return c.doc[start:c.i], escaped, nil
		}
	}
	return nil, false, c.malformed()
}

func (c *shapeChecker) number() error {
	start := c.i
	exp := false
	for ; c.i < len(c.doc); c.i++ {
		ch := c.doc[c.i]
		if ch == 'e' || ch == 'E' {
			exp = true
		} else if !(ch >= '0' && ch <= '9' || ch == '-' || ch == '+' || ch == '.') {
			break
		}
	}
	// Without an exponent only an integer part of more than 308 digits overflows.
	if !exp && c.i-start < 300 {
		return nil
	}
	if _, err := strconv.ParseFloat(string(c.doc[start:c.i]), 64); err != nil {
		var num *strconv.NumError
		if errors.As(err, &num) && errors.Is(num.Err, strconv.ErrRange) {
			return c.refuse("is a number too large to store (it must fit a 64-bit float)")
		}
		return c.malformed()
	}
	return nil
}

func (c *shapeChecker) peek() byte {
	if c.i < len(c.doc) {
		return c.doc[c.i]
	}
	return 0
}

func (c *shapeChecker) space() {
	for c.i < len(c.doc) {
		switch c.doc[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

func (c *shapeChecker) malformed() error {
	return &failure.Error{Kind: failure.Invalid, Code: "invalid_request",
		Description: "request body is not valid JSON", Err: errMalformed}
}

func (c *shapeChecker) refuse(reason string) error {
	field := c.field()
	return failure.InvalidField("invalid_request", field, reason)
}

// field names the value being read by its path from the root: a.b[2].c.
func (c *shapeChecker) field() string {
	var b strings.Builder
	for _, s := range c.path {
		if s.key == nil {
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
			continue
		}
		var k string
		if json.Unmarshal(s.key, &k) != nil {
			k = string(s.key)
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(k)
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}

// foldKey is the form under which encoding/json matches a key to a struct field: ASCII letters
// upper-cased, other runes through ToUpper(ToLower(r)) (its appendFoldedName), after escapes
// are resolved, so that "\u0045MAIL" and "email" collide too.
func foldKey(quoted []byte, escaped bool) (string, error) {
	inner := quoted[1 : len(quoted)-1]
	if escaped {
		var s string
		if err := json.Unmarshal(quoted, &s); err != nil {
			return "", err
		}
		inner = []byte(s)
	}
	ascii := true
	for _, ch := range inner {
		if ch >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(string(inner)), nil
	}
	out := make([]rune, 0, len(inner))
	for _, r := range string(inner) {
		out = append(out, unicode.ToUpper(unicode.ToLower(r)))
	}
	return string(out), nil
}
