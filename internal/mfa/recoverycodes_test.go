package mfa_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/mfa"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

const recoveryAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

var recoveryCodeForm = regexp.MustCompile(`^[` + recoveryAlphabet + `]{4}-[` + recoveryAlphabet + `]{4}-[` + recoveryAlphabet + `]{4}$`)

// recordingStore is the real store that also keeps every set of codes handed to
// ReplaceRecoveryCodes, so that a test can look at exactly what was written.
type recordingStore struct {
	*sqlstore.Store
	mu   sync.Mutex
	sets [][]store.RecoveryCode
}

func (r *recordingStore) ReplaceRecoveryCodes(ctx context.Context, projectID, userID string, codes []store.RecoveryCode) error {
	r.mu.Lock()
	r.sets = append(r.sets, codes)
	r.mu.Unlock()
	return r.Store.ReplaceRecoveryCodes(ctx, projectID, userID, codes)
}

func (r *recordingStore) lastSet() []store.RecoveryCode {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sets[len(r.sets)-1]
}

type recoveryEnv struct {
	st      *recordingStore
	svc     *mfa.RecoveryCodes
	clock   *testclock.Clock
	project store.Project
	user    store.User
}

func newRecoveryEnv(t *testing.T, st *sqlstore.Store) *recoveryEnv {
	t.Helper()
	e := &recoveryEnv{st: &recordingStore{Store: st}, clock: testclock.New(t0)}
	e.svc = mfa.NewRecoveryCodes(mfa.RecoveryCodesDeps{Store: e.st, Now: e.clock.Now, Rand: rand.Reader, IDs: ident.NewGenerator()})
	e.project = newProject(t, st)
	e.user = newUser(t, st, e.project.ID)
	return e
}

func (e *recoveryEnv) generate(t *testing.T, userID string) []string {
	t.Helper()
	codes, err := e.svc.Generate(t.Context(), e.project.ID, userID)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return codes
}

func (e *recoveryEnv) wantRemaining(t *testing.T, userID string, want int, what string) {
	t.Helper()
	n, err := e.svc.Remaining(t.Context(), e.project.ID, userID)
	if err != nil || n != want {
		t.Errorf("Remaining %s = %d, %v; want %d", what, n, err, want)
	}
}

// usedEvents returns the user's mfa.recovery_code_used events, newest first.
func (e *recoveryEnv) usedEvents(t *testing.T, userID string) []store.AuditEvent {
	t.Helper()
	events, err := e.st.ListAuditEvents(t.Context(), e.project.ID, store.AuditFilter{Type: mfa.AuditRecoveryCodeUsed, UserID: userID}, 100, "")
	if err != nil {
		t.Fatalf("ListAuditEvents: %v", err)
	}
	return events
}

