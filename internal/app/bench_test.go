package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// The benchmarks call the server's http.Handler in process: routing, secret authentication,
// JSON and the database, without the noise of a TCP connection. Run them with
//
//	go test -run '^$' -bench . -benchmem ./internal/app
//
// (PostgreSQL on 127.0.0.1:5432, or LATCHKEY_TEST_POSTGRES_URL, for the postgres halves).

// benchBackends runs fn once per backend, each on a fresh database.
func benchBackends(b *testing.B, fn func(b *testing.B, h http.Handler, creds credentials)) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) *sqlstore.Store
	}{{"sqlite", testdb.SQLite}, {"postgres", testdb.Postgres}} {
		b.Run(backend.name, func(b *testing.B) {
			a, err := app.NewWithStore(backend.open(b))
			if err != nil {
				b.Fatal(err)
			}
			issued, err := a.Projects().Create(context.Background(), project.NewProject{Name: "Bench"})
			if err != nil {
				b.Fatal(err)
			}
			fn(b, a.Handler(), credentials{clientID: issued.Project.ClientID, secret: issued.ClientSecret})
		})
	}
}

func benchRequest(b *testing.B, h http.Handler, creds credentials, method, path, body string, want int) []byte {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Client-Id", creds.clientID)
	req.Header.Set("X-Client-Secret", creds.secret)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s = %d %s", method, path, rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

func BenchmarkCreateUser(b *testing.B) {
	benchBackends(b, func(b *testing.B, h http.Handler, creds credentials) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			benchRequest(b, h, creds, "POST", "/api/v1/users",
				fmt.Sprintf(`{"email":"user%d@example.com","first_name":"Bench","last_name":"User"}`, i), http.StatusCreated)
		}
	})
}

func BenchmarkGetUserByID(b *testing.B) {
	benchBackends(b, func(b *testing.B, h http.Handler, creds credentials) {
		// A realistic table: many users, the one read in the middle of the id range.
		var ids []string
		for i := range 1000 {
			var u struct{ ID string }
			body := benchRequest(b, h, creds, "POST", "/api/v1/users", fmt.Sprintf(`{"email":"seed%d@example.com"}`, i), http.StatusCreated)
			if err := json.Unmarshal(body, &u); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, u.ID)
		}
		path := "/api/v1/users/" + ids[len(ids)/2]
		b.ReportAllocs()
		for b.Loop() {
			benchRequest(b, h, creds, "GET", path, "", http.StatusOK)
		}
	})
}

func BenchmarkGetUserByIDParallel(b *testing.B) {
	benchBackends(b, func(b *testing.B, h http.Handler, creds credentials) {
		var u struct{ ID string }
		body := benchRequest(b, h, creds, "POST", "/api/v1/users", `{"email":"par@example.com"}`, http.StatusCreated)
		if err := json.Unmarshal(body, &u); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				benchRequest(b, h, creds, "GET", "/api/v1/users/"+u.ID, "", http.StatusOK)
			}
		})
	})
}

// BenchmarkRefreshRoundTrip spends a refresh token and gets a new pair over HTTP on SQLite:
// the request path, the single-use UPDATE, session touch, new refresh token and the access
// token's signature, for each of the signing algorithms.
func BenchmarkRefreshRoundTrip(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			a, err := app.NewWithStore(testdb.SQLite(b))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			issued, err := a.Projects().Create(ctx, project.NewProject{Name: "Bench"})
			if err != nil {
				b.Fatal(err)
			}
			settings := []byte(`{"tokens":{"signing_algorithm":"` + alg + `"}}`)
			p, err := a.Projects().Update(ctx, audit.Actor{Kind: audit.ActorCLI}, issued.Project.ID, project.Update{Settings: settings})
			if err != nil {
				b.Fatal(err)
			}
			email := "bench@example.com"
			u, err := a.Directory().CreateUser(ctx, audit.Actor{Kind: audit.ActorCLI}, p.Project.ID, directory.UserInput{Email: &email})
			if err != nil {
				b.Fatal(err)
			}
			res, err := a.Login().Complete(ctx, login.Request{Project: p.Project, UserID: u.ID, ConnectionType: login.EmailOTP})
			if err != nil {
				b.Fatal(err)
			}
			h := a.Handler()
			rt := res.Tokens.RefreshToken
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/api/v1/accesstoken/refresh", strings.NewReader("refresh_token="+url.QueryEscape(rt)))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Client-Id", issued.Project.ClientID)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				var body struct {
					RefreshToken string `json:"refresh_token"`
				}
				if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
					b.Fatalf("refresh: %d %s", rec.Code, rec.Body)
				}
				rt = body.RefreshToken
			}
		})
	}
}

