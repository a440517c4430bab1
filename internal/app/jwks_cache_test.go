package app_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestJWKSSelectedByHeaderIsNotSharedAcrossProjects: the JWKS URL is the same for every
// project when the client id comes in the x-client-id header, so an answer a shared cache may
// keep must say that it varies with that header, and one selected by the header alone is kept
// by the client only (private): a cache that ignores Vary must still never hand project A's
// keys to project B. Selected by the client_id query parameter, the URL itself differs and the
// set stays public.
func TestJWKSSelectedByHeaderIsNotSharedAcrossProjects(t *testing.T) {
	w := newTokenWorld(t, testdb.SQLite(t))
	other, err := w.a.Projects().Create(t.Context(), project.NewProject{Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	w.login() // project A signs with a key of its own; B has none yet
	varies := func(h http.Header) bool {
		for _, v := range h.Values("Vary") {
			if slices.ContainsFunc(strings.Split(v, ","), func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "X-Client-Id") }) {
				return true
			}
		}
		return false
	}
	for _, path := range []string{"/.well-known/jwks.json", "/api/v1/.well-known/jwks.json"} {
		bodies := map[string]string{}
		for _, cid := range []string{w.proj.Project.ClientID, other.Project.ClientID} {
			r := w.call("GET", path, "", map[string]string{"X-Client-Id": cid})
			w.want(r, 200, "")
			cc := r.header.Get("Cache-Control")
			if !strings.HasPrefix(cc, "private") || strings.Contains(cc, "public") || !varies(r.header) {
				t.Errorf("%s by header: Cache-Control %q, Vary %q; want private and Vary: X-Client-Id", path, cc, r.header.Values("Vary"))
			}
			bodies[cid] = string(r.raw)
		}
		if bodies[w.proj.Project.ClientID] == bodies[other.Project.ClientID] {
			t.Fatalf("%s: both projects got the same key set", path)
		}
		r := w.call("GET", path+"?client_id="+w.proj.Project.ClientID, "", nil)
		w.want(r, 200, "")
		if cc := r.header.Get("Cache-Control"); !strings.HasPrefix(cc, "public") || !varies(r.header) {
			t.Errorf("%s by query: Cache-Control %q, Vary %q; want public and Vary: X-Client-Id", path, cc, r.header.Values("Vary"))
		}
	}
}
