package token_test

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// TestFirstKeyIsCreatedOnce starts many concurrent first signings of a project on two key
// managers (two instances) sharing a database: they must agree on one key.
func TestFirstKeyIsCreatedOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		ring := newRing(t)
		managers := []*token.KeyManager{
			token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: ring}),
			token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: ring}),
		}
		const n = 20
		kids := make([]string, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				k, err := managers[i%2].Signer(e.ctx, e.project.ID, token.ES256)
				if err != nil {
					t.Error(err)
					return
				}
				kids[i] = k.ID
			})
		}
		close(start)
		wg.Wait()
		for i, kid := range kids {
			if kid != kids[0] {
				t.Fatalf("signer %d got key %s, signer 0 got %s: two first keys", i, kid, kids[0])
			}
		}
		recs, err := st.ListSigningKeys(e.ctx, e.project.ID, time.Now())
		if err != nil || len(recs) != 1 {
			t.Fatalf("the project has %d keys (%v), want 1", len(recs), err)
		}
		// The private key is stored sealed, never in the clear.
		if der, err := ring.Open(recs[0].PrivateKey, []byte("wrong aad")); err == nil || len(der) > 0 {
			t.Error("the sealed key opens without its project and kid as associated data")
		}
	})
}

// TestUnknownKidReloadsOnce checks that an instance finds a key another instance created
// after it cached the project's keys, without waiting for its cache to expire, while unknown
// kids cost at most one read of the keys a second.
func TestUnknownKidReloadsOnce(t *testing.T) {
	st := testdb.SQLite(t)
	e := newEnv(t, st)
	ring := newRing(t)
	one := token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: ring, Now: e.clock.Now})
	two := token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: ring, Now: e.clock.Now})
	first, err := one.Signer(e.ctx, e.project.ID, token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := one.KeySet(e.project.ID).PublicKey(e.ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second) // within the 30s cache, past the once-a-second reload limit
	rotated, err := two.Rotate(e.ctx, audit.Actor{Kind: audit.ActorCLI, ID: "ops"}, e.project.ID, token.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := one.KeySet(e.project.ID).PublicKey(e.ctx, rotated.ID); err != nil {
		t.Fatalf("instance one does not find the key instance two just made: %v", err)
	}
	if _, err := one.KeySet(e.project.ID).PublicKey(e.ctx, "no-such-kid"); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("unknown kid: err = %v, want ErrUnknownKey", err)
	}
}

// failingAudit is a store whose audit writes fail, inside transactions too.
type failingAudit struct{ store.Store }

var errAudit = errors.New("audit write failed")

func (failingAudit) AddAuditEvent(context.Context, store.AuditEvent) error { return errAudit }

func (f failingAudit) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	return f.Store.InTx(ctx, func(tx store.Store) error { return fn(failingAudit{tx}) })
}

// TestRotationIsAudited checks that a rotation writes its event with the new key, in one
// commit, and that a rotation the server makes itself names the system as its actor.
func TestRotationIsAudited(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		ring := newRing(t)
		rotations := func() []store.AuditEvent {
			es, err := st.ListAuditEvents(e.ctx, e.project.ID, store.AuditFilter{Type: token.EventSigningKeyRotated}, 10, "")
			if err != nil {
				t.Fatal(err)
			}
			return es
		}
		keys := token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: ring, Now: e.clock.Now})
		first, err := keys.Signer(e.ctx, e.project.ID, token.ES256)
		if err != nil {
			t.Fatal(err)
		}

		// The event cannot be written: no key is made.
		failing := token.NewKeyManager(token.KeyManagerDeps{Store: failingAudit{st}, Sealer: ring, Now: e.clock.Now})
		if _, err := failing.Rotate(e.ctx, audit.Actor{Kind: audit.ActorCLI}, e.project.ID, token.ES256, 0); !errors.Is(err, errAudit) {
			t.Fatalf("Rotate = %v, want the audit error", err)
		}
		if recs, _ := st.ListSigningKeys(e.ctx, e.project.ID, e.clock.Now()); len(recs) != 1 || recs[0].RetiresAt != nil {
			t.Fatalf("a rotation without its event left keys %+v", recs)
		}
		if es := rotations(); len(es) != 0 {
			t.Fatalf("%d rotation events after a failed rotation", len(es))
		}

		// A new algorithm makes the server rotate on its own.
		if _, err := keys.Signer(e.ctx, e.project.ID, token.EdDSA); err != nil {
			t.Fatal(err)
		}
		es := rotations()
		if len(es) != 1 {
			t.Fatalf("%d rotation events, want 1", len(es))
		}
		a, _ := es[0].Detail["actor"].(map[string]any)
		kids, _ := es[0].Detail["retired_kids"].([]any)
		if a["kind"] != audit.ActorSystem || es[0].Detail["algorithm"] != "EdDSA" || len(kids) != 1 || kids[0] != first.ID {
			t.Errorf("system rotation event = %+v", es[0])
		}
	})
}

