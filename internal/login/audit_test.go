package login_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestLoginAuditEventNamesItsSession pins issue 13 §3: the login.succeeded event carries the id
// of the session the login started, the one in the tokens it issued.
func TestLoginAuditEventNamesItsSession(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		f := newFixture(t, st, nil)
		u := f.user(t, "sid@example.com")
		r, err := f.svc.Complete(f.ctx, login.Request{Project: f.project, UserID: u.ID, ConnectionType: login.EmailOTP,
			AMR: []string{"otp", "email"}, Meta: audit.Meta{IPAddress: "192.0.2.7"}})
		if err != nil {
			t.Fatal(err)
		}
		sid := accessTokenSID(t, r.Tokens.AccessToken)
		sessions, err := st.ListUserSessions(f.ctx, f.project.ID, u.ID, timeNow())
		if err != nil || len(sessions) != 1 || sessions[0].ID != sid {
			t.Fatalf("sessions = %+v, %v; want the one of sid %q", sessions, err, sid)
		}
		events, err := st.ListAuditEvents(f.ctx, f.project.ID, store.AuditFilter{Type: login.AuditSucceeded}, 10, "")
		if err != nil || len(events) != 1 {
			t.Fatalf("login.succeeded events = %+v, %v", events, err)
		}
		if events[0].SessionID != sid || events[0].UserID != u.ID {
			t.Errorf("login.succeeded has session %q and user %q, want session %q of user %q",
				events[0].SessionID, events[0].UserID, sid, u.ID)
		}
	})
}

// accessTokenSID reads the sid claim of a JWT without checking it (the service minted it).
func accessTokenSID(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.SID == "" {
		t.Fatalf("claims %s: %v (no sid)", raw, err)
	}
	return claims.SID
}
