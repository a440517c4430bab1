package passwordless

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/outbox"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Channel is how a flow's secret travels.
type Channel string

// The channels.
const (
	MagicLink Channel = "magic_link"
	EmailOTP  Channel = "email_otp"
	PhoneOTP  Channel = "phone_otp"
)

// Resend limits: a flow may be resent this many times, this far apart. Each resend voids the
// previous secret; wrong tries keep counting across resends, so resending never buys guesses.
const (
	MaxResends     = 3
	ResendInterval = 30 * time.Second
)

// Sealer seals outbox payloads (secretbox.Keyring): they hold codes and links.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
}

// Completer finishes a login (login.Service).
type Completer interface {
	Complete(ctx context.Context, r login.Request) (login.Result, error)
}

// Protector is attack protection (protect.Engine): codes are checked and messages sent through it.
type Protector interface {
	Begin(ctx context.Context, g protect.Guard) (*protect.Attempt, error)
	Check(ctx context.Context, g protect.Guard) error
	Fail(ctx context.Context, g protect.Guard) error
	// AllowSendTx counts a message in the transaction that commits it, so that only messages
	// that were sent count.
	AllowSendTx(ctx context.Context, tx protect.Store, s protect.Send) error
	// IssueDevice makes the device token a completed code login hands its client.
	IssueDevice(p store.Project, account string) (string, error)
}

