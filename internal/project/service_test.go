package project_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

func newService(st store.Store, c *testclock.Clock) *project.Service {
	dir := directory.New(directory.Deps{Store: st, Now: c.Now})
	return project.New(project.Deps{Store: st, SeedRoles: dir.SeedRoles, Now: c.Now})
}

func newClock() *testclock.Clock { return testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }

func wantFailure(t *testing.T, err error, kind failure.Kind, code string) *failure.Error {
	t.Helper()
	fe, ok := failure.As(err)
	if !ok || fe.Kind != kind || fe.Code != code {
		t.Fatalf("error = %v, want %s (kind %d)", err, code, kind)
	}
	return fe
}

var (
	clientIDRE = regexp.MustCompile(`^cli_[0-9a-f]{24}$`)
	secretRE   = regexp.MustCompile(`^sk_[A-Za-z0-9_-]{43}$`)
)

func TestCreateAndAuthenticate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		svc := newService(st, newClock())

		a, err := svc.Create(ctx, project.NewProject{Name: " Acme ", AllowedOrigins: []string{"https://app.acme.example/"},
			RedirectURIs: []string{"https://app.acme.example/callback"}})
		if err != nil {
			t.Fatal(err)
		}
		if !clientIDRE.MatchString(a.Project.ClientID) || !secretRE.MatchString(a.ClientSecret) {
			t.Fatalf("client id %q / secret %q have the wrong form", a.Project.ClientID, a.ClientSecret)
		}
		if a.Project.Name != "Acme" || a.Secret.Hint != a.ClientSecret[len(a.ClientSecret)-4:] {
			t.Errorf("project %+v, hint %q", a.Project, a.Secret.Hint)
		}

		// Only the SHA-256 of the secret is stored.
		sum := sha256.Sum256([]byte(a.ClientSecret))
		rec, err := st.FindProjectSecret(ctx, sum[:])
		if err != nil || rec.ProjectID != a.Project.ID {
			t.Fatalf("stored secret: %+v, %v", rec, err)
		}

		v, err := svc.Get(ctx, a.Project.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.Settings.AllowedOrigins, []string{"https://app.acme.example"}) ||
			!slices.Equal(v.Settings.RedirectURIs, []string{"https://app.acme.example/callback"}) {
			t.Errorf("settings: %+v", v.Settings)
		}
		if len(v.Secrets) != 1 || v.Secrets[0].ID != a.Secret.ID {
			t.Errorf("secrets: %+v", v.Secrets)
		}

		roles, err := st.ListRoles(ctx, a.Project.ID, store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var slugs []string
		for _, r := range roles {
			slugs = append(slugs, r.Slug)
		}
		slices.Sort(slugs)
		if !slices.Equal(slugs, []string{"admin", "developer", "owner"}) {
			t.Errorf("seeded roles = %v", slugs)
		}

		for _, clientID := range []string{"", a.Project.ClientID} {
			p, err := svc.AuthenticateSecret(ctx, clientID, a.ClientSecret)
			if err != nil || p.ID != a.Project.ID {
				t.Fatalf("AuthenticateSecret(%q) = %+v, %v", clientID, p, err)
			}
		}
		for _, bad := range []string{"sk_wrong", "nope", a.ClientSecret + "x", ""} {
			_, err := svc.AuthenticateSecret(ctx, "", bad)
			wantFailure(t, err, failure.Unauthenticated, "invalid_client")
		}

		b, err := svc.Create(ctx, project.NewProject{Name: "Other"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.AuthenticateSecret(ctx, a.Project.ClientID, b.ClientSecret)
		wantFailure(t, err, failure.Forbidden, "client_secret_mismatch")

		p, err := svc.ProjectByClientID(ctx, b.Project.ClientID)
		if err != nil || p.ID != b.Project.ID {
			t.Fatalf("ProjectByClientID = %+v, %v", p, err)
		}
		for _, unknown := range []string{"cli_000000000000000000000000", "garbage", ""} {
			_, err = svc.ProjectByClientID(ctx, unknown)
			wantFailure(t, err, failure.Unauthenticated, "invalid_client")
		}
	})
}

func TestCreateRefusesBadInput(t *testing.T) {
	svc := newService(testdb.SQLite(t), newClock())
	ctx := context.Background()

	_, err := svc.Create(ctx, project.NewProject{Name: "  "})
	wantFailure(t, err, failure.Invalid, "invalid_request")

	_, err = svc.Create(ctx, project.NewProject{Name: "X", AllowedOrigins: []string{"http://app.example.com"}})
	fe := wantFailure(t, err, failure.Invalid, "invalid_setting")
	if fe.Field != "allowed_origins[0]" {
		t.Errorf("field = %q", fe.Field)
	}
}

