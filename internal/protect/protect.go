// Package protect is attack protection: one engine that every path checking a secret or
// sending a message goes through. It counts failures per account, per IP and per (account,
// IP) pair, and sends per destination, in the database, so that every instance sharing it
// enforces the same limits; it slows down, locks and throttles with a Retry-After.
package protect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Timings that are not settings.
const (
	// failureMemory is how long failures of an account are remembered without a new one: a
	// run of failures is "consecutive" across days, not forever.
	failureMemory = 24 * time.Hour
	ipWindow      = time.Hour
	sendWindow    = time.Hour
	// maxDelay caps the progressive delay between failures of one account from one IP.
	maxDelay = 30 * time.Second
	// hardLockFor stands for "until unlocked": the owner unlocks through their verified email.
	hardLockFor = 100 * 365 * 24 * time.Hour
)

// Audit event types the engine writes, in the transaction that starts the lock or throttle.
const (
	AuditLocked     = "protect.locked"      // an account, or one IP's access to it, is locked
	AuditHardLocked = "protect.hard_locked" // an account's passwords, until its owner resets
	AuditThrottled  = "protect.ip_throttled"
)

// Deps are the engine's dependencies.
type Deps struct {
	Store    store.Store
	Settings func(store.Project) (project.Settings, error)
	Now      func() time.Time
	IDs      *ident.Generator
}

// Engine is the attack-protection engine.
type Engine struct {
	d Deps
}

// New returns the engine.
func New(d Deps) *Engine {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.IDs == nil {
		d.IDs = ident.NewGenerator()
	}
	return &Engine{d: d}
}

// KindPassword is the kind of secret whose run of failures can end in a lock that only its
// owner lifts (Unlock, after a password reset proves control of the email). Other kinds (codes,
// MFA answers) have no such way out, so at HardLockAfter they keep locking for LockSeconds at
// a time: an owner is never locked out for good by a stranger's guesses.
const KindPassword = "password"

// CheckIP refuses an IP on the project's block list (403 ip_blocked), for routes that check no
// secret and send nothing, such as sign-up.
func (e *Engine) CheckIP(p store.Project, ip string) error {
	st, err := e.d.Settings(p)
	if err != nil {
		return err
	}
	if inAny(parseIP(ip), st.Protect.BlockCIDRs) {
		return failure.New(failure.Forbidden, "ip_blocked", "requests from this address are blocked")
	}
	return nil
}

// Guard names one attempt to check a secret.
type Guard struct {
	Project store.Project
	// Kind is what is checked, e.g. "password", "code", "mfa": each kind counts apart, so that
	// failed passwords do not stop someone signing in with an email code.
	Kind string
	// Account is who the secret is for: a normalised email or phone, or a user id. It need not
	// exist, so that unknown accounts are counted like known ones and locks reveal nothing.
	Account string
	IP      string
}

// Attempt is a check that Begin allowed. It is counted as a failure until Succeed says
// otherwise, so a check that never reports back (a crash, a timeout) still counts.
type Attempt struct {
	e    *Engine
	g    Guard
	keys []store.CounterKey
}

// Begin lets an attempt go ahead, or refuses it: a blocked IP (403 ip_blocked), a locked
// account or pair (429 account_locked), failures too close together (429 too_many_attempts),
// an IP failing across many accounts (429 ip_throttled); 429s carry Retry-After. The check
// and the provisional failure count are one step on the counters' rows, so of N concurrent
// attempts on one account no more pass than the limits allow, on every instance at once.
func (e *Engine) Begin(ctx context.Context, g Guard) (*Attempt, error) {
	st, keys, err := e.prepare(g)
	if err != nil {
		return nil, err
	}
	now := e.now()
	err = e.d.Store.InTx(ctx, func(tx store.Store) error {
		cs, err := tx.TakeCounters(ctx, g.Project.ID, keys, now)
		if err != nil {
			return fmt.Errorf("take counters: %w", err)
		}
		if err := refuse(cs, st.Protect, now); err != nil {
			return err
		}
		// Count the attempt as a failure now; Succeed takes it back.
		return e.count(ctx, tx, g, st.Protect, cs, now)
	})
	if err != nil {
		return nil, err
	}
	return &Attempt{e: e, g: g, keys: keys}, nil
}