// Store is the part of the store the passwordless flows use; its transactions use tx only through
// Store (see store.Store.InTx).
type Store interface {
	store.Users
	store.Flows
	store.Outbox
	store.MessageTemplates
	store.AuditEvents
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Deps are the service's dependencies.
type Deps struct {
	Store     Store
	Login     Completer
	Protect   Protector
	Sealer    Sealer
	Settings  func(p store.Project) (project.Settings, error)
	PublicURL string // the base of magic links
	// Delivery reports whether a channel ("email", "sms") has a sender; without one, sends are
	// refused with 503 rather than silently dropped.
	Delivery func(notify.Channel) bool
	// Wake nudges the outbox worker after a message is committed; nil is fine.
	Wake func()
	IDs  *ident.Generator
	Now  func() time.Time
	Rand io.Reader
}

// Service runs the passwordless flows of all three channels.
type Service struct {
	d Deps
}

// New returns the service.
func New(d Deps) *Service {
	if d.IDs == nil {
		d.IDs = ident.NewGenerator()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Wake == nil {
		d.Wake = func() {}
	}
	d.PublicURL = strings.TrimRight(d.PublicURL, "/")
	return &Service{d: d}
}

// SendRequest starts a flow.
type SendRequest struct {
	Channel     Channel
	Destination string // email, or phone for PhoneOTP, as the client sent it
	RedirectURL string // magic links only
	IP          string // the client's, for attack protection
}

// Send starts a flow and queues its message in the same transaction, so the flow is never
// usable before its message is committed. The answer is the same whether or not the
// destination belongs to a user: a destination that may not sign up gets a flow that can never
// be verified and no message (composed all the same, so that the answer takes about as long).
// Errors: invalid_email, invalid_phone, invalid_redirect_url (400),
// login_method_disabled (403), delivery_not_configured (503).
func (s *Service) Send(ctx context.Context, p store.Project, r SendRequest) (string, error) {
	settings, err := s.d.Settings(p)
	if err != nil {
		return "", err
	}
	if err := methodEnabled(settings, r.Channel); err != nil {
		return "", err
	}
	dest, err := normalizeDestination(r.Channel, r.Destination)
	if err != nil {
		return "", err
	}
	if r.RedirectURL != "" {
		if r.Channel != MagicLink {
			return "", failure.InvalidField("invalid_request", "redirect_url", "only magic links redirect")
		}
		// Exact match only: anything looser is an open redirect carrying a login.
		if !slices.Contains(settings.RedirectURIs, r.RedirectURL) {
			return "", failure.InvalidField("invalid_redirect_url", "redirect_url", "is not one of the project's redirect URIs")
		}
	}
	if !s.d.Delivery(channelOf(r.Channel)) {
		return "", failure.New(failure.Unavailable, "delivery_not_configured",
			"no %s sender is configured on this server", channelOf(r.Channel))
	}
	now := s.clock()
	secret, err := s.newSecret(r.Channel, settings)
	if err != nil {
		return "", err
	}
	f := store.Flow{
		ID: s.d.IDs.New(), ProjectID: p.ID, Channel: string(r.Channel), Destination: dest,
		RedirectURL: r.RedirectURL, Status: store.FlowPending, MaxAttempts: settings.Codes.MaxAttempts,
		CreatedAt: now, SentAt: now, ExpiresAt: now.Add(ttl(r.Channel, settings)),
	}
	f.SecretHash = hashSecret(f.ID, secret)
	err = s.d.Store.InTx(ctx, func(tx store.Store) error {
		// Counted whether or not the destination has an account, so the limits reveal nothing,
		// and in the flow's own transaction, so only flows that were created count. By lookup
		// key, so that case variants of one address share its budget.
		if err := s.d.Protect.AllowSendTx(ctx, tx, protect.Send{Project: p, Channel: string(channelOf(r.Channel)),
			Destination: destinationKey(r.Channel, dest), IP: r.IP}); err != nil {
			return err
		}
		u, found, err := findUser(ctx, tx, p.ID, r.Channel, dest)
		if err != nil {
			return err
		}
		exists := found
		if found {
			// The secret goes to the address or number the account has, never to the one
			// typed: they share a lookup key, and only the stored one was the owner's.
			f.Destination = storedDestination(r.Channel, u)
			if !u.Active {
				found = false // a deactivated user gets a dead-end flow, like a stranger
			} else {
				f.UserID = u.ID
			}
		}
		deliver := found || settings.AllowSignup
		if !exists && deliver && r.Channel != PhoneOTP {
			// This send signs a new account up: its address must not pass for another's.
			if err := directory.CheckNewEmail("email", dest, settings.Emails.AllowLookalikeAddresses); err != nil {
				return err
			}
		}
		if !deliver {
			// Same answer, no message, and a secret nobody knows: the flow cannot be verified.
			f.SecretHash = hashSecret(f.ID, s.d.IDs.New()+s.d.IDs.New())
		}
		if err := tx.CreateFlow(ctx, f); err != nil {
			return fmt.Errorf("create flow: %w", err)
		}
		if !deliver {
			return s.composeAndDrop(ctx, tx, p, settings, f, secret, now)
		}
		return s.enqueue(ctx, tx, p, settings, f, secret, now)
	})
	if err != nil {
		return "", err
	}
	s.d.Wake()
	return f.ID, nil
}

// Resend issues a new secret for a pending flow and sends it; the previous one stops working.
// Errors: flow_not_found (404), resend_too_soon, resend_limit (429), delivery_not_configured (503).
func (s *Service) Resend(ctx context.Context, p store.Project, channels []Channel, state, ip string) error {
	f, err := s.flow(ctx, p, channels, state)
	if err != nil {
		return err
	}
	settings, err := s.d.Settings(p)
	if err != nil {
		return err
	}
	if !s.d.Delivery(channelOf(Channel(f.Channel))) {
		return failure.New(failure.Unavailable, "delivery_not_configured", "no %s sender is configured on this server", channelOf(Channel(f.Channel)))
	}
	now := s.clock()
	switch {
	case f.Status != store.FlowPending || !now.Before(f.ExpiresAt):
		return errFlowNotFound()
	case f.Resends >= MaxResends:
		return failure.New(failure.TooMany, "resend_limit", "this flow was resent %d times already; start a new one", MaxResends)
	case now.Sub(f.SentAt) < ResendInterval:
		return failure.New(failure.TooMany, "resend_too_soon", "wait %s between resends", ResendInterval)
	}
	secret, err := s.newSecret(Channel(f.Channel), settings)
	if err != nil {
		return err
	}
	err = s.d.Store.InTx(ctx, func(tx store.Store) error {
		next, err := tx.ResendFlow(ctx, p.ID, f.ID, hashSecret(f.ID, secret), now,
			now.Add(ttl(Channel(f.Channel), settings)), now.Add(-ResendInterval), MaxResends)
		if errors.Is(err, store.ErrNotFound) {
			return failure.New(failure.TooMany, "resend_too_soon", "wait %s between resends", ResendInterval)
		}
		if err != nil {
			return fmt.Errorf("resend flow: %w", err)
		}
		// Counted only once this resend won the flow: of many concurrent resends, the ones
		// refused (resend_too_soon) send nothing and count nothing.
		if err := s.d.Protect.AllowSendTx(ctx, tx, protect.Send{Project: p, Channel: string(channelOf(Channel(f.Channel))),
			Destination: destinationKey(Channel(f.Channel), f.Destination), IP: ip}); err != nil {
			return err
		}
		if next.UserID == "" && !settings.AllowSignup {
			// A dead-end flow stays silent, as when it was sent, at the same cost.
			return s.composeAndDrop(ctx, tx, p, settings, next, secret, now)
		}
		return s.enqueue(ctx, tx, p, settings, next, secret, now)
	})
	if err != nil {
		return err
	}
	s.d.Wake()
	return nil
}

// VerifyCode checks a code of an email or SMS flow and, when it is right, completes the login.
// Wrong codes count; at the project's limit the flow dies. Errors: invalid_code (401, with the
// tries left), flow_not_found (404: unknown, expired, dead or used).
func (s *Service) VerifyCode(ctx context.Context, p store.Project, channels []Channel, state, code string, meta audit.Meta) (login.Result, error) {
	return s.VerifyCodeDevice(ctx, p, channels, state, code, "", meta)
}

// VerifyCodeDevice is VerifyCode from a device that may hold a device token of the
// destination (from an earlier sign-in): a valid one keeps the attempt out of the
// account-wide lock that strangers can fill by starting flows to the address and failing them.
// A completed sign-in carries a fresh device token (Result.Device) for the client to keep.
func (s *Service) VerifyCodeDevice(ctx context.Context, p store.Project, channels []Channel, state, code, device string, meta audit.Meta) (login.Result, error) {
	f, err := s.flow(ctx, p, channels, state)
	if err != nil {
		return login.Result{}, err
	}
	code = strings.TrimSpace(code)
	if code == "" {
		return login.Result{}, failure.InvalidField("invalid_request", "otp", "is required")
	}
	if f.Status != store.FlowPending || !s.clock().Before(f.ExpiresAt) {
		return login.Result{}, errFlowNotFound() // no secret is checked, so nothing to count
	}
	// Besides the flow's own tries, codes to one destination count across flows and IPs: a
	// guesser cannot get fresh tries by starting new flows.
	account := destinationKey(Channel(f.Channel), f.Destination)
	attempt, err := s.d.Protect.Begin(ctx, protect.Guard{Project: p, Kind: "code", Account: account, IP: meta.IPAddress, Device: device})
	if err != nil {
		return login.Result{}, err
	}
	// The code is checked and spent in the login's own commit, so that it stays usable unless
	// the session is written too; from here on, a client that goes away cannot cut that short.
	ctx, cancel := login.Detach(ctx)
	defer cancel()
	now := s.clock()
	res, err := s.d.Login.Complete(ctx, login.Request{Project: p,
		ConnectionType: connectionType(Channel(f.Channel)), AMR: amr(Channel(f.Channel)), Meta: meta,
		Spend: func(ctx context.Context, tx store.Store) (string, error) {
			v, err := s.spend(ctx, tx, p, f, code, now)
			if err != nil {
				return "", err
			}
			// In the same commit: nothing more to write stands between the login and its answer.
			return v.UserID, attempt.SucceedIn(ctx, tx)
		}})
	if errors.Is(err, errWrongSecret) {
		return login.Result{}, s.countWrong(ctx, p, f, meta, now)
	}
	if err != nil || !res.Authenticated {
		return res, err
	}
	if res.Device, err = s.d.Protect.IssueDevice(p, account); err != nil {
		return login.Result{}, err
	}
	return res, nil
}

// VerifyLink checks a magic link's secret, marking the flow verified for the device that polls
// its status, and returns where to send the browser ("" for the confirmation page).
func (s *Service) VerifyLink(ctx context.Context, p store.Project, state, secret string, meta audit.Meta) (string, error) {
	f, err := s.flow(ctx, p, []Channel{MagicLink}, state)
	if err != nil {
		return "", err
	}
	// A link's secret is 256 bits: only the load of wrong ones from one IP is bounded.
	guard := protect.Guard{Project: p, Kind: "link", Account: destinationKey(Channel(f.Channel), f.Destination), IP: meta.IPAddress}
	if err := s.d.Protect.Check(ctx, guard); err != nil {
		return "", err
	}
	if _, err := s.verify(ctx, p, f, secret, meta); err != nil {
		if fe, ok := failure.As(err); ok && (fe.Code == "invalid_code" || fe.Code == "flow_dead") {
			if ferr := s.d.Protect.Fail(ctx, guard); ferr != nil {
				return "", ferr
			}
		}
		return "", err
	}
	if f.RedirectURL == "" {
		return "", nil
	}
	u, err := url.Parse(f.RedirectURL)
	if err != nil {
		return "", fmt.Errorf("stored redirect URL of flow %s: %w", f.ID, err)
	}
	q := u.Query()
	q.Set("state", f.ID)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Status answers a magic link poll: not authenticated until the link is used, then the login
// result exactly once. Errors: flow_not_found (404).
func (s *Service) Status(ctx context.Context, p store.Project, state string, meta audit.Meta) (login.Result, error) {
	f, err := s.flow(ctx, p, []Channel{MagicLink}, state)
	if err != nil {
		return login.Result{}, err
	}
	now := s.clock()
	switch f.Status {
	case store.FlowPending:
		if !now.Before(f.ExpiresAt) {
			return login.Result{}, errFlowNotFound()
		}
		return login.Result{}, nil
	case store.FlowVerified:
	default:
		return login.Result{}, errFlowNotFound()
	}
	// Collected in the login's own commit: a login that fails leaves the link's result for the
	// next poll.
	return s.d.Login.Complete(ctx, login.Request{Project: p, ConnectionType: login.MagicLink, AMR: amr(MagicLink), Meta: meta,
		Spend: func(ctx context.Context, tx store.Store) (string, error) {
			collected, err := tx.CollectFlow(ctx, p.ID, f.ID, now)
			if errors.Is(err, store.ErrNotFound) {
				return "", errFlowNotFound() // another poll collected it first
			}
			if err != nil {
				return "", fmt.Errorf("collect flow: %w", err)
			}
			return collected.UserID, nil
		}})
}

// verify spends the flow's secret and resolves its user (creating one on sign-up) and marks
// the destination verified, all in one transaction; a wrong secret counts a try and writes a
// login.failed audit event, together.
func (s *Service) verify(ctx context.Context, p store.Project, f store.Flow, secret string, meta audit.Meta) (store.Flow, error) {
	now := s.clock()
	var out store.Flow
	err := s.d.Store.InTx(ctx, func(tx store.Store) error {
		var err error
		out, err = s.spend(ctx, tx, p, f, secret, now)
		return err
	})
	if errors.Is(err, errWrongSecret) {
		return store.Flow{}, s.countWrong(ctx, p, f, meta, now)
	}
	return out, err
}

// spend spends the flow's secret through tx and resolves its user (creating one on sign-up)
// and marks the destination verified. A wrong secret is errWrongSecret, for countWrong once
// tx is rolled back.
func (s *Service) spend(ctx context.Context, tx Store, p store.Project, f store.Flow, secret string, now time.Time) (store.Flow, error) {
	v, err := tx.VerifyFlow(ctx, p.ID, f.ID, hashSecret(f.ID, secret), now)
	if errors.Is(err, store.ErrNotFound) {
		return store.Flow{}, errWrongSecret
	}
	if err != nil {
		return store.Flow{}, fmt.Errorf("verify flow: %w", err)
	}
	u, err := s.verifiedUser(ctx, tx, p, Channel(v.Channel), v.Destination, now)
	if err != nil {
		return store.Flow{}, err
	}
	if err := tx.SetFlowUser(ctx, p.ID, v.ID, u.ID); err != nil {
		return store.Flow{}, fmt.Errorf("set flow user: %w", err)
	}
	v.UserID = u.ID
	return v, nil
}

// countWrong counts a wrong secret against the flow and writes a login.failed audit event, in
// their own commit (the refusal must not undo them), and returns the refusal: invalid_code
// with the tries left, flow_dead, or flow_not_found.
func (s *Service) countWrong(ctx context.Context, p store.Project, f store.Flow, meta audit.Meta, now time.Time) error {
	if now.After(f.ExpiresAt) || f.Status != store.FlowPending {
		return errFlowNotFound()
	}
	var failed store.Flow
	ferr := s.d.Store.InTx(ctx, func(tx store.Store) error {
		var err error
		if failed, err = tx.FailFlowAttempt(ctx, p.ID, f.ID); err != nil {
			return err
		}
		reason := "invalid_code"
		if failed.Status == store.FlowDead {
			reason = "flow_dead"
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: p.ID, Type: login.AuditFailed,
			UserID: f.UserID, IPAddress: meta.IPAddress, UserAgent: meta.UserAgent, CreatedAt: now,
			Detail: map[string]any{"connection_type": connectionType(Channel(f.Channel)), "reason": reason, "flow_id": f.ID}})
	})
	if errors.Is(ferr, store.ErrNotFound) {
		return errFlowNotFound()
	}
	if ferr != nil {
		return fmt.Errorf("count a failed try: %w", ferr)
	}
	if failed.Status == store.FlowDead {
		return failure.New(failure.Unauthenticated, "flow_dead", "too many wrong tries; start a new login")
	}
	left := failed.MaxAttempts - failed.Attempts
	return failure.New(failure.Unauthenticated, "invalid_code", "the code is wrong; %d tries left", left)
}

var errWrongSecret = errors.New("wrong secret")

// verifiedUser finds the user a verified flow reached, or signs one up, and marks the
// destination verified.
func (s *Service) verifiedUser(ctx context.Context, tx Store, p store.Project, ch Channel, dest string, now time.Time) (store.User, error) {
	u, found, err := findUser(ctx, tx, p.ID, ch, dest)
	if err != nil {
		return store.User{}, err
	}
	if !found {
		// Only reachable when sign-up was allowed at send: otherwise the flow had no known secret.
		u = store.User{ID: s.d.IDs.New(), ProjectID: p.ID, Active: true, ConnectionType: string(connectionType(ch)),
			Groups: []string{}, RawAttributes: map[string]any{}, CreatedAt: now, UpdatedAt: now}
		if ch == PhoneOTP {
			u.Phone = dest
		} else {
			u.Email = dest
		}
	}
	if !u.Active {
		return store.User{}, failure.New(failure.Forbidden, "user_inactive", "this user is deactivated")
	}
	changed := false
	if ch == PhoneOTP && !u.PhoneVerified {
		u.PhoneVerified, changed = true, true
	}
	if ch != PhoneOTP && !u.EmailVerified {
		u.EmailVerified, changed = true, true
	}
	switch {
	case !found:
		u.UpdatedAt = now
		if err := tx.CreateUser(ctx, u); err != nil {
			return store.User{}, fmt.Errorf("sign up user: %w", err)
		}
	case changed:
		u.UpdatedAt = now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return store.User{}, fmt.Errorf("mark destination verified: %w", err)
		}
	}
	return u, nil
}

func findUser(ctx context.Context, st Store, projectID string, ch Channel, dest string) (store.User, bool, error) {
	var u store.User
	var err error
	if ch == PhoneOTP {
		var us []store.User
		us, err = st.ListUsers(ctx, projectID, store.UserFilter{Phone: dest}, store.Page{Limit: 1})
		if err == nil && len(us) == 0 {
			err = store.ErrNotFound
		}
		if err == nil {
			u = us[0]
		}
	} else {
		u, err = st.GetUserByEmail(ctx, projectID, dest)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, nil
	}
	if err != nil {
		return store.User{}, false, fmt.Errorf("find user: %w", err)
	}
	return u, true, nil
}

// flow loads a flow of the project and one of the channels. Errors: flow_not_found (404).
func (s *Service) flow(ctx context.Context, p store.Project, channels []Channel, state string) (store.Flow, error) {
	state = strings.TrimSpace(state)
	if state == "" {
		return store.Flow{}, failure.InvalidField("invalid_request", "state", "is required")
	}
	if !ident.Valid(state) {
		return store.Flow{}, errFlowNotFound()
	}
	f, err := s.d.Store.GetFlow(ctx, p.ID, state)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !slices.Contains(channels, Channel(f.Channel))) {
		return store.Flow{}, errFlowNotFound()
	}
	if err != nil {
		return store.Flow{}, fmt.Errorf("get flow: %w", err)
	}
	return f, nil
}

