package docs

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPIValidatesWithKinOpenAPI loads the document with kin-openapi, the validator the
// scenario tests use, and validates it whole, examples included: a document it cannot load or
// that fails its own schema cannot check the server either.
func TestOpenAPIValidatesWithKinOpenAPI(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPI)
	if err != nil {
		t.Fatalf("kin-openapi cannot load openapi.json: %v", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation(), openapi3.EnableSchemaFormatValidation()); err != nil {
		t.Errorf("openapi.json does not validate: %v", err)
	}
}