// Check refuses, from one read, an IP that has failed too often across accounts this hour
// (429 ip_throttled) or is blocked (403 ip_blocked): for secrets too long to guess (refresh
// tokens, client secrets, magic links, passkey assertions). Guessing them is hopeless, so per
// account locks and delays would only let a stranger lock an owner out; what is worth bounding
// is the load one IP can put on them. A right answer costs one read; Fail counts a wrong one.
func (e *Engine) Check(ctx context.Context, g Guard) error {
	st, key, counted, err := e.ipOnly(g)
	if err != nil || !counted {
		return err
	}
	now := e.now()
	cs, err := e.d.Store.GetCounters(ctx, g.Project.ID, []store.CounterKey{key}, now)
	if err != nil {
		return fmt.Errorf("get counters: %w", err)
	}
	forget(&cs[0], now, ipWindow, false)
	if cs[0].Count >= st.Protect.IPFailuresPerHour {
		return errThrottled(cs[0].WindowStart.Add(ipWindow).Sub(now))
	}
	return nil
}

// Fail counts a wrong long secret against its IP, and writes the throttle's audit event when
// the count reaches the limit.
func (e *Engine) Fail(ctx context.Context, g Guard) error {
	st, key, counted, err := e.ipOnly(g)
	if err != nil || !counted {
		return err
	}
	now := e.now()
	return e.d.Store.InTx(ctx, func(tx store.Store) error {
		cs, err := tx.TakeCounters(ctx, g.Project.ID, []store.CounterKey{key}, now)
		if err != nil {
			return fmt.Errorf("take counters: %w", err)
		}
		c := cs[0]
		forget(&c, now, ipWindow, false)
		c.Count++
		c.LastAt, c.UpdatedAt = &now, now
		if c.Count == st.Protect.IPFailuresPerHour {
			if err := tx.AddAuditEvent(ctx, store.AuditEvent{ID: e.d.IDs.New(), ProjectID: g.Project.ID, Type: AuditThrottled,
				IPAddress: g.IP, CreatedAt: now, Detail: map[string]any{"kind": g.Kind, "account": g.Account,
					"failures": c.Count, "until": c.WindowStart.Add(ipWindow)}}); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
		}
		if err := tx.SaveCounter(ctx, c); err != nil {
			return fmt.Errorf("save counter: %w", err)
		}
		return nil
	})
}

// ipOnly is Check's and Fail's counter: the IP's failures across accounts, shared with
// Begin's; counted is false for an allow-listed IP.
func (e *Engine) ipOnly(g Guard) (project.Settings, store.CounterKey, bool, error) {
	st, err := e.d.Settings(g.Project)
	if err != nil {
		return project.Settings{}, store.CounterKey{}, false, err
	}
	ip := parseIP(g.IP)
	if inAny(ip, st.Protect.BlockCIDRs) {
		return project.Settings{}, store.CounterKey{}, false, failure.New(failure.Forbidden, "ip_blocked", "requests from this address are blocked")
	}
	if inAny(ip, st.Protect.AllowCIDRs) {
		return st, store.CounterKey{}, false, nil
	}
	return st, store.CounterKey{Scope: "secret:ip", Key: ipKey(ip, g.IP)}, true, nil
}

// prepare reads the project's settings, refuses a blocked IP, and names the counters of g:
// the account's (by kind), the (account, IP) pair's and, unless the IP is allow-listed, the
// IP's across accounts; always in this order, so transactions take rows in one order.
func (e *Engine) prepare(g Guard) (project.Settings, []store.CounterKey, error) {
	st, err := e.d.Settings(g.Project)
	if err != nil {
		return project.Settings{}, nil, err
	}
	ip := parseIP(g.IP)
	if inAny(ip, st.Protect.BlockCIDRs) {
		return project.Settings{}, nil, failure.New(failure.Forbidden, "ip_blocked", "requests from this address are blocked")
	}
	keys := []store.CounterKey{
		{Scope: g.Kind + ":account", Key: g.Account},
		{Scope: g.Kind + ":pair", Key: g.Account + "|" + ipKey(ip, g.IP)},
	}
	if !inAny(ip, st.Protect.AllowCIDRs) {
		keys = append(keys, store.CounterKey{Scope: "secret:ip", Key: ipKey(ip, g.IP)})
	}
	return st, keys, nil
}