// TestJWKSDocumentsAgreeAcrossInstances: two instances reading the same keys render the same
// bytes with the same ETag, so a client's If-None-Match holds on whichever instance answers;
// the union holds the project's key, and a new key changes the tag.
func TestJWKSDocumentsAgreeAcrossInstances(t *testing.T) {
	st := testdb.SQLite(t)
	e := newEnv(t, st)
	ring := newRing(t)
	a := token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: ring})
	b := token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: ring})
	if _, err := a.Signer(e.ctx, e.project.ID, token.EdDSA); err != nil {
		t.Fatal(err)
	}
	docs := map[string][]token.KeySetDocument{}
	for _, m := range []*token.KeyManager{a, b} {
		p, err := m.ProjectJWKS(e.ctx, e.project.ID)
		if err != nil {
			t.Fatal(err)
		}
		u, err := m.UnionJWKS(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		docs["project"] = append(docs["project"], p)
		docs["union"] = append(docs["union"], u)
	}
	for name, d := range docs {
		if string(d[0].Body) != string(d[1].Body) || d[0].ETag != d[1].ETag || d[0].ETag == "" {
			t.Errorf("%s: the instances disagree: %q %s / %q %s", name, d[0].ETag, d[0].Body, d[1].ETag, d[1].Body)
		}
	}
	// The only project's set and the union hold the same key.
	if string(docs["project"][0].Body) != string(docs["union"][0].Body) {
		t.Errorf("union %s, want the only project's set %s", docs["union"][0].Body, docs["project"][0].Body)
	}
	if _, err := a.Rotate(e.ctx, audit.Actor{Kind: audit.ActorCLI}, e.project.ID, token.EdDSA, time.Minute); err != nil {
		t.Fatal(err)
	}
	u, err := a.UnionJWKS(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.ETag == docs["union"][0].ETag {
		t.Error("a rotation left the union's ETag unchanged")
	}
}

// TestJWKSUnderConcurrentRotation reads both documents from many goroutines while keys rotate
// (run with -race): each answer is a whole, parseable set with a tag of its own bytes. The
// cache lasts a nanosecond of real time here so that nearly every call reloads, racing the
// cache's writers against its readers.
func TestJWKSUnderConcurrentRotation(t *testing.T) {
	st := testdb.SQLite(t)
	e := newEnv(t, st)
	ring := newRing(t)
	m := token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: ring, CacheTTL: time.Nanosecond})
	if _, err := m.Signer(e.ctx, e.project.ID, token.ES256); err != nil {
		t.Fatal(err)
	}
	tags := sync.Map{} // ETag -> body
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				var d token.KeySetDocument
				var err error
				if i%2 == 0 {
					d, err = m.UnionJWKS(e.ctx)
				} else {
					d, err = m.ProjectJWKS(e.ctx, e.project.ID)
				}
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := jwk.Parse(d.Body); err != nil {
					t.Errorf("a torn set: %v", err)
				}
				if prev, loaded := tags.LoadOrStore(d.ETag, string(d.Body)); loaded && prev != string(d.Body) {
					t.Errorf("ETag %s names two bodies", d.ETag)
				}
			}
		})
	}
	for range 3 {
		if _, err := m.Rotate(e.ctx, audit.Actor{Kind: audit.ActorCLI}, e.project.ID, token.ES256, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// newRing is a key ring of one fresh master key, for a test's key managers.
func newRing(t *testing.T) *secretbox.Keyring {
	t.Helper()
	key, err := secretbox.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secretbox.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}
