package app_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestPoisonedBodiesAreRefused: a body the store would keep but could not read back (a number
// beyond float64, a document deeper than the bound), or one whose meaning depends on which of
// two keys encoding/json lets win, is refused with 400 invalid_request naming the value, on every
// route that stores client JSON, and changes nothing.
func TestPoisonedBodiesAreRefused(t *testing.T) {
	deep := `{"a":` + strings.Repeat(`[`, 32) + strings.Repeat(`]`, 32) + `}`
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newWorld(t, st)
		f := w.newFixture()
		for _, c := range []struct {
			name, method, path, body, field string
		}{
			{"create: number beyond float64", "POST", "/api/v1/users", `{"email":"p1@example.com","raw_attributes":{"n":1e999999}}`, "raw_attributes.n"},
			{"create: huge negative in a list", "POST", "/api/v1/users", `{"email":"p2@example.com","raw_attributes":{"l":[1,-2E+309]}}`, "raw_attributes.l[1]"},
			{"create: nested too deep", "POST", "/api/v1/users", `{"email":"p3@example.com","raw_attributes":` + deep + `}`, "raw_attributes.a" + strings.Repeat("[0]", 30)},
			{"create: case-variant emails", "POST", "/api/v1/users", `{"email":"p4@example.com","EMAIL":"victim@example.com"}`, "EMAIL"},
			{"create: duplicate email", "POST", "/api/v1/users", `{"email":"p5@example.com","email":"p6@example.com"}`, "email"},
			{"create: PascalCase alias twice", "POST", "/api/v1/organization", `{"name":"One","Name":"Two"}`, "Name"},
			{"update: number beyond float64", "PUT", "/api/v1/users/" + f.user, `{"raw_attributes":{"n":1e999999}}`, "raw_attributes.n"},
			{"update: duplicate in raw_attributes", "PUT", "/api/v1/users/" + f.user, `{"raw_attributes":{"team":"a","Team":"b"}}`, "raw_attributes.Team"},
			{"update: case-variant email", "PUT", "/api/v1/users/" + f.user, `{"Email":"x@example.com","email":"y@example.com"}`, "email"},
			{"organization: duplicate domains key", "PUT", "/api/v1/organization/" + f.org, `{"WhiteListDomains":["a.example"],"whitelistdomains":["b.example"]}`, "whitelistdomains"},
			{"settings: nested case variant", "PATCH", "/api/v1/project", `{"settings":{"protect":{"lock_after":5,"LOCK_AFTER":1000}}}`, "settings.protect.LOCK_AFTER"},
			{"settings: number beyond float64", "PATCH", "/api/v1/project", `{"settings":{"protect":{"lock_after":1e400}}}`, "settings.protect.lock_after"},
			{"template: duplicate subject", "PUT", "/api/v1/templates/email-otp", `{"subject":"a","Subject":"b","text":"{{.Code}}"}`, "Subject"},
			{"role: case-variant name", "POST", "/api/v1/roles", `{"name":"R","NAME":"S"}`, "NAME"},
		} {
			t.Run(c.name, func(t *testing.T) {
				w := w.with(t)
				before := w.snapshot(f)
				status, got := w.do(c.method, c.path, c.body, w.a)
				code, field := errorOf(status, got)
				if status != 400 || code != "invalid_request" || field != c.field {
					t.Errorf("%s %s %s = %d %s (field %q), want 400 invalid_request naming %q; body %s",
						c.method, c.path, c.body, status, code, field, c.field, mustJSON(t, got))
				}
				if after := w.snapshot(f); after != before {
					t.Errorf("the refused request changed the project's data:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
		// The bound is the documented 32 levels: a body of exactly 32 is stored and reads back.
		ok := `{"email":"deep@example.com","raw_attributes":{"a":` + strings.Repeat(`[`, 30) + strings.Repeat(`]`, 30) + `}}`
		id := field[string](t, w.okJSON("POST", "/api/v1/users", ok), "id")
		w.okJSON("GET", "/api/v1/users/"+id, "")
	})
}

// TestPoisonedRowStillReads puts into the database, behind the server's back, the row a
// version without the write checks would have stored: raw_attributes {"n": 1e999999}. Reading
// that user, the whole list, updating the user and signing in to the address all still work
// (the document reads as empty and the next update replaces it), and the other users in the
// list are intact.
func TestPoisonedRowStillReads(t *testing.T) {
	eachFaultyDB(t, func(t *testing.T, f *faultyDB) {
		st, db := f.st, f.raw
		w := newFlowWorld(t, st, app.WithDev(true))
		admin := w.secret()
		admin["Content-Type"] = "application/json"
		var ids []string
		for i := range 3 {
			r := w.call("POST", "/api/v1/users", fmt.Sprintf(`{"email":"row%d@example.com","raw_attributes":{"i":%d}}`, i, i), admin)
			w.want(r, 201, "")
			ids = append(ids, r.body["id"].(string))
		}
		poisoned := ids[1]
		res, err := db.ExecContext(t.Context(), `UPDATE users SET raw_attributes = '{"n": 1e999999}' WHERE id = $1`, poisoned)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("poisoned %d rows", n)
		}

		r := w.call("GET", "/api/v1/users/"+poisoned, "", admin)
		w.want(r, 200, "")
		if attrs, _ := r.body["raw_attributes"].(map[string]any); attrs == nil || len(attrs) != 0 {
			t.Errorf("poisoned user's raw_attributes = %v, want {}", r.body["raw_attributes"])
		}
		r = w.call("GET", "/api/v1/users?limit=100", "", admin)
		w.want(r, 200, "")
		users := r.body["users"].([]any)
		if len(users) != 3 {
			t.Fatalf("list = %d users, want 3: %s", len(users), r.raw)
		}
		for _, u := range users {
			u := u.(map[string]any)
			attrs := u["raw_attributes"].(map[string]any)
			i := slices.Index(ids, u["id"].(string))
			if want := map[string]any{"i": float64(i)}; i == 1 && len(attrs) != 0 || i != 1 && !maps.Equal(attrs, want) {
				t.Errorf("user %d's raw_attributes in the list = %v", i, attrs)
			}
		}
		w.want(w.call("GET", "/api/v1/users/row1@example.com/email", "", admin), 200, "")

		// A sign-in to the address works end to end.
		s := w.post("email-otp/send", `{"email":"row1@example.com"}`)
		w.want(s, 200, "")
		v := w.post("email-otp/verify", fmt.Sprintf(`{"state":%q,"otp":%q}`, s.body["state"], w.lastCode("row1@example.com")))
		w.want(v, 200, "")

		// An update replaces the unreadable document with a readable one.
		w.want(w.call("PUT", "/api/v1/users/"+poisoned, `{"raw_attributes":{"fixed":true}}`, admin), 200, "")
		var stored string
		if err := db.QueryRowContext(t.Context(), `SELECT raw_attributes FROM users WHERE id = $1`, poisoned).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != `{"fixed":true}` {
			t.Errorf("stored raw_attributes after the update = %s", stored)
		}
	})
}