// forgetAll applies the counters' windows: the account and pair remember failures for a day
// after the last, the IP for the hour.
func forgetAll(cs []store.Counter, now time.Time) {
	forget(&cs[0], now, failureMemory, true)
	forget(&cs[1], now, failureMemory, true)
	if len(cs) > 2 {
		forget(&cs[2], now, ipWindow, false)
	}
}

// refuse says whether the counters, read at now, refuse an attempt: a lock, a delay not yet
// waited out, or a throttled IP.
func refuse(cs []store.Counter, p project.ProtectSettings, now time.Time) error {
	forgetAll(cs, now)
	account, pair := &cs[0], &cs[1]
	if err := refuseLocked(account, now); err != nil {
		return err
	}
	if err := refuseLocked(pair, now); err != nil {
		return err
	}
	if pair.Count >= p.SlowAfter && pair.LastAt != nil {
		if wait := pair.LastAt.Add(delay(pair.Count - p.SlowAfter)).Sub(now); wait > 0 {
			return failure.TooManyUntil(wait, "too_many_attempts",
				"too many failed attempts: wait %s before trying again", roundUp(wait))
		}
	}
	if len(cs) > 2 && cs[2].Count >= p.IPFailuresPerHour {
		return errThrottled(cs[2].WindowStart.Add(ipWindow).Sub(now))
	}
	return nil
}

