package passwordless_test

import (
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestSecretsGoToTheStoredAddress: a send to a spelling of an account's address (ASCII case,
// the Unicode form of its domain, a trailing dot) makes a flow for that account whose message is
// addressed to the account's stored address, resends included; a Unicode look-alike reaches no
// account and, with sign-up on, is refused (400 invalid_email) rather than signed up.
func TestSecretsGoToTheStoredAddress(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := t.Context()
		ids := ident.NewGenerator()
		clock := time.Now().UTC().Truncate(time.Second)
		now := func() time.Time { return clock }
		p := store.Project{ID: ids.New(), ClientID: "cli_" + ids.New(), Name: "Dest",
			Settings: []byte(`{"protect":{"bot_check":"off","sends_per_destination_per_hour":1000}}`), CreatedAt: clock, UpdatedAt: clock}
		if err := st.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
		settings := func(p store.Project) (project.Settings, error) { return project.DecodeSettings(p.Settings) }
		key, err := secretbox.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		ring, err := secretbox.NewKeyring(key)
		if err != nil {
			t.Fatal(err)
		}
		svc := passwordless.New(passwordless.Deps{Store: st, Protect: protect.New(protect.Deps{Store: st, Settings: settings, Now: now}),
			Sealer: ring, Settings: settings, PublicURL: "https://auth.example.com", Now: now,
			Delivery: func(notify.Channel) bool { return true }})
		kim := store.User{ID: ids.New(), ProjectID: p.ID, Email: "kim@xn--bcher-kva.example", Active: true, ConnectionType: "ManualUser",
			Groups: []string{}, RawAttributes: map[string]any{}, CreatedAt: clock, UpdatedAt: clock}
		if err := st.CreateUser(ctx, kim); err != nil {
			t.Fatal(err)
		}
		recipients := func() map[string]int {
			ms, err := st.ListOutbox(ctx, 1000)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]int{}
			for _, m := range ms {
				out[m.Recipient]++
			}
			return out
		}
		sent := 0
		for _, variant := range []string{"KIM@xn--bcher-kva.example", "Kim@B\u00dcCHER.example", "kim@bu\u0308cher.example."} {
			for _, ch := range []passwordless.Channel{passwordless.EmailOTP, passwordless.MagicLink} {
				state, err := svc.Send(ctx, p, passwordless.SendRequest{Channel: ch, Destination: variant, IP: "192.0.2.1"})
				if err != nil {
					t.Fatalf("send to %q: %v", variant, err)
				}
				f, err := st.GetFlow(ctx, p.ID, state)
				if err != nil {
					t.Fatal(err)
				}
				if f.UserID != kim.ID || f.Destination != kim.Email {
					t.Errorf("%+q: flow for %q at %q, want kim at %q", variant, f.UserID, f.Destination, kim.Email)
				}
				sent++
				if ch == passwordless.EmailOTP {
					clock = clock.Add(passwordless.ResendInterval)
					if err := svc.Resend(ctx, p, []passwordless.Channel{ch}, state, "192.0.2.1"); err != nil {
						t.Fatalf("resend: %v", err)
					}
					sent++
				}
			}
		}
		if got := recipients(); len(got) != 1 || got[kim.Email] != sent {
			t.Errorf("messages by recipient %v, want %d to %s", got, sent, kim.Email)
		}
		for _, l := range []string{"\u212aim@xn--bcher-kva.example", "k\u0131m@b\u00fccher.example", "\uff4bim@b\u00fccher.example"} {
			_, err := svc.Send(ctx, p, passwordless.SendRequest{Channel: passwordless.EmailOTP, Destination: l, IP: "192.0.2.1"})
			if fe, ok := failure.As(err); !ok || fe.Code != "invalid_email" || fe.Field != "email" {
				t.Errorf("send to the look-alike %+q: %v, want invalid_email", l, err)
			}
		}
		if got := recipients(); len(got) != 1 || got[kim.Email] != sent {
			t.Errorf("after the look-alikes, messages by recipient %v", got)
		}
	})
}
