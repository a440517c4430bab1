package notice_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/login/logintest"
	"github.com/latchkey-dev/latchkey/internal/notice"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

func TestNotify(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		s := logintest.New(t, st)
		ctx := t.Context()
		p := s.Project(t, `{"branding":{"display_name":"Acme Cloud"}}`)
		u := store.User{ID: ident.NewGenerator().New(), ProjectID: p.ID, Email: "ada@example.com"}

		if err := s.Notices.Notify(ctx, st, p, u, notice.PasskeyAdded); err != nil {
			t.Fatal(err)
		}
		msgs := s.Messages(t, u.Email)
		if len(msgs) != 1 {
			t.Fatalf("%d notices, want 1", len(msgs))
		}
		m := msgs[0]
		if m.Channel != string(notify.Email) || !strings.Contains(m.Text, notice.PasskeyAdded) || !strings.Contains(m.Text, "Acme Cloud") ||
			!strings.Contains(m.Text, "4 December 2026 at 12:00 UTC") {
			t.Errorf("notice %q to %s on %s", m.Text, m.Recipient, m.Channel)
		}
		if m.ExpiresAt == nil || !m.ExpiresAt.Equal(s.Clock.Now().Add(24*time.Hour)) {
			t.Errorf("notice expires at %v, want a day after it was made", m.ExpiresAt)
		}

		// A notice goes with the change's transaction: rolled back, it is never sent.
		rollback := errors.New("the change failed")
		err := st.InTx(ctx, func(tx store.Store) error {
			if err := s.Notices.Notify(ctx, tx, p, u, notice.PasswordChanged); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatal(err)
		}
		if n := len(s.Messages(t, u.Email)); n != 1 {
			t.Errorf("%d notices after a rolled-back change, want still 1", n)
		}

		// No email, or no email sender: no notice.
		phoneOnly := store.User{ID: ident.NewGenerator().New(), ProjectID: p.ID, Phone: "+14155550100"}
		if err := s.Notices.Notify(ctx, st, p, phoneOnly, notice.PasskeyAdded); err != nil {
			t.Fatal(err)
		}
		silent := notice.New(notice.Deps{Settings: s.Projects.Settings, Sealer: s.Ring, Now: s.Clock.Now,
			Delivery: func(notify.Channel) bool { return false }})
		if err := silent.Notify(ctx, st, p, u, notice.PasskeyRemoved); err != nil {
			t.Fatal(err)
		}
		rows, err := st.ListOutbox(ctx, 100)
		if err != nil || len(rows) != 1 {
			t.Errorf("outbox holds %d messages, %v; want only the first notice", len(rows), err)
		}
	})
}
