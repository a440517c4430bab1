package protect_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/testclock"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

type env struct {
	t       *testing.T
	engine  *protect.Engine
	clock   *testclock.Clock
	project store.Project
}

func newEnv(t *testing.T, st *sqlstore.Store, protectSettings string) *env {
	t.Helper()
	c := testclock.New(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	id := ident.NewGenerator().New()
	p := store.Project{ID: id, ClientID: "cli_" + id, Name: "Acme", Settings: []byte(`{"protect":` + protectSettings + `}`),
		CreatedAt: c.Now(), UpdatedAt: c.Now()}
	if err := st.CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	e := protect.New(protect.Deps{Store: st, Now: c.Now, Settings: func(p store.Project) (project.Settings, error) {
		return project.DecodeSettings(p.Settings)
	}, DeviceKey: []byte("0123456789abcdef0123456789abcdef")})
	return &env{t: t, engine: e, clock: c, project: p}
}

// fail runs an attempt that fails (the secret was wrong), returning Begin's refusal if any.
func (e *env) fail(account, ip string) error {
	e.t.Helper()
	_, err := e.engine.Begin(e.t.Context(), protect.Guard{Project: e.project, Kind: "password", Account: account, IP: ip})
	return err
}

func (e *env) succeed(account, ip string) error {
	e.t.Helper()
	return e.succeedWith(protect.Guard{Project: e.project, Kind: "password", Account: account, IP: ip})
}

func (e *env) succeedWith(g protect.Guard) error {
	e.t.Helper()
	a, err := e.engine.Begin(e.t.Context(), g)
	if err != nil {
		return err
	}
	if err := a.Succeed(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	return nil
}

// refused checks that err is the refusal code with a Retry-After within [lo, hi].
func refused(t *testing.T, err error, code string, lo, hi time.Duration) {
	t.Helper()
	fe, ok := failure.As(err)
	if !ok || fe.Code != code || fe.RetryAfter < lo || fe.RetryAfter > hi {
		t.Fatalf("got %v (retry after %v), want %s with Retry-After in [%v, %v]", err, retryAfter(err), code, lo, hi)
	}
}

func retryAfter(err error) time.Duration {
	if fe, ok := failure.As(err); ok {
		return fe.RetryAfter
	}
	return 0
}

func TestProgressiveDelayThenPairLock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{}`) // defaults: slow after 3, lock after 10 for 15 minutes
		const ada, attacker, owner = "ada@example.com", "203.0.113.7", "198.51.100.1"
		for range 3 {
			if err := e.fail(ada, attacker); err != nil {
				t.Fatal(err)
			}
		}
		// From the fourth, each failure must wait longer: 1 s, 2 s, 4 s, ...
		refused(t, e.fail(ada, attacker), "too_many_attempts", time.Second, time.Second)
		for _, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
			e.clock.Advance(wait - time.Millisecond)
			refused(t, e.fail(ada, attacker), "too_many_attempts", time.Millisecond, time.Millisecond)
			e.clock.Advance(time.Millisecond)
			if err := e.fail(ada, attacker); err != nil {
				t.Fatalf("after waiting %v: %v", wait, err)
			}
		}
		// That was the tenth: the pair is locked for 15 minutes, even with the right secret.
		e.clock.Advance(time.Minute)
		refused(t, e.succeed(ada, attacker), "account_locked", 14*time.Minute, 14*time.Minute)
		// The lock is an audit event, in the transaction that set it.
		events, err := st.ListAuditEvents(t.Context(), e.project.ID, store.AuditFilter{Type: protect.AuditLocked}, 10, "")
		if err != nil || len(events) != 1 || events[0].Detail["scope"] != "ip" || events[0].IPAddress != attacker ||
			events[0].Detail["account"] != ada || events[0].Detail["kind"] != "password" {
			t.Errorf("lock events = %+v, %v", events, err)
		}
		// The owner, from another IP, is not locked out, and a success ends the owner's run.
		if err := e.succeed(ada, owner); err != nil {
			t.Fatalf("owner from another IP: %v", err)
		}
		e.clock.Advance(14 * time.Minute)
		if err := e.succeed(ada, attacker); err != nil {
			t.Fatalf("after the lock: %v", err)
		}
		// A success ended the pair's run: three more failures go through at once.
		for range 3 {
			if err := e.fail(ada, attacker); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// Failures spread over many IPs lock the account for lock_seconds at a time, never for good:
// strangers can fill that count without the owner's part (issue 13 §2). The owner's device
// token is not subject to the account-wide lock at all.
func TestSpreadFailuresNeverHardLock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{"slow_after":10,"lock_after":10,"account_lock_after":50}`)
		const ada = "ada@example.com"
		device, err := e.engine.IssueDevice(e.project, ada)
		if err != nil || device == "" {
			t.Fatalf("IssueDevice = %q, %v", device, err)
		}
		ip := func(i int) string { return fmt.Sprintf("198.51.%d.%d", i/200, i%200) }
		for i := range 50 {
			if err := e.fail(ada, ip(i)); err != nil {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		// Fifty failures from fifty IPs lock the account itself for 15 minutes...
		refused(t, e.fail(ada, "192.0.2.1"), "account_locked", 15*time.Minute, 15*time.Minute)
		// ... but not the owner's device.
		if err := e.succeedWith(protect.Guard{Project: e.project, Kind: "password", Account: ada, IP: "192.0.2.1", Device: device}); err != nil {
			t.Fatalf("the owner's device during the account lock: %v", err)
		}
		// A token of another account, or a forged one, is no way around the lock.
		other, _ := e.engine.IssueDevice(e.project, "bob@example.com")
		for _, tok := range []string{other, device[:len(device)-2] + "AA", "lkd1.x.y"} {
			_, err := e.engine.Begin(t.Context(), protect.Guard{Project: e.project, Kind: "password", Account: ada, IP: "192.0.2.1", Device: tok})
			refused(t, err, "account_locked", time.Minute, 15*time.Minute)
		}
		// Three hundred failures from 300 IPs, waiting out each account lock: never a hard lock.
		for i := 50; i < 300; i++ {
			if i%50 == 0 {
				e.clock.Advance(15 * time.Minute)
			}
			if err := e.fail(ada, ip(i)); err != nil {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		e.clock.Advance(15 * time.Minute)
		if err := e.succeed(ada, "192.0.2.1"); err != nil {
			t.Fatalf("the owner from a new IP after 300 spread failures and the lock's end: %v", err)
		}
		if events, err := st.ListAuditEvents(t.Context(), e.project.ID, store.AuditFilter{Type: protect.AuditHardLocked}, 10, ""); err != nil || len(events) != 0 {
			t.Errorf("hard-lock events = %+v, %v", events, err)
		}
	})
}

// A hundred consecutive failures from one IP hard-lock that (account, IP) pair until the owner
// unlocks it (NIST SP 800-63B's limit); the owner elsewhere is unaffected.
func TestPairHardLock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{"slow_after":100,"lock_after":100,"account_lock_after":100,"ip_failures_per_hour":1000}`)
		const ada, attacker = "ada@example.com", "203.0.113.9"
		for i := range project.HardLockAfter {
			if i > 0 && i%50 == 0 {
				e.clock.Advance(16 * time.Minute) // wait out the account-wide lock
			}
			if err := e.fail(ada, attacker); err != nil {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		e.clock.Advance(30 * 24 * time.Hour)
		err := e.succeed(ada, attacker)
		if fe, ok := failure.As(err); !ok || fe.Code != "account_locked" || fe.RetryAfter != 0 {
			t.Fatalf("the attacker's IP after 100 failures and 30 days: %v", err)
		}
		if locked, err := e.engine.Locked(t.Context(), protect.Guard{Project: e.project, Kind: "password", Account: ada, IP: attacker}); err != nil || !locked {
			t.Errorf("Locked = %v, %v", locked, err)
		}
		if err := e.succeed(ada, "192.0.2.1"); err != nil {
			t.Errorf("the owner from their own IP: %v", err)
		}
		if err := e.engine.Unlock(t.Context(), protect.Guard{Project: e.project, Kind: "password", Account: ada, IP: attacker}); err != nil {
			t.Fatal(err)
		}
		if err := e.succeed(ada, attacker); err != nil {
			t.Errorf("after Unlock: %v", err)
		}
	})
}

// An attempt refused before its secret was looked at (server_busy) takes its failure back,
// and the lock it started with it.
func TestCancelTakesBackTheFailure(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{"slow_after":3,"lock_after":3,"account_lock_after":3}`)
		const ada, ip = "ada@example.com", "198.51.100.4"
		for range 20 {
			a, err := e.engine.Begin(t.Context(), protect.Guard{Project: e.project, Kind: "password", Account: ada, IP: ip})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Cancel(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		cs, err := st.GetCounters(t.Context(), e.project.ID, []store.CounterKey{{Scope: "password:account", Key: ada},
			{Scope: "password:pair", Key: ada + "|" + ip}, {Scope: "secret:ip", Key: ip}}, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Count != 0 || c.LockedUntil != nil {
				t.Errorf("%s after 20 cancelled attempts: count %d, locked until %v", c.Scope, c.Count, c.LockedUntil)
			}
		}
	})
}

