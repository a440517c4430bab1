package token_test

import (
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testdb"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// TestFirstKeyIsCreatedOnce starts many concurrent first signings of a project on two key
// managers (two instances) sharing a database: they must agree on one key.
func TestFirstKeyIsCreatedOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st)
		key, _ := secretbox.GenerateKey(rand.Reader)
		ring, err := secretbox.NewKeyring(key)
		if err != nil {
			t.Fatal(err)
		}
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
	key, _ := secretbox.GenerateKey(rand.Reader)
	ring, err := secretbox.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
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
	rotated, err := two.Rotate(e.ctx, e.project.ID, token.ES256, 0)
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