func TestRecoveryCodesGenerate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newRecoveryEnv(t, st)
		ctx := t.Context()
		codes := e.generate(t, e.user.ID)
		if len(codes) != 10 || mfa.RecoveryCodeCount != 10 {
			t.Fatalf("Generate made %d codes, want 10", len(codes))
		}
		seen := map[string]bool{}
		for _, c := range codes {
			if !recoveryCodeForm.MatchString(c) {
				t.Errorf("code %q is not XXXX-XXXX-XXXX over %s", c, recoveryAlphabet)
			}
			if seen[c] {
				t.Errorf("code %q appears twice", c)
			}
			seen[c] = true
		}
		e.wantRemaining(t, e.user.ID, 10, "after Generate")

		// Every character of the alphabet turns up (none is unreachable) and no other does.
		chars := map[rune]bool{}
		for range 20 {
			for _, c := range e.generate(t, e.user.ID) {
				for _, r := range strings.ReplaceAll(c, "-", "") {
					chars[r] = true
				}
			}
		}
		for _, r := range recoveryAlphabet {
			if !chars[r] {
				t.Errorf("no code of 20 sets holds %q", r)
			}
		}
		if len(chars) != len(recoveryAlphabet) {
			t.Errorf("the codes use %d characters, want the %d of the alphabet", len(chars), len(recoveryAlphabet))
		}

		// The codes are not stored in clear: no stored field holds a code, in any form.
		codes = e.generate(t, e.user.ID)
		set := e.st.lastSet()
		if len(set) != len(codes) {
			t.Fatalf("Generate stored %d codes, showed %d", len(set), len(codes))
		}
		for _, rc := range set {
			for _, c := range codes {
				for _, form := range []string{c, strings.ReplaceAll(c, "-", ""), strings.ToLower(c)} {
					if bytes.Contains(rc.Hash, []byte(form)) || strings.Contains(rc.ID+rc.ProjectID+rc.UserID, form) {
						t.Errorf("stored recovery code %s holds the code %q in clear", rc.ID, c)
					}
				}
			}
			if len(rc.Hash) != 32 {
				t.Errorf("stored hash of %d bytes, want a SHA-256", len(rc.Hash))
			}
		}
		// Read a row back, every column, through the store: the code is not in it either. (This
		// spends the code, so the service then refuses it.)
		row, err := st.UseRecoveryCode(ctx, e.project.ID, e.user.ID, set[0].Hash, t0)
		if err != nil {
			t.Fatalf("UseRecoveryCode with the stored hash: %v", err)
		}
		for _, c := range codes {
			bare := strings.ReplaceAll(c, "-", "")
			if bytes.Contains(row.Hash, []byte(bare)) || strings.Contains(row.ID+row.ProjectID+row.UserID, bare) {
				t.Errorf("the stored row holds the code %q", c)
			}
		}
		wantFailure(t, e.svc.Use(ctx, e.project.ID, e.user.ID, codes[0]), "invalid_recovery_code", "Use of a code spent through the store")

		_, err = e.svc.Generate(ctx, e.project.ID, "no-such-user")
		wantFailure(t, err, "user_not_found", "Generate for an unknown user")
		_, err = e.svc.Generate(ctx, newProject(t, st).ID, e.user.ID)
		wantFailure(t, err, "user_not_found", "Generate through another project")
		e.wantRemaining(t, e.user.ID, 9, "after refused Generates")
	})
}

// patternReader yields, for each character, three bytes that must be rejected (255, 254, 248:
// at or above 8×31) and then the next index into the alphabet.
type patternReader struct{ n int }

func (p *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		if p.n%4 < 3 {
			b[i] = []byte{255, 254, 248}[p.n%4]
		} else {
			b[i] = byte(p.n / 4 % 31)
		}
		p.n++
	}
	return len(b), nil
}

// TestRecoveryCodesRejectionSampling checks that bytes that would bias the choice are thrown
// away rather than reduced modulo 31 (255 % 31 would be '9').
func TestRecoveryCodesRejectionSampling(t *testing.T) {
	st := testdb.SQLite(t)
	p := newProject(t, st)
	u := newUser(t, st, p.ID)
	svc := mfa.NewRecoveryCodes(mfa.RecoveryCodesDeps{Store: st, Now: func() time.Time { return t0 }, Rand: &patternReader{}})
	codes, err := svc.Generate(t.Context(), p.ID, u.ID)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if codes[0] != "2345-6789-ABCD" || codes[1] != "EFGH-JKMN-PQRS" {
		t.Errorf("Generate with rejected bytes between alphabet indexes 0, 1, 2, ... = %v; want 2345-6789-ABCD, EFGH-JKMN-PQRS, ...", codes[:2])
	}
}