func TestCreateIsOneTransaction(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		boom := errors.New("seeding failed")
		svc := project.New(project.Deps{Store: st, SeedRoles: func(ctx context.Context, tx store.Store, projectID string) error {
			return boom
		}})
		if _, err := svc.Create(ctx, project.NewProject{Name: "Half"}); !errors.Is(err, boom) {
			t.Fatalf("Create = %v, want the seeding error", err)
		}
		ps, err := st.ListProjects(ctx)
		if err != nil || len(ps) != 0 {
			t.Fatalf("a failed Create left projects behind: %+v, %v", ps, err)
		}
	})
}

func TestRotateSecret(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		c := newClock()
		svc := newService(st, c)
		first, err := svc.Create(ctx, project.NewProject{Name: "Rotating"})
		if err != nil {
			t.Fatal(err)
		}
		clientID := first.Project.ClientID

		// Grace 0: the old secret stops working at once.
		second, err := svc.RotateSecret(ctx, operator, clientID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if second.ClientSecret == first.ClientSecret || !secretRE.MatchString(second.ClientSecret) {
			t.Fatalf("new secret %q", second.ClientSecret)
		}
		_, err = svc.AuthenticateSecret(ctx, clientID, first.ClientSecret)
		wantFailure(t, err, failure.Unauthenticated, "invalid_client")
		if _, err := svc.AuthenticateSecret(ctx, clientID, second.ClientSecret); err != nil {
			t.Fatalf("new secret refused: %v", err)
		}

		// Grace 1h: both work until the hour is over.
		third, err := svc.RotateSecret(ctx, operator, clientID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{second.ClientSecret, third.ClientSecret} {
			if _, err := svc.AuthenticateSecret(ctx, clientID, s); err != nil {
				t.Fatalf("secret refused within the grace period: %v", err)
			}
		}
		v, err := svc.GetByClientID(ctx, clientID)
		if err != nil || len(v.Secrets) != 2 {
			t.Fatalf("view within grace: %+v, %v", v.Secrets, err)
		}
		for _, s := range v.Secrets {
			if retiring := s.ID == second.Secret.ID; retiring != (s.ExpiresAt != nil) {
				t.Errorf("secret %+v: only the rotated-out secret should expire", s)
			}
		}

		c.Advance(time.Hour)
		_, err = svc.AuthenticateSecret(ctx, clientID, second.ClientSecret)
		wantFailure(t, err, failure.Unauthenticated, "invalid_client")
		if _, err := svc.AuthenticateSecret(ctx, clientID, third.ClientSecret); err != nil {
			t.Fatalf("newest secret refused: %v", err)
		}
		if v, _ := svc.GetByClientID(ctx, clientID); len(v.Secrets) != 1 || v.Secrets[0].ID != third.Secret.ID {
			t.Errorf("view after grace lists %+v", v.Secrets)
		}

		_, err = svc.RotateSecret(ctx, operator, clientID, 31*24*time.Hour)
		wantFailure(t, err, failure.Invalid, "invalid_request")
		_, err = svc.RotateSecret(ctx, operator, "cli_000000000000000000000000", 0)
		wantFailure(t, err, failure.NotFound, "project_not_found")
	})
}

func TestBootstrapCreatesDefaultOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		const starts = 8
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created []project.Issued
		)
		for range starts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A service per goroutine, as separate processes would have.
				issued, ok, err := newService(st, newClock()).Bootstrap(ctx)
				if err != nil {
					t.Errorf("Bootstrap: %v", err)
					return
				}
				if ok {
					mu.Lock()
					created = append(created, issued)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(created) != 1 {
			t.Fatalf("%d of %d concurrent starts created the Default project", len(created), starts)
		}
		ps, err := st.ListProjects(ctx)
		if err != nil || len(ps) != 1 || ps[0].Name != project.DefaultProjectName {
			t.Fatalf("projects after bootstrap: %+v, %v", ps, err)
		}
		svc := newService(st, newClock())
		if _, err := svc.AuthenticateSecret(ctx, "", created[0].ClientSecret); err != nil {
			t.Errorf("bootstrap secret refused: %v", err)
		}
		if _, ok, err := svc.Bootstrap(ctx); ok || err != nil {
			t.Errorf("a later start bootstrapped again: %v, %v", ok, err)
		}
	})
}

