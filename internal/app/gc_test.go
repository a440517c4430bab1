package app_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// TestSweepCollectsOnTheServersClock: the sweeper keeps a live session's spent refresh tokens
// (a replay of one must still end the session) and deletes the family once the session has
// ended and its retention has passed, by the server's clock, not the wall clock.
func TestSweepCollectsOnTheServersClock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		w := newTokenWorld(t, st)
		p, err := st.GetProject(t.Context(), w.proj.Project.ID)
		if err != nil {
			t.Fatal(err)
		}
		first := w.login().Tokens
		second, err := w.a.Sessions().Refresh(t.Context(), p, first.RefreshToken, audit.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(6 * 24 * time.Hour) // within the 7-day idle timeout
		third, err := w.a.Sessions().Refresh(t.Context(), p, second.RefreshToken, audit.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := w.a.Sweep(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got.Sessions != 0 || got.RefreshTokens != 0 {
			t.Fatalf("Sweep of a live session deleted %+v", got)
		}

		// Unused, the session ends 7 days after its last refresh, and stays for its retention.
		w.clock.Advance(7*24*time.Hour + store.DefaultRetention.Sessions - time.Hour)
		if got, err = w.a.Sweep(t.Context()); err != nil || got.Sessions != 0 {
			t.Fatalf("Sweep within the retention = %+v, %v; want the session kept", got, err)
		}
		w.clock.Advance(2 * time.Hour)
		if got, err = w.a.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got.Sessions != 1 || got.RefreshTokens != 3 {
			t.Errorf("Sweep past the retention = %+v, want the session and its 3 refresh tokens", got)
		}
		if _, err := st.GetSession(t.Context(), p.ID, third.Session.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSession after the sweep: %v, want ErrNotFound", err)
		}
		_, err = w.a.Sessions().Refresh(t.Context(), p, third.RefreshToken, audit.Meta{})
		if e, ok := errors.AsType[*failure.Error](err); !ok || e.Code != "invalid_grant" {
			t.Errorf("Refresh with a collected token: %v, want invalid_grant", err)
		}
	})
}

// BenchmarkRefreshGarbage shows that the database stays bounded under a steady refresh load:
// a client refreshes every 5 minutes of the server's clock and logs in anew every 200
// refreshes (its old session then goes idle), while the sweeper runs every 10 minutes. It
// reports the SQLite file's size after a checkpoint, and the refresh tokens left, after N
// refreshes. Run it with
//
//	go test -run '^$' -bench RefreshGarbage -benchtime 1x ./internal/app
func BenchmarkRefreshGarbage(b *testing.B) {
	for _, n := range []int{10_000, 50_000} {
		for _, gc := range []bool{true, false} {
			b.Run(fmt.Sprintf("refreshes=%d/gc=%v", n, gc), func(b *testing.B) {
				for b.Loop() {
					size, tokens := refreshLoad(b, n, gc)
					b.ReportMetric(float64(size), "db-bytes")
					b.ReportMetric(float64(tokens), "refresh-tokens")
				}
			})
		}
	}
}

// refreshLoad runs n refreshes on a new SQLite database and returns its size and row count.
func refreshLoad(b *testing.B, n int, gc bool) (int64, int) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "latchkey.db")
	st, err := sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a, err := app.NewWithStore(st, app.WithClock(clock.Now))
	if err != nil {
		b.Fatal(err)
	}
	issued, err := a.Projects().Create(ctx, project.NewProject{Name: "GC"})
	if err != nil {
		b.Fatal(err)
	}
	email := "ada@example.com"
	u, err := a.Directory().CreateUser(ctx, audit.Actor{Kind: audit.ActorCLI}, issued.Project.ID, directory.UserInput{Email: &email})
	if err != nil {
		b.Fatal(err)
	}
	p, err := st.GetProject(ctx, issued.Project.ID)
	if err != nil {
		b.Fatal(err)
	}
	var refresh string
	for i := range n {
		if i%200 == 0 {
			r, err := a.Login().Complete(ctx, login.Request{Project: p, UserID: u.ID, ConnectionType: login.EmailOTP,
				AMR: []string{"otp"}})
			if err != nil {
				b.Fatal(err)
			}
			refresh = r.Tokens.RefreshToken
		}
		tok, err := a.Sessions().Refresh(ctx, p, refresh, audit.Meta{})
		if err != nil {
			b.Fatal(err)
		}
		refresh = tok.RefreshToken
		clock.Advance(5 * time.Minute)
		if gc && i%2 == 1 {
			if _, err := a.Sweep(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	// A second connection checkpoints the WAL into the file, so the file's size is the data's.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	var tokens int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM refresh_tokens`).Scan(&tokens); err != nil {
		b.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return info.Size(), tokens
}