// BenchmarkEmailCode measures, over HTTP on SQLite, a send (flow and sealed message in the
// outbox, one commit) and a verify (spend the code, sign the user up or find them, start a
// session: the login result). Delivery is not timed: the worker runs between the two.
// newBenchApp returns a server on a fresh SQLite database with one project whose settings
// are patched with settings, as requests read it.
func newBenchApp(b *testing.B, settings string, opts ...app.Option) (*app.App, store.Project) {
	a, err := app.NewWithStore(testdb.SQLite(b), opts...)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	issued, err := a.Projects().Create(ctx, project.NewProject{Name: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Projects().Update(ctx, audit.Actor{Kind: audit.ActorCLI}, issued.Project.ID, project.Update{Settings: []byte(settings)}); err != nil {
		b.Fatal(err)
	}
	p, err := a.Store().GetProject(ctx, issued.Project.ID)
	if err != nil {
		b.Fatal(err)
	}
	return a, p
}

func BenchmarkEmailCode(b *testing.B) {
	a, issued := newBenchApp(b, `{"tokens":{"signing_algorithm":"EdDSA"}}`, app.WithDev(true))
	ctx := context.Background()
	h := a.Handler()
	post := func(path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/api/v1/auth/passwordless/"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Client-Id", issued.ClientID)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	b.Run("send", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if rec := post("email-otp/send", fmt.Sprintf(`{"email":"send%d@example.com"}`, i)); rec.Code != http.StatusOK {
				b.Fatalf("send: %d %s", rec.Code, rec.Body)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		// Prepare b.N flows with known codes (read from the dev inbox) before the timer starts.
		type flow struct{ state, code string }
		flows := make([]flow, b.N)
		for i := range flows {
			rec := post("email-otp/send", fmt.Sprintf(`{"email":"verify%d-%d@example.com"}`, b.N, i))
			var sent struct{ State string }
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &sent) != nil {
				b.Fatalf("send: %d %s", rec.Code, rec.Body)
			}
			if _, err := a.Worker().RunOnce(ctx); err != nil {
				b.Fatal(err)
			}
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/dev/inbox.json", nil))
			var inbox struct{ Messages []struct{ Text string } }
			if json.Unmarshal(rec.Body.Bytes(), &inbox) != nil || len(inbox.Messages) == 0 {
				b.Fatalf("dev inbox: %s", rec.Body)
			}
			code := codeRE.FindStringSubmatch(inbox.Messages[0].Text)
			if code == nil {
				b.Fatalf("no code in %q", inbox.Messages[0].Text)
			}
			flows[i] = flow{sent.State, code[1]}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for _, f := range flows {
			if rec := post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, f.state, f.code)); rec.Code != http.StatusOK {
				b.Fatalf("verify: %d %s", rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkSendSignupOff compares, over HTTP on SQLite, an email code sent to a known user
// with one sent to an unknown email in a project that refuses sign-ups. The answers are the
// same; so should the cost be, or the time of a send tells whether an account exists. The
// known path renders, seals and enqueues a message; the unknown one renders and seals it too,
// then drops it, so the gap left is the outbox INSERT.
func BenchmarkSendSignupOff(b *testing.B) {
	a, p := newBenchApp(b, `{"allow_signup":false}`, app.WithDev(true))
	ctx := context.Background()
	known := "known@example.com"
	if _, err := a.Directory().CreateUser(ctx, audit.Actor{Kind: audit.ActorCLI}, p.ID, directory.UserInput{Email: &known}); err != nil {
		b.Fatal(err)
	}
	h := a.Handler()
	for _, c := range []struct{ name, email string }{{"known", known}, {"unknown", "stranger@example.com"}} {
		b.Run(c.name, func(b *testing.B) {
			body := `{"email":"` + c.email + `"}`
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/api/v1/auth/passwordless/email-otp/send", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Client-Id", p.ClientID)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("send: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