func TestBootstrapAfterCLICreatedAProject(t *testing.T) {
	st := testdb.SQLite(t)
	ctx := context.Background()
	svc := newService(st, newClock())
	if _, err := svc.Create(ctx, project.NewProject{Name: "Made first"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := svc.Bootstrap(ctx); ok || err != nil {
		t.Fatalf("Bootstrap with a project present = %v, %v; want nothing created", ok, err)
	}
	if ps, _ := st.ListProjects(ctx); len(ps) != 1 {
		t.Fatalf("projects: %+v", ps)
	}
}

func TestUpdate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		c := newClock()
		svc := newService(st, c)
		p, err := svc.Create(ctx, project.NewProject{Name: "Before"})
		if err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Minute)
		name := "After"
		v, err := svc.Update(ctx, operator, p.Project.ID, project.Update{Name: &name,
			Settings: []byte(`{"codes":{"length":8},"login_methods":{"password":true}}`)})
		if err != nil {
			t.Fatal(err)
		}
		if v.Project.Name != "After" || v.Settings.Codes.Length != 8 || !v.Settings.LoginMethods.Password ||
			!v.Settings.LoginMethods.Passkey || !v.Project.UpdatedAt.After(v.Project.CreatedAt) {
			t.Fatalf("updated view %+v", v)
		}
		again, err := svc.Get(ctx, p.Project.ID)
		if err != nil || again.Settings.Codes.Length != 8 || again.Project.Name != "After" {
			t.Fatalf("update not stored: %+v, %v", again, err)
		}

		// A bad setting changes nothing, not even the name given with it.
		other := "Ignored"
		_, err = svc.Update(ctx, operator, p.Project.ID, project.Update{Name: &other,
			Settings: []byte(`{"tokens":{"access_token_ttl_seconds":5},"codes":{"length":2}}`)})
		fe := wantFailure(t, err, failure.Invalid, "invalid_setting")
		if fe.Field != "tokens.access_token_ttl_seconds" ||
			fe.Description != "tokens.access_token_ttl_seconds: must be between 60 and 86400; codes.length: must be between 6 and 8" {
			t.Errorf("error field %q, description %q", fe.Field, fe.Description)
		}
		_, err = svc.Update(ctx, operator, p.Project.ID, project.Update{Settings: []byte(`{"codes":{"lenght":6}}`)})
		if fe := wantFailure(t, err, failure.Invalid, "invalid_setting"); fe.Field != "codes.lenght" {
			t.Errorf("unknown key error names %q", fe.Field)
		}
		after, _ := svc.Get(ctx, p.Project.ID)
		if after.Project.Name != "After" || after.Settings.Tokens.AccessTokenTTLSeconds != 900 {
			t.Errorf("a refused update changed the project: %+v", after)
		}

		_, err = svc.Update(ctx, operator, "000000000000000000000000", project.Update{Name: &name})
		wantFailure(t, err, failure.NotFound, "project_not_found")
	})
}

func TestConcurrentUpdatesKeepEveryChange(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		svc := newService(st, newClock())
		ctx := context.Background()
		issued, err := svc.Create(ctx, project.NewProject{Name: "Race"})
		if err != nil {
			t.Fatal(err)
		}
		name := "Renamed"
		updates := []project.Update{
			{Name: &name},
			{Settings: []byte(`{"branding":{"display_name":"Acme"}}`)},
			{Settings: []byte(`{"codes":{"length":8}}`)},
			{Settings: []byte(`{"tokens":{"access_token_ttl_seconds":600}}`)},
			{Settings: []byte(`{"magic_link":{"ttl_seconds":1200}}`)},
			{Settings: []byte(`{"allow_signup":false}`)},
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, u := range updates {
			wg.Go(func() {
				<-start
				if _, err := svc.Update(ctx, operator, issued.Project.ID, u); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		v, err := svc.Get(ctx, issued.Project.ID)
		if err != nil {
			t.Fatal(err)
		}
		s := v.Settings
		if v.Project.Name != name || s.Branding.DisplayName != "Acme" || s.Codes.Length != 8 ||
			s.Tokens.AccessTokenTTLSeconds != 600 || s.MagicLink.TTLSeconds != 1200 || s.AllowSignup {
			t.Errorf("after %d concurrent updates: name %q, settings %+v; some update was lost", len(updates), v.Project.Name, s)
		}
	})
}