// count adds a failure to each counter through tx, setting the locks it reaches and writing
// their audit events in the same transaction.
func (e *Engine) count(ctx context.Context, tx store.Store, g Guard, p project.ProtectSettings, cs []store.Counter, now time.Time) error {
	for i := range cs {
		cs[i].Count++
		cs[i].LastAt = &now
		cs[i].UpdatedAt = now
	}
	account, pair := &cs[0], &cs[1]
	var events []store.AuditEvent
	event := func(typ string, detail map[string]any) {
		detail["kind"], detail["account"] = g.Kind, g.Account
		events = append(events, store.AuditEvent{ID: e.d.IDs.New(), ProjectID: g.Project.ID, Type: typ,
			IPAddress: g.IP, Detail: detail, CreatedAt: now})
	}
	switch {
	case account.Count >= project.HardLockAfter && g.Kind == KindPassword:
		account.LockedUntil = ptr(now.Add(hardLockFor))
		event(AuditHardLocked, map[string]any{"failures": account.Count})
	case account.Count%p.AccountLockAfter == 0:
		account.LockedUntil = ptr(now.Add(p.LockDuration()))
		event(AuditLocked, map[string]any{"scope": "account", "failures": account.Count, "locked_until": *account.LockedUntil})
	}
	if pair.Count%p.LockAfter == 0 {
		pair.LockedUntil = ptr(now.Add(p.LockDuration()))
		event(AuditLocked, map[string]any{"scope": "ip", "failures": pair.Count, "locked_until": *pair.LockedUntil})
	}
	if len(cs) > 2 && cs[2].Count == p.IPFailuresPerHour {
		event(AuditThrottled, map[string]any{"failures": cs[2].Count, "until": cs[2].WindowStart.Add(ipWindow)})
	}
	for _, ev := range events {
		if err := tx.AddAuditEvent(ctx, ev); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	for _, c := range cs {
		if err := tx.SaveCounter(ctx, c); err != nil {
			return fmt.Errorf("save counter: %w", err)
		}
	}
	return nil
}

// Succeed records that the attempt's secret was right: the account's and the pair's run of
// failures ends (and a lock its own attempt set lifts), and the IP's failure is taken back.
// A hard lock is never lifted here: Unlock does that.
func (a *Attempt) Succeed(ctx context.Context) error {
	return a.e.d.Store.InTx(ctx, func(tx store.Store) error { return a.SucceedIn(ctx, tx) })
}

// SucceedIn is Succeed through tx, a transaction of the caller's: a login records its success
// in the commit that starts its session, so that no further commit stands between the login
// and its answer (a crash there would leave a login made and never answered).
func (a *Attempt) SucceedIn(ctx context.Context, tx store.Store) error {
	now := a.e.now()
	cs, err := tx.TakeCounters(ctx, a.g.Project.ID, a.keys, now)
	if err != nil {
		return fmt.Errorf("take counters: %w", err)
	}
	for i := range cs {
		c := &cs[i]
		if i < 2 {
			if c.LockedUntil != nil && c.LockedUntil.Sub(now) > hardLockFor/2 {
				continue
			}
			c.Count, c.LockedUntil = 0, nil
		} else if c.Count > 0 {
			c.Count--
		}
		c.UpdatedAt = now
		if err := tx.SaveCounter(ctx, *c); err != nil {
			return fmt.Errorf("save counter: %w", err)
		}
	}
	return nil
}

// Unlock ends an account's run of failures and its lock, hard lock included, and the pair's
// of the IP the owner unlocks from: for an owner who proved control of their verified email.
func (e *Engine) Unlock(ctx context.Context, g Guard) error {
	now := e.now()
	keys := []store.CounterKey{{Scope: g.Kind + ":account", Key: g.Account},
		{Scope: g.Kind + ":pair", Key: g.Account + "|" + ipKey(parseIP(g.IP), g.IP)}}
	return e.d.Store.InTx(ctx, func(tx store.Store) error {
		cs, err := tx.TakeCounters(ctx, g.Project.ID, keys, now)
		if err != nil {
			return fmt.Errorf("take counters: %w", err)
		}
		for _, c := range cs {
			c.Count, c.LockedUntil, c.UpdatedAt = 0, nil, now
			if err := tx.SaveCounter(ctx, c); err != nil {
				return fmt.Errorf("save counter: %w", err)
			}
		}
		return nil
	})
}

// Locked reports whether the account is hard-locked (only Unlock lifts it).
func (e *Engine) Locked(ctx context.Context, g Guard) (bool, error) {
	now := e.now()
	cs, err := e.d.Store.GetCounters(ctx, g.Project.ID, []store.CounterKey{{Scope: g.Kind + ":account", Key: g.Account}}, now)
	if err != nil {
		return false, fmt.Errorf("get counters: %w", err)
	}
	return cs[0].LockedUntil != nil && cs[0].LockedUntil.Sub(now) > hardLockFor/2, nil
}

// Send is a message about to be sent.
type Send struct {
	Project     store.Project
	Channel     string // "email" or "sms"
	Destination string // normalised address or E.164 number
	IP          string
}

// AllowSend counts a message to a destination, or refuses it: a blocked IP (403
// ip_blocked), too many messages to the destination or, for SMS, to its country calling
// code within the hour (429 too_many_sends, with Retry-After). SMS pumping fraud sends many
// messages to premium numbers of one country; these limits cap what it can cost.
func (e *Engine) AllowSend(ctx context.Context, s Send) error {
	st, err := e.d.Settings(s.Project)
	if err != nil {
		return err
	}
	ip := parseIP(s.IP)
	if inAny(ip, st.Protect.BlockCIDRs) {
		return failure.New(failure.Forbidden, "ip_blocked", "requests from this address are blocked")
	}
	keys := []store.CounterKey{{Scope: "send:" + s.Channel, Key: s.Destination}}
	limits := []int{st.Protect.SendsPerDestinationPerHour}
	if s.Channel == "sms" {
		keys = append(keys, store.CounterKey{Scope: "send:sms-prefix", Key: callingPrefix(s.Destination)})
		limits = append(limits, st.Protect.SMSPerPrefixPerHour)
	}
	// Sends per IP have no limit of their own; they raise the IP's risk (Risky).
	keys = append(keys, store.CounterKey{Scope: "send:ip", Key: ipKey(ip, s.IP)})
	limits = append(limits, math.MaxInt)
	now := e.now()
	return e.d.Store.InTx(ctx, func(tx store.Store) error {
		cs, err := tx.TakeCounters(ctx, s.Project.ID, keys, now)
		if err != nil {
			return fmt.Errorf("take counters: %w", err)
		}
		for i := range cs {
			forget(&cs[i], now, sendWindow, false)
			if cs[i].Count >= limits[i] {
				wait := cs[i].WindowStart.Add(sendWindow).Sub(now)
				return failure.TooManyUntil(wait, "too_many_sends", "too many messages to this destination: try again in %s", roundUp(wait))
			}
		}
		for _, c := range cs {
			c.Count++
			c.LastAt, c.UpdatedAt = &now, now
			if err := tx.SaveCounter(ctx, c); err != nil {
				return fmt.Errorf("save counter: %w", err)
			}
		}
		return nil
	})
}

// Risk thresholds: an IP with this many failed secrets or sends in the hour has to prove it
// is not a bot where the project checks on risk.
const (
	riskyFailures = 10
	riskySends    = 10
)

// Risky reports whether requests from ip look automated: recent failed secrets or many sends
// from it. Bot checks on "risk" ask for a proof only then, so people rarely see one.
func (e *Engine) Risky(ctx context.Context, p store.Project, ipRaw string) (bool, error) {
	ip := parseIP(ipRaw)
	now := e.now()
	cs, err := e.d.Store.GetCounters(ctx, p.ID, []store.CounterKey{{Scope: "secret:ip", Key: ipKey(ip, ipRaw)},
		{Scope: "send:ip", Key: ipKey(ip, ipRaw)}}, now)
	if err != nil {
		return false, fmt.Errorf("get counters: %w", err)
	}
	forget(&cs[0], now, ipWindow, false)
	forget(&cs[1], now, sendWindow, false)
	return cs[0].Count >= riskyFailures || cs[1].Count >= riskySends, nil
}

// Sweep deletes counters idle for longer than any of their windows.
func (e *Engine) Sweep(ctx context.Context) (int, error) {
	return e.d.Store.DeleteIdleCounters(ctx, e.now().Add(-failureMemory))
}

func (e *Engine) now() time.Time { return e.d.Now().UTC().Truncate(time.Microsecond) }

// forget lifts a lock that has run out and starts a new window on a counter whose window is
// over: a fixed window from its start, or, sliding, from its newest event.
func forget(c *store.Counter, now time.Time, window time.Duration, sliding bool) {
	if c.LockedUntil != nil {
		if now.Before(*c.LockedUntil) {
			return
		}
		c.LockedUntil = nil
	}
	since := c.WindowStart
	if sliding && c.LastAt != nil {
		since = *c.LastAt
	}
	if now.Sub(since) >= window {
		c.Count, c.WindowStart = 0, now
	}
}

func refuseLocked(c *store.Counter, now time.Time) error {
	if c.LockedUntil == nil || !now.Before(*c.LockedUntil) {
		return nil
	}
	wait := c.LockedUntil.Sub(now)
	if wait > hardLockFor/2 {
		return failure.New(failure.TooMany, "account_locked",
			"this account is locked after too many failed attempts: its owner can unlock it by resetting the password")
	}
	return failure.TooManyUntil(wait, "account_locked", "too many failed attempts: try again in %s", roundUp(wait))
}

func errThrottled(wait time.Duration) error {
	return failure.TooManyUntil(wait, "ip_throttled", "too many failed attempts from this address: try again in %s", roundUp(wait))
}

// delay is the wait after the n-th failure past SlowAfter: 1 s, 2 s, 4 s ... up to maxDelay.
func delay(n int) time.Duration {
	if n >= 5 {
		return maxDelay
	}
	return min(time.Second<<n, maxDelay)
}

// ipKey is what an IP is counted by: the address, or for IPv6 its /64, which one subscriber
// usually holds whole (counting single IPv6 addresses would let one host rotate through 2^64).
func ipKey(ip netip.Addr, raw string) string {
	switch {
	case !ip.IsValid():
		return "unknown:" + raw
	case ip.Is4():
		return ip.String()
	}
	return netip.PrefixFrom(ip, 64).Masked().String()
}

func parseIP(s string) netip.Addr {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func inAny(ip netip.Addr, cidrs []string) bool {
	if !ip.IsValid() {
		return false
	}
	for _, c := range cidrs {
		if p, err := project.ParseCIDR(c); err == nil && p.Contains(ip) {
			return true
		}
	}
	return false
}

// callingPrefix approximates an E.164 number's country calling code by its first three
// digits: enough to group the numbers of one premium-rate range.
func callingPrefix(e164 string) string {
	d := strings.TrimPrefix(e164, "+")
	if len(d) > 3 {
		d = d[:3]
	}
	return "+" + d
}

func roundUp(d time.Duration) string {
	if d >= time.Minute {
		return fmt.Sprintf("%d minutes", int((d+time.Minute-1)/time.Minute))
	}
	return fmt.Sprintf("%d seconds", max(int((d+time.Second-1)/time.Second), 1))
}

func ptr[T any](v T) *T { return &v }

// IsRefusal reports whether err is one of the engine's refusals, which callers pass on as is.
func IsRefusal(err error) bool {
	fe, ok := failure.As(err)
	return ok && (fe.Code == "account_locked" || fe.Code == "too_many_attempts" || fe.Code == "ip_throttled" ||
		fe.Code == "ip_blocked" || fe.Code == "too_many_sends") && !errors.Is(err, context.Canceled)
}
