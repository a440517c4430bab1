package app_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/docs"
	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestOpenAPICoversEveryRoute checks that the published OpenAPI document and the router agree
// in both directions: every served route is documented, and every documented operation is
// served.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	a, err := app.NewWithStore(testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	served := a.Router().Patterns()

	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(documented)

	for _, p := range served {
		if !slices.Contains(documented, p) {
			t.Errorf("route %q is served but not in docs/openapi.json", p)
		}
	}
	for _, p := range documented {
		if !slices.Contains(served, p) {
			t.Errorf("operation %q is in docs/openapi.json but not served", p)
		}
	}
}
