package docs

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/oapi-codegen/oapi-codegen/v2/pkg/codegen"
)

// TestOpenAPIGeneratesGoTypes generates a Go client and its types from the document with
// oapi-codegen, the generator a Go consumer would reach for, into a temporary directory, and
// type-checks the result: two schemas or operations that map to one Go name, or a schema the
// generator cannot express, fail here rather than in a user's build.
func TestOpenAPIGeneratesGoTypes(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPI)
	if err != nil {
		t.Fatalf("kin-openapi cannot load openapi.json: %v", err)
	}
	code, err := codegen.Generate(doc, codegen.Configuration{
		PackageName: "latchkeyapi",
		Generate:    codegen.GenerateOptions{Models: true, Client: true},
	})
	if err != nil {
		t.Fatalf("oapi-codegen: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "latchkeyapi.gen.go")
	if err := os.WriteFile(file, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("generated code does not parse: %v", err)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil), Error: func(err error) {
		// Imports outside the standard library (oapi-codegen's runtime) are not in this module's
		// build, so uses of them cannot be checked; everything else, names above all, is.
		if te, ok := err.(types.Error); ok && strings.Contains(te.Msg, "could not import") {
			return
		}
		t.Errorf("generated code: %v", err)
	}}
	conf.Check("latchkeyapi", fset, []*ast.File{f}, nil)
}
