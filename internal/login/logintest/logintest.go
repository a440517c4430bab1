// Package logintest builds, on one real store, the services every login method stands on —
// projects, the directory, signing keys and sessions, attack protection, the MFA policy and
// login itself — wired as internal/app wires them, so that each login method's own tests run
// its flows without the HTTP server.
package logintest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/mfa"
	"github.com/latchkey-dev/latchkey/internal/notice"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/outbox"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// Issuer is the public URL the stack's tokens and links name.
const Issuer = "https://auth.example.com"

// Stack is the services a login method needs, on one store and one clock.
type Stack struct {
	// Store is the concrete store the tests made (testdb): only internal/app holds the whole
	// store.Store interface.
	Store     *sqlstore.Store
	Clock     *testclock.Clock
	Ring      *secretbox.Keyring
	Projects  *project.Service
	Directory *directory.Service
	Sessions  *token.Service
	Protect   *protect.Engine
	MFATokens *mfa.Tokens // the mfa_tokens the login's MFA policy issues
	Login     *login.Service
	Notices   *notice.Notifier
}

// New wires the stack on st, with a clock standing at a fixed instant.
func New(t testing.TB, st *sqlstore.Store) *Stack {
	t.Helper()
	s := &Stack{Store: st, Clock: testclock.New(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))}
	var err error
	if s.Ring, err = secretbox.NewKeyring([]byte("logintest master key, 32 bytes!!")); err != nil {
		t.Fatal(err)
	}
	now := s.Clock.Now
	s.Directory = directory.New(directory.Deps{Store: st, Now: now})
	s.Projects = project.New(project.Deps{Store: st, SeedRoles: s.Directory.SeedRoles, Now: now})
	keys := token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: s.Ring, Now: now})
	s.Sessions = token.NewService(token.ServiceDeps{Store: st, Projects: s.Projects, Keys: keys, Access: s.Directory,
		Policy: s.policy, Issuer: Issuer, Now: now})
	s.Protect = protect.New(protect.Deps{Store: st, Settings: s.Projects.Settings, Now: now,
		DeviceKey: []byte("logintest device key, 32 bytes!!")})
	s.MFATokens = mfa.NewTokens(mfa.TokensDeps{Store: st, Now: now})
	s.Login = login.New(login.Deps{Store: st, Sessions: s.Sessions, Users: s.Directory, Guard: s.Protect, Now: now,
		MFA: mfa.NewPolicy(mfa.PolicyDeps{Settings: s.Projects.Settings, Tokens: s.MFATokens})})
	s.Notices = notice.New(notice.Deps{Settings: s.Projects.Settings, Sealer: s.Ring, Delivery: Delivery, Now: now})
	return s
}

// Delivery says every channel has a sender, as a server in dev mode does.
func Delivery(notify.Channel) bool { return true }

// policy is one token policy for every project: the login methods' tests do not turn on the
// token settings, whose reading internal/app owns and tests.
func (s *Stack) policy(store.Project) (token.Policy, error) {
	return token.Policy{Algorithm: token.ES256, AccessTTL: 15 * time.Minute, RefreshTTL: 30 * 24 * time.Hour,
		IdleTimeout: 7 * 24 * time.Hour, AbsoluteTimeout: 30 * 24 * time.Hour}, nil
}

// Project creates a project whose settings are settings (a JSON object; "" for the defaults)
// and returns it as a request would read it.
func (s *Stack) Project(t testing.TB, settings string) store.Project {
	t.Helper()
	issued, err := s.Projects.Create(t.Context(), project.NewProject{Name: "Acme", RedirectURIs: []string{"https://app.acme.test/done"}})
	if err != nil {
		t.Fatal(err)
	}
	p := issued.Project
	// Merged onto the defaults as a PATCH of the project's settings is.
	if settings != "" {
		if _, err := s.Projects.Update(t.Context(), audit.Actor{Kind: audit.ActorCLI}, p.ID, project.Update{Settings: []byte(settings)}); err != nil {
			t.Fatal(err)
		}
	}
	p, err = s.Store.GetProject(t.Context(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Message is a queued message as its recipient would read it.
type Message struct {
	store.OutboxMessage
	outbox.Content
}

// Messages returns the messages queued for recipient, newest first, opened.
func (s *Stack) Messages(t testing.TB, recipient string) []Message {
	t.Helper()
	rows, err := s.Store.ListOutbox(t.Context(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []Message
	for _, r := range rows {
		if r.Recipient != recipient {
			continue
		}
		plain, err := s.Ring.Open(r.Payload, outbox.AAD(r.ID))
		if err != nil {
			t.Fatalf("open message %s: %v", r.ID, err)
		}
		m := Message{OutboxMessage: r}
		if err := json.Unmarshal(plain, &m.Content); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// WantCode fails the test unless err is a typed failure with this code (and, when field is not
// "", this field).
func WantCode(t testing.TB, err error, code, field string) {
	t.Helper()
	if fe, ok := failure.As(err); !ok || fe.Code != code || (field != "" && fe.Field != field) {
		t.Fatalf("err = %v, want %s (field %q)", err, code, field)
	}
}
