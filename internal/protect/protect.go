// Package protect is attack protection: one engine that every path checking a secret or
// sending a message goes through. It counts failures per account, per IP, per (account, IP)
// pair and per device of the account's owner, and sends per (destination, requester) and per
// destination, in the database, so that every instance sharing it enforces the same limits;
// it slows down, locks and throttles with a Retry-After. Its budgets are shaped so that a
// stranger cannot spend the owner's: no permanent lock from failures spread over many IPs, no
// account-wide lock for the owner's known devices, one message past a destination's ceiling
// for a requester new to it.
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
	// AuditAuthorizeThrottled: an IP reached its budget of new authorization requests.
	AuditAuthorizeThrottled = "protect.authorize_throttled"
)

// Store is the part of the store the protection engine uses; its transactions use tx only through
// Store (see store.Store.InTx).
type Store interface {
	store.Counters
	store.AuditEvents
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Deps are the engine's dependencies.
type Deps struct {
	Store    Store
	Settings func(store.Project) (project.Settings, error)
	Now      func() time.Time
	IDs      *ident.Generator
	// DeviceKey signs device tokens (at least 32 bytes, shared by every instance; the app
	// derives it from the master key). Without one, device tokens are neither issued nor
	// honoured.
	DeviceKey []byte
	// Alert tells an account's owner, through tx, that their account is under attack: it is
	// called in the transaction that starts an account-wide lock, so at most once per lock.
	// nil: no alert.
	Alert func(ctx context.Context, tx store.Store, p store.Project, kind, account string) error
	// Wake nudges the outbox worker after an alert is committed; nil is fine.
	Wake func()
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
	if d.Wake == nil {
		d.Wake = func() {}
	}
	return &Engine{d: d}
}

// KindPassword is the kind of secret whose run of failures can end in a lock that only its
// owner lifts (Unlock, after a password reset proves control of the email): only the run of
// one (account, IP) pair or of one device, never the account-wide run, which failures from
// many IPs can fill without the owner's part. Other kinds (codes, MFA answers) have no such
// way out, so at HardLockAfter they keep locking for LockSeconds at a time.
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
	// Device is the device token the client presented (IssueDevice), or "". A valid one for
	// this project and account counts the attempt on the device alone: the account-wide lock
	// and the IP's throttle, which strangers can fill, do not apply to it.
	Device string
}

// role is what a counter of an attempt counts.
type role int

const (
	roleAccount role = iota // one account's failures from every IP
	rolePair                // one account's failures from one IP
	roleDevice              // one account's failures from one of its owner's devices
	roleIP                  // one IP's failures across accounts
)

// Attempt is a check that Begin allowed. It is counted as a failure until Succeed says
// otherwise, so a check that never reports back (a crash, a timeout) still counts; Cancel
// takes the failure back when the secret was never looked at.
type Attempt struct {
	e     *Engine
	g     Guard
	keys  []store.CounterKey
	roles []role
	at    time.Time
	// locks are the locks this attempt's failure set, by counter index: Cancel lifts them.
	locks map[int]time.Time
}

