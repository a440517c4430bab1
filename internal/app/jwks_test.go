package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// jwksPaths are the JWKS URL and its aliases; all serve the same handler.
var jwksPaths = []string{"/.well-known/jwks.json", "/api/v1/.well-known/jwks.json", "/oidc/.well-known/jwks.json"}

// publicJWKMembers are the members a published key may have: public parts only.
var publicJWKMembers = map[string]bool{"kty": true, "kid": true, "use": true, "alg": true, "key_ops": true,
	"n": true, "e": true, "crv": true, "x": true, "y": true}

// keySet fetches a JWKS and returns its kids, checking that it holds public parts only and the
// answer carries a strong ETag.
func keySet(t *testing.T, srv *httptest.Server, path string, header map[string]string) (kids []string, r response) {
	t.Helper()
	r = callServer(t, srv, "GET", path, header)
	if r.status != 200 || r.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("GET %s: %d %s (Content-Type %q)", path, r.status, r.raw, r.header.Get("Content-Type"))
	}
	if etag := r.header.Get("ETag"); !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
		t.Errorf("GET %s: ETag %q, want a strong entity tag", path, etag)
	}
	var set struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(r.raw, &set); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, r.raw)
	}
	for _, k := range set.Keys {
		for member := range k {
			if !publicJWKMembers[member] {
				t.Errorf("GET %s: a key has the member %q, want public parts only: %s", path, member, r.raw)
			}
		}
		var kid string
		_ = json.Unmarshal(k["kid"], &kid)
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	return kids, r
}

// callServer sends a request to srv (through its client, which checks the exchange against
// the OpenAPI document).
func callServer(t *testing.T, srv *httptest.Server, method, path string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, raw: raw}
}

