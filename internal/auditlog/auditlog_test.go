package auditlog_test

import (
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/auditlog"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/login/logintest"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

func TestList(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := t.Context()
		ids := ident.NewGenerator()
		start := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
		var projects [2]string
		for i := range projects {
			projects[i] = ids.New()
			if err := st.CreateProject(ctx, store.Project{ID: projects[i], ClientID: "cli_" + projects[i], Name: "Log",
				Settings: []byte(`{}`), CreatedAt: start, UpdatedAt: start}); err != nil {
				t.Fatal(err)
			}
		}
		p, user := projects[0], ids.New()
		types := []string{"mfa.totp.reset", "mfa.recovery_code_used", "session.revoked_all", "user.created", "mfa.reset"}
		for i, typ := range types {
			e := store.AuditEvent{ID: ids.New(), ProjectID: p, Type: typ, CreatedAt: start.Add(time.Duration(i) * time.Minute)}
			if i%2 == 0 {
				e.UserID = user
			}
			if err := st.AddAuditEvent(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.AddAuditEvent(ctx, store.AuditEvent{ID: ids.New(), ProjectID: projects[1], Type: "mfa.reset", CreatedAt: start}); err != nil {
			t.Fatal(err)
		}
		svc := auditlog.Service{Store: st}
		typesOf := func(q auditlog.Query) []string {
			t.Helper()
			page, err := svc.List(ctx, p, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, e := range page.Events {
				out = append(out, e.Type)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			q    auditlog.Query
			want []string
		}{
			{"all, newest first", auditlog.Query{}, []string{"mfa.reset", "user.created", "session.revoked_all", "mfa.recovery_code_used", "mfa.totp.reset"}},
			{"a prefix", auditlog.Query{Type: "mfa."}, []string{"mfa.reset", "mfa.recovery_code_used", "mfa.totp.reset"}},
			{"an exact type", auditlog.Query{Type: " mfa.reset "}, []string{"mfa.reset"}},
			{"a user", auditlog.Query{UserID: user}, []string{"mfa.reset", "session.revoked_all", "mfa.totp.reset"}},
			{"a window", auditlog.Query{From: start.Add(time.Minute).Format(time.RFC3339), To: start.Add(3 * time.Minute).Format(time.RFC3339)},
				[]string{"session.revoked_all", "mfa.recovery_code_used"}},
		} {
			if got := typesOf(tc.q); len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) || got[len(got)-1] != tc.want[len(tc.want)-1] {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}

		// Pages of two, following the cursor, give every event once.
		var seen []string
		q := auditlog.Query{Limit: "2"}
		for range 4 {
			page, err := svc.List(ctx, p, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Events {
				seen = append(seen, e.Type)
			}
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
		if len(seen) != len(types) || seen[0] != "mfa.reset" || seen[len(seen)-1] != "mfa.totp.reset" {
			t.Errorf("paged through %v", seen)
		}

		for _, tc := range []struct {
			q           auditlog.Query
			code, field string
		}{
			{auditlog.Query{Type: "MFA Reset"}, "invalid_request", "type"},
			{auditlog.Query{UserID: "not-an-id"}, "invalid_request", "user_id"},
			{auditlog.Query{OrganizationID: "x"}, "invalid_request", "organization_id"},
			{auditlog.Query{From: "yesterday"}, "invalid_request", "from"},
			{auditlog.Query{From: start.Format(time.RFC3339), To: start.Format(time.RFC3339)}, "invalid_request", "to"},
			{auditlog.Query{Limit: "0"}, "invalid_limit", "limit"},
			{auditlog.Query{Limit: "101"}, "invalid_limit", "limit"},
			{auditlog.Query{Cursor: "%%"}, "invalid_cursor", "cursor"},
		} {
			_, err := svc.List(ctx, p, tc.q)
			logintest.WantCode(t, err, tc.code, tc.field)
		}
	})
}

func TestView(t *testing.T) {
	at := time.Date(2026, 12, 4, 12, 0, 0, 500, time.FixedZone("CET", 3600))
	v := auditlog.View(store.AuditEvent{ID: "e1", Type: "user.created", CreatedAt: at})
	if v.Detail == nil || len(v.Detail) != 0 {
		t.Errorf("detail of an event without one = %#v, want an empty object", v.Detail)
	}
	if v.CreatedAt != "2026-12-04T11:00:00.0000005Z" {
		t.Errorf("created_at = %q, want RFC 3339 in UTC with the fraction", v.CreatedAt)
	}
}