// Begin lets an attempt go ahead, or refuses it: a blocked IP (403 ip_blocked), a locked
// account, pair or device (429 account_locked), failures too close together (429
// too_many_attempts), an IP failing across many accounts (429 ip_throttled); 429s carry
// Retry-After. The check and the provisional failure count are one step on the counters'
// rows, so of N concurrent attempts on one account no more pass than the limits allow, on
// every instance at once.
func (e *Engine) Begin(ctx context.Context, g Guard) (*Attempt, error) {
	st, keys, roles, err := e.prepare(g)
	if err != nil {
		return nil, err
	}
	now := e.now()
	a := &Attempt{e: e, g: g, keys: keys, roles: roles, at: now}
	alerted := false
	err = e.d.Store.InTx(ctx, func(tx store.Store) error {
		cs, err := tx.TakeCounters(ctx, g.Project.ID, keys, now)
		if err != nil {
			return fmt.Errorf("take counters: %w", err)
		}
		if err := refuse(cs, roles, st.Protect, now); err != nil {
			return err
		}
		// Count the attempt as a failure now; Succeed takes it back.
		a.locks, alerted, err = e.count(ctx, tx, g, st.Protect, cs, roles, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	if alerted {
		e.d.Wake()
	}
	return a, nil
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

// prepare reads the project's settings, refuses a blocked IP, and names the counters of g.
// An attempt from a device of the account's owner counts on that device alone; any other on
// the account's (by kind), the (account, IP) pair's and, unless the IP is allow-listed, the
// IP's across accounts; always in this order of scopes, so transactions take rows in one order.
func (e *Engine) prepare(g Guard) (project.Settings, []store.CounterKey, []role, error) {
	st, err := e.d.Settings(g.Project)
	if err != nil {
		return project.Settings{}, nil, nil, err
	}
	ip := parseIP(g.IP)
	if inAny(ip, st.Protect.BlockCIDRs) {
		return project.Settings{}, nil, nil, failure.New(failure.Forbidden, "ip_blocked", "requests from this address are blocked")
	}
	if id, ok := e.device(g); ok {
		return st, []store.CounterKey{{Scope: g.Kind + ":device", Key: g.Account + "|" + id}}, []role{roleDevice}, nil
	}
	keys := []store.CounterKey{
		{Scope: g.Kind + ":account", Key: g.Account},
		{Scope: g.Kind + ":pair", Key: g.Account + "|" + ipKey(ip, g.IP)},
	}
	roles := []role{roleAccount, rolePair}
	if !inAny(ip, st.Protect.AllowCIDRs) {
		keys = append(keys, store.CounterKey{Scope: "secret:ip", Key: ipKey(ip, g.IP)})
		roles = append(roles, roleIP)
	}
	return st, keys, roles, nil
}

// forgetAll applies the counters' windows: the account, pair and device remember failures
// for a day after the last, the IP for the hour.
func forgetAll(cs []store.Counter, roles []role, now time.Time) {
	for i, r := range roles {
		if r == roleIP {
			forget(&cs[i], now, ipWindow, false)
		} else {
			forget(&cs[i], now, failureMemory, true)
		}
	}
}

// refuse says whether the counters, read at now, refuse an attempt: a lock, a delay not yet
// waited out, or a throttled IP.
func refuse(cs []store.Counter, roles []role, p project.ProtectSettings, now time.Time) error {
	forgetAll(cs, roles, now)
	for i, r := range roles {
		if r != roleIP {
			if err := refuseLocked(&cs[i], now); err != nil {
				return err
			}
		}
	}
	for i, r := range roles {
		c := &cs[i]
		switch r {
		case rolePair, roleDevice:
			if c.Count >= p.SlowAfter && c.LastAt != nil {
				if wait := c.LastAt.Add(delay(c.Count - p.SlowAfter)).Sub(now); wait > 0 {
					return failure.TooManyUntil(wait, "too_many_attempts",
						"too many failed attempts: wait %s before trying again", roundUp(wait))
				}
			}
		case roleIP:
			if c.Count >= p.IPFailuresPerHour {
				return errThrottled(c.WindowStart.Add(ipWindow).Sub(now))
			}
		}
	}
	return nil
}

// count adds a failure to each counter through tx, setting the locks it reaches and writing
// their audit events (and the owner's alert, when the account-wide lock starts) in the same
// transaction. It returns the locks it set, by counter index, and whether it alerted.
func (e *Engine) count(ctx context.Context, tx store.Store, g Guard, p project.ProtectSettings, cs []store.Counter, roles []role, now time.Time) (map[int]time.Time, bool, error) {
	locks := map[int]time.Time{}
	var events []store.AuditEvent
	event := func(typ string, detail map[string]any) {
		detail["kind"], detail["account"] = g.Kind, g.Account
		events = append(events, store.AuditEvent{ID: e.d.IDs.New(), ProjectID: g.Project.ID, Type: typ,
			IPAddress: g.IP, Detail: detail, CreatedAt: now})
	}
	lock := func(i int, until time.Time) {
		cs[i].LockedUntil = ptr(until)
		locks[i] = until
	}
	alert := false
	for i, r := range roles {
		c := &cs[i]
		c.Count++
		c.LastAt = &now
		c.UpdatedAt = now
		switch r {
		case roleAccount:
			// Never a hard lock: strangers on many IPs can fill this count without the owner.
			if c.Count%p.AccountLockAfter == 0 {
				lock(i, now.Add(p.LockDuration()))
				event(AuditLocked, map[string]any{"scope": "account", "failures": c.Count, "locked_until": *c.LockedUntil})
				alert = true
			}
		case rolePair, roleDevice:
			scope := "ip"
			if r == roleDevice {
				scope = "device"
			}
			switch {
			case c.Count >= project.HardLockAfter && g.Kind == KindPassword:
				lock(i, now.Add(hardLockFor))
				event(AuditHardLocked, map[string]any{"scope": scope, "failures": c.Count})
			case c.Count%p.LockAfter == 0:
				lock(i, now.Add(p.LockDuration()))
				event(AuditLocked, map[string]any{"scope": scope, "failures": c.Count, "locked_until": *c.LockedUntil})
			}
		case roleIP:
			if c.Count == p.IPFailuresPerHour {
				event(AuditThrottled, map[string]any{"failures": c.Count, "until": c.WindowStart.Add(ipWindow)})
			}
		}
	}
	for _, ev := range events {
		if err := tx.AddAuditEvent(ctx, ev); err != nil {
			return nil, false, fmt.Errorf("audit: %w", err)
		}
	}
	for _, c := range cs {
		if err := tx.SaveCounter(ctx, c); err != nil {
			return nil, false, fmt.Errorf("save counter: %w", err)
		}
	}
	if alert && e.d.Alert != nil {
		if err := e.d.Alert(ctx, tx, g.Project, g.Kind, g.Account); err != nil {
			return nil, false, fmt.Errorf("alert the owner: %w", err)
		}
		return locks, true, nil
	}
	return locks, false, nil
}

// Succeed records that the attempt's secret was right: the account's, the pair's and the
// device's run of failures ends (and a lock its own attempt set lifts), and the IP's failure
// is taken back. A hard lock is never lifted here: Unlock does that.
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
		if a.roles[i] != roleIP {
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

// Cancel takes back the failure Begin counted, for an attempt refused before its secret was
// looked at (the server too busy to hash it, a database error): a refusal that tells the
// client nothing about the secret must not spend the owner's budget. The locks the attempt's
// failure started lift with it. Cancel works on a context detached from the client's, so a
// client that goes away does not leave the failure counted.
func (a *Attempt) Cancel(ctx context.Context) error {
	ctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer stop()
	now := a.e.now()
	return a.e.d.Store.InTx(ctx, func(tx store.Store) error {
		cs, err := tx.TakeCounters(ctx, a.g.Project.ID, a.keys, now)
		if err != nil {
			return fmt.Errorf("take counters: %w", err)
		}
		for i := range cs {
			c := &cs[i]
			if c.Count > 0 && !c.WindowStart.After(a.at) {
				c.Count--
			}
			if until, ok := a.locks[i]; ok && c.LockedUntil != nil && c.LockedUntil.Equal(until) {
				c.LockedUntil = nil
			}
			c.UpdatedAt = now
			if err := tx.SaveCounter(ctx, *c); err != nil {
				return fmt.Errorf("save counter: %w", err)
			}
		}
		return nil
	})
}

// Unlock ends an account's run of failures and its lock, and the hard lock of the pair of the
// IP (and of the device) the owner unlocks from: for an owner who proved control of their
// verified email.
func (e *Engine) Unlock(ctx context.Context, g Guard) error {
	now := e.now()
	keys := e.unlockKeys(g)
	return e.d.Store.InTx(ctx, func(tx store.Store) error { return e.unlock(ctx, tx, g.Project.ID, keys, now) })
}

// unlockKeys are the counters Unlock resets: the account's, and the pair's and device's of the
// owner who unlocks.
func (e *Engine) unlockKeys(g Guard) []store.CounterKey {
	keys := []store.CounterKey{{Scope: g.Kind + ":account", Key: g.Account},
		{Scope: g.Kind + ":pair", Key: g.Account + "|" + ipKey(parseIP(g.IP), g.IP)}}
	if id, ok := e.device(g); ok {
		keys = append(keys, store.CounterKey{Scope: g.Kind + ":device", Key: g.Account + "|" + id})
	}
	return keys
}

// UnlockIn is Unlock through tx, a transaction of the caller's: a password reset unlocks in
// the commit that sets the new password, so that no crash leaves the password changed and the
// account still locked.
func (e *Engine) UnlockIn(ctx context.Context, tx Store, g Guard) error {
	return e.unlock(ctx, tx, g.Project.ID, e.unlockKeys(g), e.now())
}

func (e *Engine) unlock(ctx context.Context, tx Store, projectID string, keys []store.CounterKey, now time.Time) error {
	cs, err := tx.TakeCounters(ctx, projectID, keys, now)
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
}

// Locked reports whether the account is hard-locked for g's IP (or device): only Unlock
// lifts that.
func (e *Engine) Locked(ctx context.Context, g Guard) (bool, error) {
	now := e.now()
	key := store.CounterKey{Scope: g.Kind + ":pair", Key: g.Account + "|" + ipKey(parseIP(g.IP), g.IP)}
	if id, ok := e.device(g); ok {
		key = store.CounterKey{Scope: g.Kind + ":device", Key: g.Account + "|" + id}
	}
	cs, err := e.d.Store.GetCounters(ctx, g.Project.ID, []store.CounterKey{key}, now)
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
	IP          string // the requester's
}

type provenKey struct{}

// WithProven marks ctx as carrying a request that passed a bot check with a proof (a solved
// proof of work or a CAPTCHA token), which the bot-check gate verified.
func WithProven(ctx context.Context) context.Context {
	return context.WithValue(ctx, provenKey{}, true)
}

// Proven reports whether ctx's request passed a bot check with a proof (WithProven).
func Proven(ctx context.Context) bool {
	ok, _ := ctx.Value(provenKey{}).(bool)
	return ok
}

// AllowSend counts a message to a destination in a transaction of its own, or refuses it; see
// AllowSendTx.
func (e *Engine) AllowSend(ctx context.Context, s Send) error {
	return e.d.Store.InTx(ctx, func(tx store.Store) error { return e.AllowSendTx(ctx, tx, s) })
}

// AllowSendTx counts a message to a destination through tx, or refuses it: a blocked IP (403
// ip_blocked), too many messages from this requester to the destination, to the destination
// from everyone or, for SMS, to its country calling code within the hour (429 too_many_sends,
// with Retry-After). Call it in the transaction that commits the message, so that only sent
// messages count. Past the destination's ceiling, a requester that has not sent to it this
// hour still gets one message if its request passed a bot check with a proof (Proven; 403
// bot_check_required without one): a stranger who spends the destination's budget cannot stop
// its owner from getting a sign-in or reset message. SMS pumping fraud sends many messages to
// premium numbers of one country; the calling-code limit caps what it can cost and has no
// such exception.
func (e *Engine) AllowSendTx(ctx context.Context, tx Store, s Send) error {
	st, err := e.d.Settings(s.Project)
	if err != nil {
		return err
	}
	ip := parseIP(s.IP)
	if inAny(ip, st.Protect.BlockCIDRs) {
		return failure.New(failure.Forbidden, "ip_blocked", "requests from this address are blocked")
	}
	requester := ipKey(ip, s.IP)
	if s.Channel == "email" {
		// One mailbox, one budget, whichever case variant of its address a caller names.
		s.Destination = store.EmailKey(s.Destination)
	}
	const dest, pair = 0, 1
	keys := []store.CounterKey{{Scope: "send:" + s.Channel, Key: s.Destination},
		{Scope: "send:" + s.Channel + ":requester", Key: s.Destination + "|" + requester}}
	limits := []int{st.Protect.SendsPerDestinationPerHour, st.Protect.SendsPerRequesterPerHour}
	if s.Channel == "sms" {
		keys = append(keys, store.CounterKey{Scope: "send:sms-prefix", Key: callingPrefix(s.Destination)})
		limits = append(limits, st.Protect.SMSPerPrefixPerHour)
	}
	// Sends per IP have no limit of their own; they raise the IP's risk (Risky).
	keys = append(keys, store.CounterKey{Scope: "send:ip", Key: requester})
	limits = append(limits, math.MaxInt)
	now := e.now()
	cs, err := tx.TakeCounters(ctx, s.Project.ID, keys, now)
	if err != nil {
		return fmt.Errorf("take counters: %w", err)
	}
	for i := range cs {
		forget(&cs[i], now, sendWindow, false)
	}
	for i := range cs {
		if cs[i].Count < limits[i] {
			continue
		}
		if i == dest && cs[pair].Count == 0 {
			if Proven(ctx) {
				continue // the requester's first message to the destination this hour
			}
			return failure.New(failure.Forbidden, "bot_check_required",
				"this address has had many messages this hour: solve GET /api/v1/protect/challenge and send the payload in X-Altcha (or a CAPTCHA token in X-Captcha-Token) to send one more")
		}
		wait := cs[i].WindowStart.Add(sendWindow).Sub(now)
		return failure.TooManyUntil(wait, "too_many_sends", "too many messages to this destination: try again in %s", roundUp(wait))
	}
	for _, c := range cs {
		c.Count++
		c.LastAt, c.UpdatedAt = &now, now
		if err := tx.SaveCounter(ctx, c); err != nil {
			return fmt.Errorf("save counter: %w", err)
		}
	}
	return nil
}

// authorizeWindow is the fixed window of an IP's budget of new authorization requests.
const authorizeWindow = time.Hour

// AllowAuthorization counts one new OIDC authorization request from ip against the IP's
// hourly budget (protect.authorize_requests_per_hour, per IPv6 /64), or refuses it: a blocked
// IP (403 ip_blocked), or one past its budget (429 too_many_requests, with Retry-After until
// its window ends). An allow-listed IP is not counted. Each authorization request is a stored
// row, so this bounds what one address can make the database hold; the check and the count
// are one step on the counter's row, so concurrent requests on every instance share the
// budget exactly. The audit event is written once per window, when the budget is reached.
func (e *Engine) AllowAuthorization(ctx context.Context, p store.Project, ipRaw string) error {
	st, err := e.d.Settings(p)
	if err != nil {
		return err
	}
	ip := parseIP(ipRaw)
	if inAny(ip, st.Protect.BlockCIDRs) {
		return failure.New(failure.Forbidden, "ip_blocked", "requests from this address are blocked")
	}
	if inAny(ip, st.Protect.AllowCIDRs) {
		return nil
	}
	limit := st.Protect.AuthorizeRequestsPerHour
	key := store.CounterKey{Scope: "authorize:ip", Key: ipKey(ip, ipRaw)}
	now := e.now()
	return e.d.Store.InTx(ctx, func(tx store.Store) error {
		cs, err := tx.TakeCounters(ctx, p.ID, []store.CounterKey{key}, now)
		if err != nil {
			return fmt.Errorf("take counters: %w", err)
		}
		c := cs[0]
		forget(&c, now, authorizeWindow, false)
		if c.Count >= limit {
			wait := c.WindowStart.Add(authorizeWindow).Sub(now)
			return failure.TooManyUntil(wait, "too_many_requests",
				"too many sign-in requests from this address: try again in %s", roundUp(wait))
		}
		c.Count++
		c.LastAt, c.UpdatedAt = &now, now
		if c.Count == limit {
			if err := tx.AddAuditEvent(ctx, store.AuditEvent{ID: e.d.IDs.New(), ProjectID: p.ID, Type: AuditAuthorizeThrottled,
				IPAddress: ipRaw, CreatedAt: now, Detail: map[string]any{"requests": c.Count,
					"until": c.WindowStart.Add(authorizeWindow)}}); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
		}
		if err := tx.SaveCounter(ctx, c); err != nil {
			return fmt.Errorf("save counter: %w", err)
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
		fe.Code == "ip_blocked" || fe.Code == "too_many_sends" || fe.Code == "too_many_requests" || fe.Code == "bot_check_required") && !errors.Is(err, context.Canceled)
}
