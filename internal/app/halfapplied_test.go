package app_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// These tests pin issue 13 §3: a login whose secret is accepted either finishes (session,
// login log, audit event) or leaves the secret usable. A real database error on the session's
// INSERT, from a trigger the test installs, stands in for a crash or a full disk between
// spending a secret and starting its session.

// faultyDB is a migrated store with a second, raw connection to its database, through which
// a test writes what the store never would: the triggers that make writes fail, or poisoned
// rows.
type faultyDB struct {
	st      *sqlstore.Store
	raw     *sql.DB
	dialect string
}

// eachFaultyDB runs fn on SQLite and on PostgreSQL (skipped without a server, as testdb does).
func eachFaultyDB(t *testing.T, fn func(t *testing.T, db *faultyDB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "latchkey.db")
		st, err := sqlstore.OpenSQLite(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		fn(t, &faultyDB{st: st, raw: raw, dialect: "sqlite"})
	})
	t.Run("postgres", func(t *testing.T) {
		u := testdb.PostgresURL(t)
		st, err := sqlstore.OpenPostgres(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		raw, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		fn(t, &faultyDB{st: st, raw: raw, dialect: "postgres"})
	})
}

// breakSessions makes every INSERT into sessions fail until fixSessions.
func (db *faultyDB) breakSessions(t *testing.T) { db.breakWrites(t, "INSERT", "sessions") }

func (db *faultyDB) fixSessions(t *testing.T) { db.fixWrites(t, "sessions") }

// breakWrites makes every statement of kind op (INSERT, UPDATE, DELETE) on table fail until
// fixWrites.
func (db *faultyDB) breakWrites(t *testing.T, op, table string) {
	t.Helper()
	stmts := []string{`CREATE TRIGGER test_no_` + table + ` BEFORE ` + op + ` ON ` + table + `
		BEGIN SELECT RAISE(ABORT, 'test: ` + table + ` cannot be written'); END`}
	if db.dialect == "postgres" {
		stmts = []string{
			`CREATE OR REPLACE FUNCTION test_no_` + table + `() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN RAISE EXCEPTION 'test: ` + table + ` cannot be written'; END $$`,
			`CREATE TRIGGER test_no_` + table + ` BEFORE ` + op + ` ON ` + table + ` FOR EACH ROW EXECUTE FUNCTION test_no_` + table + `()`,
		}
	}
	for _, q := range stmts {
		if _, err := db.raw.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("install the failing trigger: %v", err)
		}
	}
}

func (db *faultyDB) fixWrites(t *testing.T, table string) {
	t.Helper()
	q := `DROP TRIGGER test_no_` + table
	if db.dialect == "postgres" {
		q += ` ON ` + table
	}
	if _, err := db.raw.ExecContext(t.Context(), q); err != nil {
		t.Fatalf("drop the failing trigger: %v", err)
	}
}

// wantNoUser checks that a refused sign-up left no user behind.
func wantNoUser(t *testing.T, st store.Store, projectID, email string) {
	t.Helper()
	if u, err := st.GetUserByEmail(t.Context(), projectID, email); err == nil {
		t.Errorf("a login that failed signed up user %s (%s)", u.ID, email)
	}
}