// enqueue renders the flow's message and writes it to the outbox, sealed, through tx.
func (s *Service) enqueue(ctx context.Context, tx Store, p store.Project, settings project.Settings, f store.Flow, secret string, now time.Time) error {
	m, err := s.compose(ctx, tx, p, settings, f, secret, now)
	if err != nil {
		return err
	}
	if err := tx.EnqueueMessage(ctx, m); err != nil {
		return fmt.Errorf("enqueue message: %w", err)
	}
	return nil
}

// composeAndDrop does a dead-end flow's share of the work of sending, loading the template,
// rendering and sealing, and drops the message. Without it, a send to an address that may not
// sign up would answer measurably sooner than one to a user, and its time alone would tell
// whether an account exists. What is left between the two is the outbox INSERT.
func (s *Service) composeAndDrop(ctx context.Context, tx Store, p store.Project, settings project.Settings, f store.Flow, secret string, now time.Time) error {
	_, err := s.compose(ctx, tx, p, settings, f, secret, now)
	return err
}

// compose renders the flow's message and seals it for the outbox row it is to be.
func (s *Service) compose(ctx context.Context, tx Store, p store.Project, settings project.Settings, f store.Flow, secret string, now time.Time) (store.OutboxMessage, error) {
	ch := Channel(f.Channel)
	data := notify.TemplateData{Brand: settings.Brand(p.Name), LogoURL: settings.Branding.LogoURL, Color: settings.Branding.PrimaryColor, Expiry: humanDuration(ttl(ch, settings)), Email: f.Destination}
	if ch == MagicLink {
		q := url.Values{"client_id": {p.ClientID}, "state": {f.ID}, "magictext": {secret}}
		data.Link = s.d.PublicURL + "/api/v1/auth/passwordless/magic-link/verify?" + q.Encode()
	} else {
		data.Code = secret
	}
	return outbox.Compose(ctx, tx, s.d.Sealer, outbox.Message{ID: s.d.IDs.New(), ProjectID: p.ID,
		Channel: channelOf(ch), Recipient: f.Destination, Template: templateName(ch), Data: data, At: now,
		ExpiresAt: f.ExpiresAt})
}