// The owner is told once per lock that their account is being attacked, in the lock's
// transaction.
func TestAlertOncePerLock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{"slow_after":10,"lock_after":10,"account_lock_after":10}`)
		var alerts []string
		e.engine = protect.New(protect.Deps{Store: st, Now: e.clock.Now, Settings: func(p store.Project) (project.Settings, error) {
			return project.DecodeSettings(p.Settings)
		}, Alert: func(_ context.Context, _ store.Store, _ store.Project, kind, account string) error {
			alerts = append(alerts, kind+" "+account)
			return nil
		}})
		for i := range 40 {
			_ = e.fail("ada@example.com", fmt.Sprintf("198.51.100.%d", i))
		}
		if len(alerts) != 1 || alerts[0] != "password ada@example.com" {
			t.Fatalf("alerts within one lock = %v", alerts)
		}
		e.clock.Advance(15 * time.Minute)
		for i := range 10 {
			_ = e.fail("ada@example.com", fmt.Sprintf("198.51.101.%d", i))
		}
		if len(alerts) != 2 {
			t.Errorf("alerts after a second lock = %v", alerts)
		}
	})
}

func TestIPVelocityAcrossAccounts(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{"ip_failures_per_hour":100,"allow_cidrs":["10.0.0.0/8"],"block_cidrs":["192.0.2.0/24"]}`)
		const stuffer = "203.0.113.9"
		for i := range 100 {
			if err := e.fail(fmt.Sprintf("user%d@example.com", i), stuffer); err != nil {
				t.Fatalf("account %d: %v", i, err)
			}
		}
		refused(t, e.fail("user100@example.com", stuffer), "ip_throttled", 59*time.Minute, time.Hour)
		if events, err := st.ListAuditEvents(t.Context(), e.project.ID, store.AuditFilter{Type: protect.AuditThrottled}, 10, ""); err != nil ||
			len(events) != 1 || events[0].IPAddress != stuffer {
			t.Errorf("throttle events = %+v, %v", events, err)
		}
		// IPv6 addresses count by /64: rotating within one is still one IP.
		for i := range 100 {
			if err := e.fail(fmt.Sprintf("v6user%d@example.com", i), fmt.Sprintf("2001:db8:1:2::%x", i+1)); err != nil {
				t.Fatalf("v6 account %d: %v", i, err)
			}
		}
		refused(t, e.fail("v6user100@example.com", "2001:db8:1:2:ffff::1"), "ip_throttled", 59*time.Minute, time.Hour)
		// Other IPs are unaffected; an allow-listed one is never throttled; a blocked one never passes.
		if err := e.fail("user100@example.com", "198.51.100.2"); err != nil {
			t.Errorf("another IP: %v", err)
		}
		for i := range 150 {
			if err := e.fail(fmt.Sprintf("office%d@example.com", i), "10.1.2.3"); err != nil {
				t.Fatalf("allow-listed IP, account %d: %v", i, err)
			}
		}
		if err := e.fail("user1@example.com", "192.0.2.44"); !failure.IsKind(err, failure.Forbidden) {
			t.Errorf("blocked IP: %v", err)
		}
		e.clock.Advance(time.Hour)
		if err := e.fail("user100@example.com", stuffer); err != nil {
			t.Errorf("after the hour: %v", err)
		}
	})
}

