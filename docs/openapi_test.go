package docs

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOpenAPIIsWellFormed checks the properties of the document that tools rely on: it is
// OpenAPI 3.1, every operation has a unique operationId and at least one response, and every
// schema reference resolves.
func TestOpenAPIIsWellFormed(t *testing.T) {
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	ids := map[string]string{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			var op struct {
				OperationID string                     `json:"operationId"`
				Responses   map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			where := strings.ToUpper(method) + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %q used by %s and %s", op.OperationID, other, where)
			}
			ids[op.OperationID] = where
			if len(op.Responses) == 0 {
				t.Errorf("%s has no responses", where)
			}
		}
	}
	const prefix = `"#/components/schemas/`
	text := string(OpenAPI)
	for i := strings.Index(text, prefix); i >= 0; {
		rest := text[i+len(prefix):]
		name := rest[:strings.IndexByte(rest, '"')]
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("reference to undefined schema %q", name)
		}
		next := strings.Index(rest, prefix)
		if next < 0 {
			break
		}
		i = i + len(prefix) + next
	}
}
