package store_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// wholeStoreHolders are the only packages (under internal/) that may keep the whole
// store.Store: the wiring, the store itself and the test databases. Every other package
// declares the narrow interface it uses (see docs/architecture.md, "The rule for where code
// goes").
var wholeStoreHolders = []string{"app", "store", "testdb"}

// TestOnlyAppHoldsTheWholeStore fails when a struct (a service, its Deps) in a domain package
// has a field of type store.Store, or a constructor (New…) takes one. A transaction handed
// across packages (a func or method parameter such as login.Request.Also's tx) is not held and
// is allowed.
func TestOnlyAppHoldsTheWholeStore(t *testing.T) {
	root := filepath.Join("..")
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
			for _, h := range wholeStoreHolders {
				if top == h {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		name := storeImportName(f)
		if name == "" {
			return nil
		}
		isWholeStore := func(e ast.Expr) bool {
			if s, ok := e.(*ast.StarExpr); ok {
				e = s.X
			}
			sel, ok := e.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Store" {
				return false
			}
			id, ok := sel.X.(*ast.Ident)
			return ok && id.Name == name
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.StructType:
				for _, fld := range n.Fields.List {
					if isWholeStore(fld.Type) {
						t.Errorf("%s: a struct field holds the whole store.Store; declare the narrow interface the package uses", fset.Position(fld.Pos()))
					}
				}
			case *ast.FuncDecl:
				if !strings.HasPrefix(n.Name.Name, "New") {
					return true
				}
				for _, p := range n.Type.Params.List {
					if isWholeStore(p.Type) {
						t.Errorf("%s: constructor %s takes the whole store.Store; declare the narrow interface the package uses", fset.Position(p.Pos()), n.Name.Name)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("checked only %d files under internal/: the walk missed the packages", files)
	}
}

// storeImportName is the name under which f imports package store, or "".
func storeImportName(f *ast.File) string {
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if path != "github.com/latchkey-dev/latchkey/internal/store" {
			continue
		}
		if imp.Name != nil {
			return imp.Name.Name
		}
		return "store"
	}
	return ""
}
