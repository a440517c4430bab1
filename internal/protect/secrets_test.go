package protect_test

import (
	"context"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

type ipKey struct{}

func fromIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, ipKey{}, ip)
}

// TestSecretsThrottleWrongSecretsPerIP checks client secrets through the real project service:
// one IP's wrong secrets for a client id are counted, and past the project's IP limit that IP
// is refused even with the right secret, before any lookup; other IPs are not.
func TestSecretsThrottleWrongSecretsPerIP(t *testing.T) {
	st := testdb.SQLite(t)
	projects := project.New(project.Deps{Store: st})
	issued, err := projects.Create(t.Context(), project.NewProject{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	engine := protect.New(protect.Deps{Store: st, Settings: func(store.Project) (project.Settings, error) {
		return project.DecodeSettings([]byte(`{"protect":{"ip_failures_per_hour":10}}`))
	}})
	s := protect.Secrets{Authenticator: projects, Engine: engine, IP: func(ctx context.Context) string {
		ip, _ := ctx.Value(ipKey{}).(string)
		return ip
	}}
	clientID := issued.Project.ClientID
	attacker, other := fromIP(t.Context(), "203.0.113.40"), fromIP(t.Context(), "198.51.100.40")
	wantCode := func(err error, code string) {
		t.Helper()
		if fe, ok := failure.As(err); !ok || fe.Code != code {
			t.Fatalf("got %v, want %s", err, code)
		}
	}

	wantCode(func() error { _, err := s.AuthenticateSecret(attacker, "cli_nobody", issued.ClientSecret); return err }(), "invalid_client")
	for range 10 {
		_, err := s.AuthenticateSecret(attacker, clientID, "sk_0000000000000000000000000000000000000000000")
		wantCode(err, "invalid_client")
	}
	_, err = s.AuthenticateSecret(attacker, clientID, issued.ClientSecret)
	wantCode(err, "ip_throttled")
	if !protect.IsRefusal(err) {
		t.Errorf("ip_throttled is not a refusal: %v", err)
	}
	if p, err := s.AuthenticateSecret(other, clientID, issued.ClientSecret); err != nil || p.ID != issued.Project.ID {
		t.Errorf("another IP with the right secret: %v, %v", p.ID, err)
	}
	// Without a client id there is no project to count against: the secret is checked as is.
	if p, err := s.AuthenticateSecret(attacker, "", issued.ClientSecret); err != nil || p.ID != issued.Project.ID {
		t.Errorf("secret without a client id: %v, %v", p.ID, err)
	}
	if p, err := s.ProjectByClientID(attacker, clientID); err != nil || p.ID != issued.Project.ID {
		t.Errorf("ProjectByClientID: %v, %v", p.ID, err)
	}
}