// newSecret makes a code of the project's length, or a link secret of 256 bits.
func (s *Service) newSecret(ch Channel, settings project.Settings) (string, error) {
	if ch == MagicLink {
		var b [32]byte
		if _, err := io.ReadFull(s.d.Rand, b[:]); err != nil {
			return "", fmt.Errorf("read randomness: %w", err)
		}
		return base64.RawURLEncoding.EncodeToString(b[:]), nil
	}
	n := settings.Codes.Length
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(s.d.Rand, limit) // uniform: rand.Int rejects rather than biasing with a modulo
	if err != nil {
		return "", fmt.Errorf("read randomness: %w", err)
	}
	return fmt.Sprintf("%0*d", n, v), nil
}

// hashSecret binds a secret to its flow before hashing, so a code's hash says nothing about
// the same code in another flow.
func hashSecret(flowID, secret string) []byte {
	h := sha256.Sum256([]byte(flowID + "\x00" + secret))
	return h[:]
}

// storedDestination is the account's own address or number for the channel.
func storedDestination(ch Channel, u store.User) string {
	if ch == PhoneOTP {
		return u.Phone
	}
	return u.Email
}

// destinationKey is the form in which a destination is counted: an email's lookup key, or the
// E.164 number itself.
func destinationKey(ch Channel, dest string) string {
	if ch == PhoneOTP {
		return dest
	}
	return store.EmailKey(dest)
}

