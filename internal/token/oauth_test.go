package token_test

import (
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// TestRevokeRefreshTokenEndsTheFamily checks that revoking a refresh token, even one already
// rotated away, ends its session once, as a revocation (session.revoked), not as reuse: it
// spends nothing and raises no refresh_token.reused alarm.
func TestRevokeRefreshTokenEndsTheFamily(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		first := e.login()
		e.clock.Advance(time.Minute)
		second, err := e.svc.Refresh(e.ctx, e.project, first.RefreshToken, audit.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if in, err := e.svc.Introspect(e.ctx, e.project, first.RefreshToken); err != nil || in.Active {
			t.Errorf("Introspect of a rotated-away refresh token = %+v, %v; want inactive", in, err)
		}
		if in, err := e.svc.Introspect(e.ctx, e.project, second.RefreshToken); err != nil || !in.Active || in.Type != token.TypeRefreshToken ||
			in.Session.ID != first.Session.ID {
			t.Errorf("Introspect of the live refresh token = %+v, %v", in, err)
		}

		ended, err := e.svc.RevokeRefreshToken(e.ctx, e.project, first.RefreshToken, audit.Meta{IPAddress: "192.0.2.9"})
		if err != nil || !ended {
			t.Fatalf("RevokeRefreshToken of the family's old token = %v, %v; want the session ended", ended, err)
		}
		if _, err := e.svc.Authenticate(e.ctx, e.project, second.AccessToken); err == nil {
			t.Error("the family's newest access token still works")
		}
		if in, err := e.svc.Introspect(e.ctx, e.project, second.RefreshToken); err != nil || in.Active {
			t.Errorf("Introspect of the family's refresh token after revocation = %+v, %v; want inactive", in, err)
		}
		again, err := e.svc.RevokeRefreshToken(e.ctx, e.project, second.RefreshToken, audit.Meta{})
		if err != nil || again {
			t.Errorf("RevokeRefreshToken of an ended family = %v, %v; want nothing ended, no error", again, err)
		}
		if ok, err := e.svc.RevokeRefreshToken(e.ctx, e.project, "rt_unknown", audit.Meta{}); err != nil || ok {
			t.Errorf("RevokeRefreshToken of an unknown token = %v, %v", ok, err)
		}

		events, err := st.ListAuditEvents(e.ctx, e.project.ID, store.AuditFilter{}, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		var revoked int
		for _, ev := range events {
			switch ev.Type {
			case "session.revoked":
				revoked++
				if ev.Detail["reason"] != token.ReasonRefreshTokenRevoked || ev.SessionID != first.Session.ID || ev.IPAddress != "192.0.2.9" {
					t.Errorf("session.revoked event = %+v", ev)
				}
			case "refresh_token.reused":
				t.Errorf("revocation was taken for reuse: %+v", ev)
			}
		}
		if revoked != 1 {
			t.Errorf("%d session.revoked events, want 1", revoked)
		}
	})
}