// wantWorkingTokens checks that a login result's refresh token works.
func wantWorkingTokens(w *flowWorld, res response) {
	w.t.Helper()
	rt, _ := res.body["refresh_token"].(string)
	if rt == "" {
		w.t.Fatalf("no refresh token in %s", res.raw)
	}
	r := w.call("POST", "/api/v1/accesstoken/refresh", fmt.Sprintf(`{"refresh_token":%q}`, rt), w.cid())
	if r.status != 200 {
		w.t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
}

func TestCodeLoginIsAllOrNothing(t *testing.T) {
	for _, c := range []struct{ channel, field, to string }{
		{"email-otp", "email", "new@example.com"},
		{"phone-otp", "phone_id", "+14155550100"},
	} {
		t.Run(c.channel, func(t *testing.T) {
			eachFaultyDB(t, func(t *testing.T, db *faultyDB) {
				w := newFlowWorld(t, db.st, app.WithDev(true))
				r := w.post(c.channel+"/send", fmt.Sprintf(`{%q:%q}`, c.field, c.to))
				w.want(r, 200, "")
				state := r.body["state"].(string)
				code := w.lastCode(c.to)
				verify := func() response {
					return w.post(c.channel+"/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, state, code))
				}

				db.breakSessions(t)
				if r := verify(); r.status != 500 {
					t.Fatalf("verify with sessions failing: %d %s, want 500", r.status, r.raw)
				}
				if c.field == "email" {
					wantNoUser(t, db.st, w.proj.Project.ID, c.to)
				}
				db.fixSessions(t)

				// Nothing was spent: the same code signs in.
				res := verify()
				if res.status != 200 || res.body["authenticated"] != true {
					t.Fatalf("retry of the code after the failed login: %d %s, want 200", res.status, res.raw)
				}
				wantWorkingTokens(w, res)
			})
		})
	}
}

func TestMagicLinkCollectionIsAllOrNothing(t *testing.T) {
	eachFaultyDB(t, func(t *testing.T, db *faultyDB) {
		w := newFlowWorld(t, db.st, app.WithDev(true))
		r := w.post("magic-link/send", `{"email":"link@example.com"}`)
		w.want(r, 200, "")
		state := r.body["state"].(string)
		link := linkRE.FindString(w.inbox("link@example.com")[0]["text"].(string))
		resp, err := http.Get(strings.Replace(link, "http://auth.test", w.srv.URL, 1))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("open the link: %d", resp.StatusCode)
		}
		status := func() response {
			return w.call("GET", "/api/v1/auth/passwordless/magic-link/status?client_id="+w.proj.Project.ClientID+"&state="+state, "", nil)
		}

		db.breakSessions(t)
		if r := status(); r.status != 500 {
			t.Fatalf("poll with sessions failing: %d %s, want 500", r.status, r.raw)
		}
		db.fixSessions(t)

		// The verified link was not collected: the next poll signs in.
		res := status()
		if res.status != 200 || res.body["authenticated"] != true {
			t.Fatalf("poll after the failed login: %d %s, want the login result", res.status, res.raw)
		}
		wantWorkingTokens(w, res)
	})
}

func TestPasswordSignupIsAllOrNothing(t *testing.T) {
	eachFaultyDB(t, func(t *testing.T, db *faultyDB) {
		w := newPasswordWorld(t, db.st)
		body := `{"email":"signup@example.com","password":"quiet-otter-lantern-94"}`

		db.breakSessions(t)
		if r := w.pw("signup", body); r.status != 500 {
			t.Fatalf("sign-up with sessions failing: %d %s, want 500", r.status, r.raw)
		}
		wantNoUser(t, db.st, w.proj.Project.ID, "signup@example.com")
		db.fixSessions(t)

		// No half-made account: the same sign-up goes through.
		res := w.pw("signup", body)
		if res.status != 200 || res.body["authenticated"] != true {
			t.Fatalf("sign-up again after the failed one: %d %s, want 200", res.status, res.raw)
		}
		wantWorkingTokens(w.flowWorld, res)
	})
}

// sessionHook runs, on SQLite, inside every session INSERT once installed: the trigger calls
// latchkey_test_hook(), a Go function registered with the driver.
var (
	sessionHook         atomic.Pointer[func()]
	registerSessionHook sync.Once
)

// onSessionInsert arranges for pause to run while a session INSERT is under way and returns a
// function that removes the arrangement. On SQLite pause runs inside the INSERT; on PostgreSQL
// the INSERT waits on an advisory lock the test holds until pause has run, which is as good:
// either way the login's secret is accepted and its session not yet written.
func (db *faultyDB) onSessionInsert(t *testing.T, pause func()) (remove func()) {
	t.Helper()
	ctx := t.Context()
	if db.dialect == "sqlite" {
		sessionHook.Store(&pause)
		if _, err := db.raw.ExecContext(ctx, `CREATE TRIGGER test_hook BEFORE INSERT ON sessions
			BEGIN SELECT latchkey_test_hook(); END`); err != nil {
			t.Fatalf("install the hook trigger: %v", err)
		}
		return func() {
			if _, err := db.raw.ExecContext(ctx, `DROP TRIGGER test_hook`); err != nil {
				t.Fatalf("drop the hook trigger: %v", err)
			}
			sessionHook.Store(nil)
		}
	}
	conn, err := db.raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(4242)`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE OR REPLACE FUNCTION test_hook() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NEW; END $$`,
		`CREATE TRIGGER test_hook BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION test_hook()`,
	} {
		if _, err := db.raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("install the hook trigger: %v", err)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Wait (bounded) for a session INSERT to queue on the lock, then pause and let it go.
		for range 30_000 {
			var waiting int
			err := db.raw.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks
				WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted`).Scan(&waiting)
			if err != nil || waiting > 0 {
				break
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond): // poll interval
			}
		}
		pause()
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(4242)`)
	}()
	return func() {
		close(stop)
		<-done
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock_all()`)
		conn.Close()
		if _, err := db.raw.ExecContext(ctx, `DROP TRIGGER test_hook ON sessions`); err != nil {
			t.Fatalf("drop the hook trigger: %v", err)
		}
	}
}

// TestClientGoneMidLoginLeavesNoHalfLogin pins the other half of issue 13 §3: a client that
// goes away (its request's context ends) after its code was accepted and before its session
// was written. The login finishes anyway, or at the very least leaves the code usable.
func TestClientGoneMidLoginLeavesNoHalfLogin(t *testing.T) {
	registerSessionHook.Do(func() {
		sqlite.MustRegisterScalarFunction("latchkey_test_hook", 0, func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
			if f := sessionHook.Load(); f != nil {
				(*f)()
			}
			return nil, nil
		})
	})
	eachFaultyDB(t, func(t *testing.T, db *faultyDB) {
		w := newFlowWorld(t, db.st, app.WithDev(true))
		r := w.post("email-otp/send", `{"email":"gone@example.com"}`)
		w.want(r, 200, "")
		state := r.body["state"].(string)
		code := w.lastCode("gone@example.com")
		p, err := w.a.Store().GetProject(t.Context(), w.proj.Project.ID)
		if err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		remove := db.onSessionInsert(t, cancel)
		res, verr := w.a.Passwordless().VerifyCode(ctx, p, []passwordless.Channel{passwordless.EmailOTP}, state, code,
			audit.Meta{IPAddress: "192.0.2.80"})
		remove()
		if ctx.Err() == nil {
			t.Fatal("the hook did not run: the client never went away")
		}

		again := w.post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, state, code))
		if verr != nil && again.status != 200 {
			t.Fatalf("half-applied: the verify failed (%v) and the code is spent: %d %s", verr, again.status, again.raw)
		}
		if verr != nil {
			t.Fatalf("the client going away cut the login short (%v); the code still works, but the login should have finished", verr)
		}
		if !res.Authenticated || res.Tokens.RefreshToken == "" {
			t.Fatalf("result = %+v", res)
		}
		w.want(again, 404, "flow_not_found")
		wantWorkingTokens(w, response{body: map[string]any{"refresh_token": res.Tokens.RefreshToken}})
	})
}

func TestMFAAnswerIsAllOrNothing(t *testing.T) {
	eachFaultyDB(t, func(t *testing.T, db *faultyDB) {
		w := &mfaWorld{newFlowWorld(t, db.st, app.WithDev(true))}
		w.setMFA(`{"policy":"required","factors":["otp","recovery-code"]}`)
		tok := w.challenged(w.emailLogin("second@example.com"))
		enr := w.call("POST", mfaBase+"enroll", `{"authenticator_types":["otp"]}`, w.withToken(tok))
		w.want(enr, 200, "")
		answer := fmt.Sprintf(`{"mfa_token":%q,"otp":%q}`, tok, w.code(enr.body["secret"].(string)))

		db.breakSessions(t)
		if r := w.validate(answer); r.status != 500 {
			t.Fatalf("validate with sessions failing: %d %s, want 500", r.status, r.raw)
		}
		db.fixSessions(t)

		// Neither the mfa_token, nor the app's confirmation, nor the TOTP step was spent.
		res := w.validate(answer)
		w.authenticated(res)
		wantWorkingTokens(w.flowWorld, res)
	})
}

// TestPasswordResetIsAllOrNothing pins SECURITY-CHECKLIST I2: a reset sets the password, lifts
// the lock and ends every session in one commit. With the sessions' revocation failing, the
// reset fails whole: the old password and the session still work, and the link is not spent.
func TestPasswordResetIsAllOrNothing(t *testing.T) {
	eachFaultyDB(t, func(t *testing.T, db *faultyDB) {
		w := newPasswordWorld(t, db.st)
		const email, old, next = "ada@example.com", "correct horse battery staple", "a brand new passphrase"
		w.want(w.pw("signup", fmt.Sprintf(`{"email":%q,"password":%q}`, email, old)), 200, "")
		w.clock.Advance(time.Minute)
		session := w.login(email, old)
		w.want(session, 200, "")
		w.want(w.pw("reset/send", fmt.Sprintf(`{"email":%q,"redirect_url":"https://app.acme.test/done"}`, email)), 200, "")
		var tok string
		for _, m := range w.inbox(email) {
			if link := resetLinkRE.FindString(m["text"].(string)); link != "" {
				tok = strings.TrimPrefix(link, "https://app.acme.test/done?token=")
			}
		}
		if tok == "" {
			t.Fatal("no reset link was sent")
		}
		reset := fmt.Sprintf(`{"token":%q,"password":%q}`, tok, next)

		db.breakWrites(t, "UPDATE", "sessions")
		if r := w.pw("reset/verify", reset); r.status != 500 {
			t.Fatalf("reset with the sessions' revocation failing: %d %s, want 500", r.status, r.raw)
		}
		db.fixWrites(t, "sessions")

		w.want(w.call("GET", "/api/v1/auth/status", "", bearer(session.body["access_token"].(string))), 200, "")
		w.clock.Advance(time.Minute)
		w.want(w.login(email, old), 200, "")
		w.want(w.pw("reset/verify", reset), 200, "")
		w.want(w.call("GET", "/api/v1/auth/status", "", bearer(session.body["access_token"].(string))), 401, "")
		w.clock.Advance(time.Minute)
		w.want(w.login(email, next), 200, "")
	})
}