// TestConcurrentGuessesCountExactly fires 500 wrong guesses at one account at once: exactly
// the limit get through to a check, every other is refused, and the counter says so.
func TestConcurrentGuessesCountExactly(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{"slow_after":10,"lock_after":10,"account_lock_after":50}`)
		var wg sync.WaitGroup
		var mu sync.Mutex
		passed, other := 0, map[string]int{}
		for range 500 {
			wg.Go(func() {
				_, err := e.engine.Begin(t.Context(), protect.Guard{Project: e.project, Kind: "password", Account: "ada@example.com", IP: "203.0.113.7"})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					passed++
				} else if fe, ok := failure.As(err); !ok || fe.Code != "account_locked" {
					other[err.Error()]++
				}
			})
		}
		wg.Wait()
		if passed != 10 || len(other) > 0 {
			t.Errorf("500 concurrent attempts: %d passed, other errors %v; want exactly 10", passed, other)
		}
		cs, err := st.TakeCounters(t.Context(), e.project.ID, []store.CounterKey{{Scope: "password:account", Key: "ada@example.com"}}, e.clock.Now())
		if err != nil || cs[0].Count != 10 {
			t.Errorf("account counter = %+v, %v; want 10", cs, err)
		}
	})
}

func TestSendLimits(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{"sends_per_destination_per_hour":3,"sms_per_prefix_per_hour":5}`)
		send := func(ch, dest string) error {
			return e.engine.AllowSend(t.Context(), protect.Send{Project: e.project, Channel: ch, Destination: dest, IP: "198.51.100.1"})
		}
		for range 3 {
			if err := send("email", "ada@example.com"); err != nil {
				t.Fatal(err)
			}
		}
		refused(t, send("email", "ada@example.com"), "too_many_sends", 59*time.Minute, time.Hour)
		if err := send("email", "bob@example.com"); err != nil {
			t.Errorf("another address: %v", err)
		}
		// Five SMS to five numbers of one calling code, then that prefix is throttled.
		for i := range 5 {
			if err := send("sms", fmt.Sprintf("+88216000%03d", i)); err != nil {
				t.Fatalf("sms %d: %v", i, err)
			}
		}
		refused(t, send("sms", "+882160009999"), "too_many_sends", 59*time.Minute, time.Hour)
		if err := send("sms", "+14155550100"); err != nil {
			t.Errorf("another country: %v", err)
		}
		e.clock.Advance(time.Hour)
		if err := send("email", "ada@example.com"); err != nil {
			t.Errorf("after the hour: %v", err)
		}
	})
}