// loginIn completes a login of a new user of p, as a login method would, and returns its access
// token.
func loginIn(t *testing.T, w *tokenWorld, p project.Issued) string {
	t.Helper()
	email := "grace@example.com"
	u, err := w.a.Directory().CreateUser(t.Context(), audit.Actor{Kind: audit.ActorCLI}, p.Project.ID, directory.UserInput{Email: &email})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := w.a.Store().GetProject(t.Context(), p.Project.ID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.a.Login().Complete(t.Context(), login.Request{Project: sp, UserID: u.ID,
		ConnectionType: login.EmailOTP, AMR: []string{"otp"}, Meta: audit.Meta{IPAddress: "192.0.2.11", UserAgent: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	return r.Tokens.AccessToken
}

// verifyWithGoOIDC checks tok's signature the way a stock relying party does: go-oidc's
// RemoteKeySet (go-jose underneath) fetching the JWKS URL as given.
func verifyWithGoOIDC(t *testing.T, srv *httptest.Server, path, tok string) error {
	t.Helper()
	ctx := oidc.ClientContext(t.Context(), srv.Client())
	_, err := oidc.NewRemoteKeySet(ctx, srv.URL+path).VerifySignature(ctx, tok)
	return err
}

// TestJWKSWithoutClientIDIsTheUnionOfEveryProject: verifiers configured with only the issuer
// fetch the JWKS URL with no client id. They get every project's published keys (and nothing
// else: no private part, no key of a project that has none), cacheable by anyone, the same on
// every alias and whatever the request carries; a token of each project verifies against it.
// Naming a client id still narrows the set to that project's keys.
func TestJWKSWithoutClientIDIsTheUnionOfEveryProject(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newTokenWorld(t, st) // project A signs with RS256, the default
		rsaToken := w.login().Tokens.AccessToken
		other, err := w.a.Projects().Create(t.Context(), project.NewProject{Name: "Other"})
		if err != nil {
			t.Fatal(err)
		}
		w.want(w.call("PATCH", "/api/v1/project", `{"settings":{"tokens":{"signing_algorithm":"ES256"}}}`,
			map[string]string{"X-Client-Id": other.Project.ClientID, "X-Client-Secret": other.ClientSecret}), 200, "")
		ecToken := loginIn(t, w, other) // B's first key, of its algorithm
		if _, err := w.a.Projects().Create(t.Context(), project.NewProject{Name: "Keyless"}); err != nil {
			t.Fatal(err)
		}
		if a, b := header(t, rsaToken)["alg"], header(t, ecToken)["alg"]; a != "RS256" || b != "ES256" {
			t.Fatalf("algorithms %v and %v, want RS256 and ES256", a, b)
		}

		aKids, _ := keySet(t, w.srv, "/.well-known/jwks.json?client_id="+w.proj.Project.ClientID, nil)
		bKids, _ := keySet(t, w.srv, "/.well-known/jwks.json?client_id="+other.Project.ClientID, nil)
		want := slices.Sorted(slices.Values(append(slices.Clone(aKids), bKids...)))
		if len(aKids) != 1 || len(bKids) != 1 || want[0] == want[1] {
			t.Fatalf("project sets %v and %v, want one key each, distinct", aKids, bKids)
		}

		var union response
		for _, path := range jwksPaths {
			kids, r := keySet(t, w.srv, path, nil)
			if !slices.Equal(kids, want) {
				t.Errorf("GET %s without a client id lists %v, want both projects' keys %v", path, kids, want)
			}
			if cc := r.header.Get("Cache-Control"); cc != "public, max-age=30" {
				t.Errorf("GET %s: Cache-Control %q, want public, max-age=30 (the key cache TTL)", path, cc)
			}
			if union.raw == nil {
				union = r
			} else if string(r.raw) != string(union.raw) || r.header.Get("ETag") != union.header.Get("ETag") {
				t.Errorf("GET %s answers differently from %s", path, jwksPaths[0])
			}
			for _, tok := range []string{rsaToken, ecToken} {
				if err := verifyWithGoOIDC(t, w.srv, path, tok); err != nil {
					t.Errorf("go-oidc refuses a %v token against %s: %v", header(t, tok)["alg"], path, err)
				}
			}
		}
		// Nothing the client sends changes the union.
		for _, h := range []map[string]string{{"X-Forwarded-Host": "evil.example"}, {"Accept-Language": "de"},
			{"Origin": "https://app.example"}, {"Authorization": "Bearer " + rsaToken}} {
			_, r := keySet(t, w.srv, "/.well-known/jwks.json", h)
			if string(r.raw) != string(union.raw) || r.header.Get("ETag") != union.header.Get("ETag") ||
				r.header.Get("Cache-Control") != "public, max-age=30" {
				t.Errorf("with %v the union differs: %s %q", h, r.raw, r.header.Get("Cache-Control"))
			}
		}
		// A project's own set still has only its keys.
		if err := verifyWithGoOIDC(t, w.srv, "/.well-known/jwks.json?client_id="+w.proj.Project.ClientID, ecToken); err == nil {
			t.Error("go-oidc verifies project B's token against project A's set")
		}

		// Conditional requests: the current ETag gives 304 with no body, on the union and on a
		// project's set; an old or foreign tag gives the set.
		for _, path := range []string{"/.well-known/jwks.json", "/oidc/.well-known/jwks.json?client_id=" + w.proj.Project.ClientID} {
			_, full := keySet(t, w.srv, path, nil)
			etag := full.header.Get("ETag")
			for _, inm := range []string{etag, `"stale", ` + etag, "W/" + etag, "*"} {
				r := callServer(t, w.srv, "GET", path, map[string]string{"If-None-Match": inm})
				if r.status != http.StatusNotModified || len(r.raw) != 0 || r.header.Get("ETag") != etag ||
					r.header.Get("Cache-Control") != full.header.Get("Cache-Control") {
					t.Errorf("GET %s If-None-Match %s: %d %q ETag %q Cache-Control %q, want 304 with the same tag and caching",
						path, inm, r.status, r.raw, r.header.Get("ETag"), r.header.Get("Cache-Control"))
				}
			}
			if r := callServer(t, w.srv, "GET", path, map[string]string{"If-None-Match": `"stale"`}); r.status != 200 || string(r.raw) != string(full.raw) {
				t.Errorf("GET %s with a stale tag: %d, want 200 and the set", path, r.status)
			}
		}
		if etagA := callServer(t, w.srv, "GET", "/.well-known/jwks.json?client_id="+w.proj.Project.ClientID, nil).header.Get("ETag"); etagA == union.header.Get("ETag") {
			t.Error("project A's set and the union share an ETag")
		}

		// A client id is checked as before.
		w.want(w.call("GET", "/oidc/.well-known/jwks.json?client_id=nope", "", nil), 401, "invalid_client")
		w.want(w.call("GET", "/oidc/.well-known/jwks.json?client_id="+w.proj.Project.ClientID, "",
			map[string]string{"X-Client-Id": other.Project.ClientID}), 400, "client_id_mismatch")
	})
}

// TestJWKSUnionFollowsRotationWithinTheCacheTTL: an instance reads the union once per key
// cache TTL (the requests in between do not reach the database), so a key rotated in on another
// instance appears there within the TTL, on the injected clock, and a retired key leaves it.
func TestJWKSUnionFollowsRotationWithinTheCacheTTL(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newTokenWorld(t, st)
		first := w.login().Tokens.AccessToken
		oldKID := header(t, first)["kid"].(string)
		b, err := app.NewWithStore(st, app.WithPublicURL(testIssuer), app.WithClock(w.clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		srvB := httptest.NewServer(b.Handler())
		checkAgainstOpenAPI(t, srvB)
		t.Cleanup(srvB.Close)
		ttl := b.Keys().CacheTTL()

		kids, before := keySet(t, srvB, "/.well-known/jwks.json", nil)
		if !slices.Equal(kids, []string{oldKID}) {
			t.Fatalf("instance B's union %v, want [%s]", kids, oldKID)
		}
		if kids, _ := keySet(t, w.srv, "/.well-known/jwks.json", nil); !slices.Equal(kids, []string{oldKID}) {
			t.Fatalf("instance A's union %v, want [%s]", kids, oldKID) // now in A's cache too
		}
		rotated, err := w.a.Keys().Rotate(t.Context(), audit.Actor{Kind: audit.ActorCLI}, w.proj.Project.ID, token.RS256, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		both := slices.Sorted(slices.Values([]string{oldKID, rotated.ID}))
		if kids, _ := keySet(t, w.srv, "/.well-known/jwks.json", nil); !slices.Equal(kids, both) {
			t.Errorf("the rotating instance's union %v, want %v at once", kids, both)
		}

		w.clock.Advance(ttl - time.Second)
		if kids, r := keySet(t, srvB, "/.well-known/jwks.json", nil); !slices.Equal(kids, []string{oldKID}) ||
			r.header.Get("ETag") != before.header.Get("ETag") {
			t.Errorf("within the TTL instance B's union is %v, want its cached [%s]: it must not read the table per request", kids, oldKID)
		}
		w.clock.Advance(time.Second)
		kids, after := keySet(t, srvB, "/.well-known/jwks.json", nil)
		if !slices.Equal(kids, both) {
			t.Fatalf("a TTL after the rotation instance B's union is %v, want %v", kids, both)
		}
		if after.header.Get("ETag") == before.header.Get("ETag") {
			t.Error("the union changed but its ETag did not")
		}
		if r := callServer(t, srvB, "GET", "/.well-known/jwks.json", map[string]string{"If-None-Match": before.header.Get("ETag")}); r.status != 200 {
			t.Errorf("the old ETag after the rotation: %d, want 200 and the new set", r.status)
		}

		w.clock.Advance(2 * time.Minute)
		second := w.login().Tokens.AccessToken
		if kid := header(t, second)["kid"]; kid != rotated.ID {
			t.Fatalf("after activation tokens are signed by %v, want %s", kid, rotated.ID)
		}
		for _, tok := range []string{first, second} {
			if err := verifyWithGoOIDC(t, srvB, "/.well-known/jwks.json", tok); err != nil {
				t.Errorf("go-oidc refuses a token of kid %v against instance B's union: %v", header(t, tok)["kid"], err)
			}
		}

		// Once nothing the old key signed can be alive, it leaves the union everywhere.
		w.clock.Advance(token.MaxAccessTokenTTL + ttl + 10*time.Minute)
		for name, srv := range map[string]*httptest.Server{"A": w.srv, "B": srvB} {
			if kids, _ := keySet(t, srv, "/.well-known/jwks.json", nil); !slices.Equal(kids, []string{rotated.ID}) {
				t.Errorf("a day after the rotation instance %s's union is %v, want only [%s]", name, kids, rotated.ID)
			}
		}
	})
}

// BenchmarkJWKS measures JWKS requests over HTTP on loopback: the union (no client id) and one
// project's set (client_id in the query), on SQLite. Both come from the instance's cache.
//
//	go test -run '^$' -bench JWKS -benchmem ./internal/app
func BenchmarkJWKS(b *testing.B) {
	a, err := app.NewWithStore(testdb.SQLite(b))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	b.Cleanup(srv.Close)
	var clientID string
	for i := range 3 { // a few projects, each with a key of another algorithm
		p, err := a.Projects().Create(b.Context(), project.NewProject{Name: "Bench"})
		if err != nil {
			b.Fatal(err)
		}
		alg := []token.Algorithm{token.RS256, token.ES256, token.EdDSA}[i]
		if _, err := a.Keys().Signer(b.Context(), p.Project.ID, alg); err != nil {
			b.Fatal(err)
		}
		clientID = p.Project.ClientID
	}
	for name, path := range map[string]string{"union": "/.well-known/jwks.json", "project": "/.well-known/jwks.json?client_id=" + clientID} {
		b.Run(name, func(b *testing.B) {
			c := srv.Client()
			for b.Loop() {
				resp, err := c.Get(srv.URL + path)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("GET %s: %d", path, resp.StatusCode)
				}
			}
		})
	}
}