func TestRecoveryCodesUse(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newRecoveryEnv(t, st)
		ctx := t.Context()
		codes := e.generate(t, e.user.ID)
		other := newUser(t, st, e.project.ID)
		otherCodes := e.generate(t, other.ID)

		// Another user's code, or the user's code through another user or project, is refused.
		wantFailure(t, e.svc.Use(ctx, e.project.ID, e.user.ID, otherCodes[0]), "invalid_recovery_code", "Use of another user's code")
		wantFailure(t, e.svc.Use(ctx, e.project.ID, other.ID, codes[0]), "invalid_recovery_code", "Use through another user")
		wantFailure(t, e.svc.Use(ctx, newProject(t, st).ID, e.user.ID, codes[0]), "invalid_recovery_code", "Use through another project")
		for _, bad := range []string{"", "2345-6789-ABC", "2345-6789-ABCDE", "0OIL-2345-6789", "2345_6789_ABCD", "2345-6789-ABCé"} {
			wantFailure(t, e.svc.Use(ctx, e.project.ID, e.user.ID, bad), "invalid_recovery_code", "Use of "+bad)
		}
		e.wantRemaining(t, e.user.ID, 10, "after refused uses")
		e.wantRemaining(t, other.ID, 10, "of the other user after refused uses")
		if ev := e.usedEvents(t, e.user.ID); len(ev) != 0 {
			t.Errorf("%d audit events after refused uses, want 0", len(ev))
		}

		// Each code works once, typed as people type it back.
		typed := func(i int, c string) string {
			switch i % 4 {
			case 1:
				return strings.ToLower(c)
			case 2:
				return strings.ReplaceAll(c, "-", "")
			case 3:
				return " " + strings.ReplaceAll(strings.ToLower(c), "-", " ") + "\t"
			}
			return c
		}
		for i, c := range codes {
			e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
			if err := e.svc.Use(ctx, e.project.ID, e.user.ID, typed(i, c)); err != nil {
				t.Fatalf("Use of code %d as %q: %v", i, typed(i, c), err)
			}
			wantFailure(t, e.svc.Use(ctx, e.project.ID, e.user.ID, c), "invalid_recovery_code", "Use of a code twice")
			wantFailure(t, e.svc.Use(ctx, e.project.ID, e.user.ID, typed(i+1, c)), "invalid_recovery_code", "Use of a code twice, typed otherwise")
			e.wantRemaining(t, e.user.ID, 9-i, "after a use")
		}
		e.wantRemaining(t, other.ID, 10, "of the other user")

		// One audit event per use, with the count left after it.
		events := e.usedEvents(t, e.user.ID)
		if len(events) != len(codes) {
			t.Fatalf("%d %s events, want one per use (%d)", len(events), mfa.AuditRecoveryCodeUsed, len(codes))
		}
		// Ids made within one second are in random order, so events are matched by their time:
		// the use at minute i left 9-i codes.
		seen := map[int]bool{}
		for _, ev := range events {
			r, ok := ev.Detail["remaining"].(float64)
			if !ok || r < 0 || r > 9 || seen[int(r)] {
				t.Errorf("event %s: remaining %v, want each of 0..9 once", ev.ID, ev.Detail["remaining"])
				continue
			}
			seen[int(r)] = true
			if want := t0.Add(time.Duration(9-int(r)) * time.Minute); !ev.CreatedAt.Equal(want) {
				t.Errorf("event with remaining %d at %v, want %v (the use that left %d)", int(r), ev.CreatedAt, want, int(r))
			}
			if ev.UserID != e.user.ID || ev.ProjectID != e.project.ID || ev.Detail["recovery_code_id"] == nil || ev.Detail["recovery_code_id"] == "" {
				t.Errorf("event %s: user %q project %q detail %v; want the user's, with the code's id", ev.ID, ev.UserID, ev.ProjectID, ev.Detail)
			}
		}
	})
}

func TestRecoveryCodesNewSetVoidsOld(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newRecoveryEnv(t, st)
		ctx := t.Context()
		old := e.generate(t, e.user.ID)
		if err := e.svc.Use(ctx, e.project.ID, e.user.ID, old[0]); err != nil {
			t.Fatalf("Use: %v", err)
		}
		fresh := e.generate(t, e.user.ID)
		e.wantRemaining(t, e.user.ID, 10, "after a new set")
		for i, c := range old {
			wantFailure(t, e.svc.Use(ctx, e.project.ID, e.user.ID, c), "invalid_recovery_code", "Use of old code "+string(rune('0'+i)))
		}
		for i, c := range fresh {
			if err := e.svc.Use(ctx, e.project.ID, e.user.ID, c); err != nil {
				t.Errorf("Use of new code %d: %v", i, err)
			}
		}
		e.wantRemaining(t, e.user.ID, 0, "after every new code was used")
	})
}

func TestRecoveryCodesUseRace(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newRecoveryEnv(t, st)
		code := e.generate(t, e.user.ID)[0]

		checkOneWins(t, 50, "invalid_recovery_code", func() error { return e.svc.Use(t.Context(), e.project.ID, e.user.ID, code) })
		e.wantRemaining(t, e.user.ID, 9, "after the race")
		if ev := e.usedEvents(t, e.user.ID); len(ev) != 1 {
			t.Errorf("%d audit events after the race, want 1 (the winner's)", len(ev))
		}
	})
}