// Codes and MFA answers have no reset link to lift a lock, so their runs never hard-lock: at
// HardLockAfter they lock for lock_seconds like before.
func TestOnlyPasswordsHardLock(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t), `{"slow_after":100,"lock_after":100,"account_lock_after":100}`)
	for i := range project.HardLockAfter {
		if _, err := e.engine.Begin(t.Context(), protect.Guard{Project: e.project, Kind: "code", Account: "ada@example.com",
			IP: fmt.Sprintf("198.51.100.%d", i)}); err != nil {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	_, err := e.engine.Begin(t.Context(), protect.Guard{Project: e.project, Kind: "code", Account: "ada@example.com", IP: "192.0.2.1"})
	refused(t, err, "account_locked", 15*time.Minute, 15*time.Minute)
	e.clock.Advance(15 * time.Minute)
	if _, err := e.engine.Begin(t.Context(), protect.Guard{Project: e.project, Kind: "code", Account: "ada@example.com", IP: "192.0.2.1"}); err != nil {
		t.Errorf("after the lock: %v", err)
	}
}

// Check and Fail, for secrets too long to guess: a right answer is one read; an IP's failures
// across accounts throttle it for the hour, and lock nobody else out.
func TestCheckThenFail(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{"ip_failures_per_hour":20}`)
		g := protect.Guard{Project: e.project, Kind: "client_secret", Account: "cli_x", IP: "203.0.113.3"}
		for i := range 20 {
			if err := e.engine.Check(t.Context(), g); err != nil {
				t.Fatalf("check %d: %v", i, err)
			}
			if err := e.engine.Fail(t.Context(), g); err != nil {
				t.Fatal(err)
			}
		}
		refused(t, e.engine.Check(t.Context(), g), "ip_throttled", 59*time.Minute, time.Hour)
		other := g
		other.IP = "198.51.100.3"
		if err := e.engine.Check(t.Context(), other); err != nil {
			t.Errorf("another IP, same account: %v", err)
		}
		if events, err := st.ListAuditEvents(t.Context(), e.project.ID, store.AuditFilter{Type: protect.AuditThrottled}, 10, ""); err != nil || len(events) != 1 {
			t.Errorf("throttle events = %+v, %v", events, err)
		}
		e.clock.Advance(time.Hour)
		if err := e.engine.Check(t.Context(), g); err != nil {
			t.Errorf("after the hour: %v", err)
		}
	})
}

// A stranger who spends a destination's hourly budget cannot stop its owner getting a message:
// each requester has a budget of its own, and past the destination's ceiling a requester that
// has not sent to it yet gets one message with a solved bot check.
func TestStrangerCannotSpendTheOwnersSends(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{"sends_per_destination_per_hour":6,"sends_per_requester_per_hour":3}`)
		send := func(ctx context.Context, ip string) error {
			return e.engine.AllowSend(ctx, protect.Send{Project: e.project, Channel: "email", Destination: "ada@example.com", IP: ip})
		}
		ctx := t.Context()
		for i := range 3 {
			if err := send(ctx, "203.0.113.1"); err != nil {
				t.Fatalf("stranger's send %d: %v", i, err)
			}
		}
		// One requester's own budget ends before the destination's.
		refused(t, send(ctx, "203.0.113.1"), "too_many_sends", 59*time.Minute, time.Hour)
		for i := range 3 {
			if err := send(ctx, "203.0.113.2"); err != nil {
				t.Fatalf("second stranger's send %d: %v", i, err)
			}
		}
		// The destination's ceiling is reached: without a proof, a new requester is asked for one.
		if err := send(ctx, "198.51.100.7"); !failure.IsKind(err, failure.Forbidden) {
			t.Fatalf("the owner past the ceiling without a proof: %v", err)
		} else if fe, _ := failure.As(err); fe.Code != "bot_check_required" {
			t.Fatalf("the owner past the ceiling without a proof: %v", err)
		}
		// With one, the owner gets their message, once; strangers who sent already do not.
		proven := protect.WithProven(ctx)
		if err := send(proven, "198.51.100.7"); err != nil {
			t.Fatalf("the owner past the ceiling with a proof: %v", err)
		}
		refused(t, send(proven, "198.51.100.7"), "too_many_sends", 59*time.Minute, time.Hour)
		refused(t, send(proven, "203.0.113.2"), "too_many_sends", 59*time.Minute, time.Hour)
	})
}

