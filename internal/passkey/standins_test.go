package passkey

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// shapeOf is what login options show of their credentials besides the id bytes: per
// credential, the id's length and the transports.
func shapeOf(t *testing.T, o Options) string {
	t.Helper()
	b, err := json.Marshal(o.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var pk struct {
		AllowCredentials []struct {
			Type       string   `json:"type"`
			ID         string   `json:"id"`
			Transports []string `json:"transports"`
		} `json:"allowCredentials"`
	}
	if err := json.Unmarshal(b, &pk); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, c := range pk.AllowCredentials {
		raw, err := base64.RawURLEncoding.DecodeString(c.ID)
		if err != nil {
			t.Fatalf("credential id %q: %v", c.ID, err)
		}
		parts = append(parts, fmt.Sprintf("%s:%d:%s", c.Type, len(raw), strings.Join(c.Transports, "+")))
	}
	return strings.Join(parts, " ")
}

// TestStandInsLookLikeTheProjectsCredentials: the options for an identifier without passkeys
// list as many credentials, with ids of the same lengths and the same transports, as some real
// user's options do; before, they were always 16 or 15 bytes with [hybrid, internal] and told
// unknown identifiers apart in a project whose passkeys look otherwise.
func TestStandInsLookLikeTheProjectsCredentials(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := t.Context()
		ids := ident.NewGenerator()
		now := time.Now().UTC().Truncate(time.Microsecond)
		p := store.Project{ID: ids.New(), ClientID: "cli_" + ids.New(), Name: "Shapes", Settings: []byte(`{}`), CreatedAt: now, UpdatedAt: now}
		if err := st.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
		svc, err := New(Deps{Store: st, Settings: func(p store.Project) (project.Settings, error) { return project.DecodeSettings(p.Settings) },
			PublicURL: "https://auth.example.com", EnumerationKey: []byte("a fixed key, so the draw is fixed")})
		if err != nil {
			t.Fatal(err)
		}
		random := func(n int) []byte {
			b := make([]byte, n)
			rand.Read(b)
			return b
		}
		// Three users with the credentials of real authenticators: a Windows Hello key, a
		// security key and a phone, one user with no passkey.
		creds := map[string][]store.Passkey{
			"hello@example.com": {{CredentialID: random(32), Transports: []string{"internal"}}},
			"keys@example.com": {{CredentialID: random(64), Transports: []string{"nfc", "usb"}},
				{CredentialID: random(20), Transports: []string{"hybrid", "internal"}}},
			"phone@example.com": {{CredentialID: random(16), Transports: []string{}}},
			"none@example.com":  nil,
		}
		for email, pks := range creds {
			u := store.User{ID: ids.New(), ProjectID: p.ID, Email: email, Active: true, ConnectionType: "ManualUser",
				Groups: []string{}, RawAttributes: map[string]any{}, CreatedAt: now, UpdatedAt: now}
			if err := st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			if len(pks) == 0 {
				continue
			}
			if _, err := st.EnsurePasskeyHandle(ctx, p.ID, u.ID, random(32)); err != nil {
				t.Fatal(err)
			}
			for i, pk := range pks {
				pk.ID, pk.ProjectID, pk.UserID, pk.PublicKey, pk.AAGUID = ids.New(), p.ID, u.ID, random(77), random(16)
				pk.CreatedAt, pk.UpdatedAt = now.Add(time.Duration(i)*time.Second), now
				if err := st.CreatePasskey(ctx, pk); err != nil {
					t.Fatal(err)
				}
			}
		}
		real := map[string]bool{}
		for email, pks := range creds {
			if len(pks) == 0 {
				continue
			}
			o, err := svc.BeginLogin(ctx, p, email)
			if err != nil {
				t.Fatal(err)
			}
			real[shapeOf(t, o)] = true
		}
		if len(real) != 3 {
			t.Fatalf("real shapes %v", real)
		}
		drawn := map[string]int{}
		for i := range 60 {
			identifier := fmt.Sprintf("stranger-%d@example.com", i)
			if i == 0 {
				identifier = "none@example.com" // a user without passkeys looks the same
			}
			o, err := svc.BeginLogin(ctx, p, identifier)
			if err != nil {
				t.Fatal(err)
			}
			shape := shapeOf(t, o)
			if !real[shape] {
				t.Errorf("%s: stand-in options %q look like no user's (real ones: %v)", identifier, shape, slices.Sorted(maps.Keys(real)))
			}
			drawn[shape]++
			again, err := svc.BeginLogin(ctx, p, identifier)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := credentialIDs(t, o), credentialIDs(t, again); !slices.Equal(a, b) {
				t.Errorf("%s: stand-ins change between calls: %v then %v", identifier, a, b)
			}
		}
		if len(drawn) < 2 {
			t.Errorf("60 strangers all got the shape %v: stand-ins should follow the users' mix", drawn)
		}

		// Another user's new passkey moves few strangers to another model (about 1 in 4 here):
		// registering passkeys and watching an identifier's options tells little.
		before := map[string]string{}
		for i := range 60 {
			identifier := fmt.Sprintf("stranger-%d@example.com", i)
			o, err := svc.BeginLogin(ctx, p, identifier)
			if err != nil {
				t.Fatal(err)
			}
			before[identifier] = shapeOf(t, o)
		}
		newcomer := store.User{ID: ids.New(), ProjectID: p.ID, Email: "newcomer@example.com", Active: true, ConnectionType: "ManualUser",
			Groups: []string{}, RawAttributes: map[string]any{}, CreatedAt: now, UpdatedAt: now}
		if err := st.CreateUser(ctx, newcomer); err != nil {
			t.Fatal(err)
		}
		if err := st.CreatePasskey(ctx, store.Passkey{ID: ids.New(), ProjectID: p.ID, UserID: newcomer.ID, CredentialID: random(48),
			PublicKey: random(77), AAGUID: random(16), Transports: []string{"usb"}, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		moved := 0
		for identifier, shape := range before {
			o, err := svc.BeginLogin(ctx, p, identifier)
			if err != nil {
				t.Fatal(err)
			}
			if shapeOf(t, o) != shape {
				moved++
			}
		}
		if moved > 35 { // 15 expected; 35 is six standard deviations away
			t.Errorf("%d of 60 strangers' options changed when another user added a passkey", moved)
		}
	})
}

func credentialIDs(t *testing.T, o Options) []string {
	t.Helper()
	b, _ := json.Marshal(o.PublicKey)
	var pk struct {
		AllowCredentials []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
	}
	if err := json.Unmarshal(b, &pk); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range pk.AllowCredentials {
		out = append(out, c.ID)
	}
	return out
}