func normalizeDestination(ch Channel, dest string) (string, error) {
	if ch == PhoneOTP {
		return directory.NormalizePhone("phone_id", dest)
	}
	if strings.TrimSpace(dest) == "" {
		return "", failure.InvalidField("invalid_email", "email", "is required")
	}
	return directory.NormalizeEmail("email", dest)
}

func methodEnabled(s project.Settings, ch Channel) error {
	on := map[Channel]bool{MagicLink: s.LoginMethods.MagicLink, EmailOTP: s.LoginMethods.EmailOTP, PhoneOTP: s.LoginMethods.PhoneOTP}[ch]
	if !on {
		return failure.New(failure.Forbidden, "login_method_disabled", "%s login is not enabled for this project", ch)
	}
	return nil
}

func ttl(ch Channel, s project.Settings) time.Duration {
	if ch == MagicLink {
		return s.MagicLink.TTL()
	}
	return s.Codes.TTL()
}

func channelOf(ch Channel) notify.Channel {
	if ch == PhoneOTP {
		return notify.SMS
	}
	return notify.Email
}

func templateName(ch Channel) notify.TemplateName {
	switch ch {
	case MagicLink:
		return notify.MagicLink
	case PhoneOTP:
		return notify.SMSOTP
	}
	return notify.EmailOTP
}

func connectionType(ch Channel) string {
	switch ch {
	case MagicLink:
		return login.MagicLink
	case PhoneOTP:
		return login.PhoneOTP
	}
	return login.EmailOTP
}

// amr values (RFC 8176) of each channel.
func amr(ch Channel) []string {
	if ch == PhoneOTP {
		return []string{"otp", "sms"}
	}
	if ch == MagicLink {
		return []string{"email"}
	}
	return []string{"otp", "email"}
}

func humanDuration(d time.Duration) string {
	if d%time.Minute == 0 {
		m := int(d / time.Minute)
		if m == 1 {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", m)
	}
	return d.String()
}

func errFlowNotFound() error {
	return failure.New(failure.NotFound, "flow_not_found", "no such login in progress (unknown, expired or already used)")
}

func (s *Service) clock() time.Time { return s.d.Now().UTC().Truncate(time.Microsecond) }