// AllowSendTx counts in the caller's transaction: a message that is not committed is not counted.
func TestSendCountedInTheMessagesTransaction(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{"sends_per_destination_per_hour":1}`)
		s := protect.Send{Project: e.project, Channel: "email", Destination: "ada@example.com", IP: "198.51.100.1"}
		rollback := fmt.Errorf("the message was not accepted")
		for range 5 {
			err := st.InTx(t.Context(), func(tx store.Store) error {
				if err := e.engine.AllowSendTx(t.Context(), tx, s); err != nil {
					return err
				}
				return rollback
			})
			if err != rollback {
				t.Fatalf("InTx = %v", err)
			}
		}
		if err := e.engine.AllowSend(t.Context(), s); err != nil {
			t.Errorf("after five sends that rolled back: %v", err)
		}
	})
}

// A device token is honoured for its project and account only, and for DeviceTTL.
func TestDeviceTokenBinding(t *testing.T) {
	st := testdb.SQLite(t)
	e := newEnv(t, st, `{"slow_after":3,"lock_after":3,"account_lock_after":3}`)
	other := newEnv(t, st, `{}`)
	const ada = "ada@example.com"
	device, err := e.engine.IssueDevice(e.project, ada)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := e.fail(ada, fmt.Sprintf("203.0.113.%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	begin := func(p store.Project, tok string) error {
		_, err := e.engine.Begin(t.Context(), protect.Guard{Project: p, Kind: "password", Account: ada, IP: "192.0.2.1", Device: tok})
		return err
	}
	if err := begin(e.project, device); err != nil {
		t.Fatalf("the device within its project during the lock: %v", err)
	}
	// Another project never honours it (its own account of the same address is counted as any).
	otherDevice, _ := other.engine.IssueDevice(other.project, ada)
	refused(t, begin(e.project, otherDevice), "account_locked", time.Second, 15*time.Minute)
	e.clock.Advance(protect.DeviceTTL + time.Hour)
	for i := range 3 {
		_ = e.fail(ada, fmt.Sprintf("203.0.114.%d", i))
	}
	refused(t, begin(e.project, device), "account_locked", time.Second, 15*time.Minute)
}

// One IP (an IPv6 /64) starts at most authorize_requests_per_hour authorization requests in
// an hour; the next is refused until the window ends, another /64 has its own budget, a new
// window starts over, an allow-listed IP is never counted and a blocked one is refused.
func TestThrottleAuthorizeRequests(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{"authorize_requests_per_hour":10,"allow_cidrs":["192.0.2.0/24"],"block_cidrs":["203.0.113.0/24"]}`)
		allow := func(ip string) error { return e.engine.AllowAuthorization(t.Context(), e.project, ip) }
		for i := range 10 {
			// Addresses of one /64 share one budget.
			if err := allow(fmt.Sprintf("2001:db8:1:2::%x", i+1)); err != nil {
				t.Fatalf("request %d: %v", i+1, err)
			}
		}
		e.clock.Advance(20 * time.Minute)
		refused(t, allow("2001:db8:1:2::ffff"), "too_many_requests", 40*time.Minute, 40*time.Minute)
		if err := allow("2001:db8:1:3::1"); err != nil {
			t.Errorf("another /64: %v", err)
		}
		e.clock.Advance(40 * time.Minute)
		for i := range 10 {
			if err := allow("2001:db8:1:2::1"); err != nil {
				t.Fatalf("new window, request %d: %v", i+1, err)
			}
		}
		refused(t, allow("2001:db8:1:2::1"), "too_many_requests", time.Hour, time.Hour)

		for i := range 50 {
			if err := allow("192.0.2.7"); err != nil {
				t.Fatalf("allow-listed, request %d: %v", i+1, err)
			}
		}
		if fe, ok := failure.As(allow("203.0.113.9")); !ok || fe.Code != "ip_blocked" {
			t.Errorf("blocked IP: got %v, want ip_blocked", allow("203.0.113.9"))
		}

		// The budget is reached once per window: one audit event for each of the two windows.
		evs, err := st.ListAuditEvents(t.Context(), e.project.ID, store.AuditFilter{Type: protect.AuditAuthorizeThrottled}, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 {
			t.Errorf("%d %s events, want 2", len(evs), protect.AuditAuthorizeThrottled)
		}
	})
}

// Concurrent requests from one IP share its budget exactly, on both backends.
func TestThrottleAuthorizeRequestsConcurrent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, st *sqlstore.Store) {
		e := newEnv(t, st, `{"authorize_requests_per_hour":10}`)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, throttled := 0, 0
		for range 30 {
			wg.Go(func() {
				err := e.engine.AllowAuthorization(context.WithoutCancel(t.Context()), e.project, "198.51.100.4")
				mu.Lock()
				defer mu.Unlock()
				if fe, isF := failure.As(err); err == nil {
					ok++
				} else if isF && fe.Code == "too_many_requests" {
					throttled++
				} else {
					t.Errorf("unexpected: %v", err)
				}
			})
		}
		wg.Wait()
		if ok != 10 || throttled != 20 {
			t.Errorf("%d allowed, %d throttled; want 10 and 20", ok, throttled)
		}
	})
}
