package tokenhttp_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/login/logintest"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/token"
	"github.com/latchkey-dev/latchkey/internal/token/tokenhttp"
)

// server is the token routes on a real router, real services and a real store, over HTTP.
type server struct {
	t     *testing.T
	stack *logintest.Stack
	url   string
}

// client is a project with its client secret.
type client struct {
	project store.Project
	secret  string
}

func newServer(t *testing.T, st *sqlstore.Store) *server {
	t.Helper()
	s := &server{t: t, stack: logintest.New(t, st)}
	// Client secrets go through the throttled path, as internal/app wires it.
	secrets := protect.Secrets{Authenticator: s.stack.Projects, Engine: s.stack.Protect, IP: httpserver.ClientIPFrom}
	rt := httpserver.NewRouter(secrets, slog.New(slog.DiscardHandler))
	rt.UseBearer(s.stack.Sessions)
	tokenhttp.Handler{Sessions: s.stack.Sessions, Login: s.stack.Login, Users: s.stack.Directory, Secrets: secrets,
		Log: slog.New(slog.DiscardHandler)}.Mount(rt)
	srv := httptest.NewServer(httpserver.Wrap(rt, slog.New(slog.DiscardHandler), nil))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// client creates a project and returns it with its secret.
func (s *server) client(name string) client {
	s.t.Helper()
	issued, err := s.stack.Projects.Create(s.t.Context(), project.NewProject{Name: name})
	if err != nil {
		s.t.Fatal(err)
	}
	return client{project: issued.Project, secret: issued.ClientSecret}
}

// user creates a user of the project: email unverified, phone set, both names.
func (s *server) user(c client) directory.User {
	s.t.Helper()
	u, err := s.stack.Directory.CreateUser(s.t.Context(), audit.Actor{Kind: audit.ActorCLI}, c.project.ID, directory.UserInput{
		Email: ptr("ada@example.com"), Phone: ptr("+15555550100"), FirstName: ptr("Ada"), LastName: ptr("Lovelace"),
		EmailVerified: ptr(false)})
	if err != nil {
		s.t.Fatal(err)
	}
	return u
}

// start begins a session of the user as a login does, with the grant's scope.
func (s *server) start(c client, g token.Grant) token.Tokens {
	s.t.Helper()
	starter, err := s.stack.Sessions.PrepareSession(s.t.Context(), c.project)
	if err != nil {
		s.t.Fatal(err)
	}
	var out token.Tokens
	err = s.stack.Store.InTx(s.t.Context(), func(tx store.Store) error {
		var err error
		out, err = starter.Start(s.t.Context(), tx, g)
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// machineToken mints a client_credentials token of the project.
func (s *server) machineToken(c client) string {
	s.t.Helper()
	tok, err := s.stack.Sessions.ClientCredentials(s.t.Context(), c.project, "")
	if err != nil {
		s.t.Fatal(err)
	}
	return tok.AccessToken
}

// answer is one HTTP exchange's outcome.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body as an object.
func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", a.body, err)
	}
	return m
}

// do sends a request; form, when not nil, is the urlencoded body.
func (s *server) do(method, path string, form url.Values, header map[string]string) answer {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(s.t.Context(), method, s.url+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// basic is an Authorization header of HTTP Basic client authentication.
func basic(c client) map[string]string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(c.project.ClientID, c.secret)
	return map[string]string{"Authorization": req.Header.Get("Authorization")}
}

func bearer(raw string) map[string]string { return map[string]string{"Authorization": "Bearer " + raw} }

func ptr[T any](v T) *T { return &v }

// wantStatus fails the test unless a has the status, showing the body.
func wantStatus(t *testing.T, a answer, status int, what string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, a.status, status, a.body)
	}
}

// wantOAuthError checks an OAuth-shaped error (RFC 6749 §5.2).
func wantOAuthError(t *testing.T, a answer, status int, code, what string) {
	t.Helper()
	wantStatus(t, a, status, what)
	if got := a.json(t)["error"]; got != code {
		t.Errorf("%s: error %v, want %q (body %s)", what, got, code, a.body)
	}
}

// wantSessionActive checks whether the session is still active, as the store says.
func (s *server) wantSessionActive(c client, id string, active bool, what string) {
	s.t.Helper()
	sess, err := s.stack.Store.GetSession(s.t.Context(), c.project.ID, id)
	if err != nil {
		s.t.Fatal(err)
	}
	if got := sess.Active(s.stack.Clock.Now()); got != active {
		s.t.Errorf("%s: session active = %v, want %v (revoked %v, reason %q)", what, got, active, sess.RevokedAt, sess.RevokeReason)
	}
}

// advance moves the services' clock.
func (s *server) advance(d time.Duration) { s.stack.Clock.Advance(d) }
