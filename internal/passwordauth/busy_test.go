package passwordauth

import (
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/password"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// A login refused because every hashing slot is taken (server_busy) never compared the
// password, so it must not count as a failure: a burst of strangers' logins that the server
// cannot serve would otherwise spend the owner's budget.
func TestServerBusyTakesBackTheFailure(t *testing.T) {
	st := testdb.SQLite(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	p := store.Project{ID: "p1", ClientID: "cli_p1", Name: "Acme", Settings: []byte(`{"login_methods":{"password":true}}`),
		CreatedAt: now, UpdatedAt: now}
	if err := st.CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	settings := func(p store.Project) (project.Settings, error) { return project.DecodeSettings(p.Settings) }
	hasher, err := password.New(password.DefaultParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	engine := protect.New(protect.Deps{Store: st, Settings: settings, Now: clock})
	s := New(Deps{Store: st, Protect: engine, Hasher: hasher, Settings: settings, Now: clock, MaxHashes: 1})
	s.slots <- struct{}{} // the only slot is taken
	for range 3 {
		_, err := s.Login(t.Context(), p, "ada@example.com", "a guess", audit.Meta{IPAddress: "198.51.100.1"})
		if fe, ok := failure.As(err); !ok || fe.Code != "server_busy" {
			t.Fatalf("login with every slot taken: %v", err)
		}
	}
	cs, err := st.GetCounters(t.Context(), p.ID, []store.CounterKey{{Scope: "password:account", Key: "ada@example.com"},
		{Scope: "password:pair", Key: "ada@example.com|198.51.100.1"}, {Scope: "secret:ip", Key: "198.51.100.1"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Count != 0 {
			t.Errorf("%s counts %d failures after 3 server_busy answers, want 0", c.Scope, c.Count)
		}
	}
}
