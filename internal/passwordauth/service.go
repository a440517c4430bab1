// Package passwordauth is passwords as a login method: sign-up, login, reset by email and
// change, with every check going through attack protection and every new password through the
// breached-password check. It is off unless a project turns login_methods.password on.
package passwordauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/notice"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/outbox"
	"github.com/latchkey-dev/latchkey/internal/password"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// Limits of the flows.
const (
	// ResetTTL is how long a reset link works.
	ResetTTL = 30 * time.Minute
	// FreshSession is how recent a sign-in must be to change the password with it.
	FreshSession = 10 * time.Minute
	// hashWait is how long a request waits for a hashing slot before being told to come back.
	hashWait = 2 * time.Second
	// resetPurpose names reset tokens among one-time secrets.
	resetPurpose = "password_reset"
	// resetDecoyPurpose names the rows written for reset requests to addresses without an
	// account: never redeemed, they only make such a request cost what a real one does.
	resetDecoyPurpose = "password_reset_decoy"
)

// Audit event types.
const (
	AuditSignedUp = "password.signed_up"
	AuditFailed   = "password.login_failed"
	AuditReset    = "password.reset"
	AuditChanged  = "password.changed"
	AuditSet      = "password.set_by_admin"
)

// Completer finishes logins (login.Service).
type Completer interface {
	Complete(ctx context.Context, r login.Request) (login.Result, error)
}

// Protector is attack protection (protect.Engine).
type Protector interface {
	Begin(ctx context.Context, g protect.Guard) (*protect.Attempt, error)
	AllowSendTx(ctx context.Context, tx protect.Store, s protect.Send) error
	UnlockIn(ctx context.Context, tx protect.Store, g protect.Guard) error
	IssueDevice(p store.Project, account string) (string, error)
	CheckIP(p store.Project, ip string) error
}

// Breached says whether a password is known from breaches or common-password lists
// (breach.Checker). An error with false means the check could not be made.
type Breached interface {
	Breached(ctx context.Context, password string) (bool, error)
}

// Sessions ends sessions (token.Service).
type Sessions interface {
	RevokeUserSessionsIn(ctx context.Context, tx token.SessionStore, projectID, userID, reason string, meta audit.Meta) (int, error)
}

// Notices tell users of changes to how they sign in (notice.Notifier).
type Notices interface {
	Notify(ctx context.Context, tx notice.Store, p store.Project, u store.User, change string) error
}

// Store is the part of the store the password flows use; its transactions use tx only through
// Store (see store.Store.InTx).
type Store interface {
	store.Users
	store.Passwords
	store.OneTimeSecrets
	store.Sessions
	store.Outbox
	store.MessageTemplates
	store.AuditEvents
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Deps are the service's dependencies.
type Deps struct {
	Store     Store
	Login     Completer
	Notices   Notices
	Protect   Protector
	Breached  Breached
	Sessions  Sessions
	Hasher    *password.Hasher
	Settings  func(store.Project) (project.Settings, error)
	Sealer    outbox.Sealer
	Delivery  func(notify.Channel) bool
	Wake      func()
	Log       *slog.Logger
	IDs       *ident.Generator
	Now       func() time.Time
	Rand      io.Reader
	MaxHashes int // concurrent hashes; 0 means 2 × GOMAXPROCS
	// EnumerationKey keys the choice of the hash an unknown user's login imitates, so that an
	// email gets the same one on every call and every instance; nil: a random key per process.
	EnumerationKey []byte
}

// Service runs the password flows.
type Service struct {
	d     Deps
	slots chan struct{}

	mixMu sync.Mutex
	mixes map[string]hashMix // by project id
}

// hashMix is a project's count of stored hashes by kind (password.Kind), as read at `at`.
type hashMix struct {
	kinds  []string
	counts []int
	total  int
	at     time.Time
}

// mixTTL is how long a project's hash mix is reused before it is counted again: the mix
// changes slowly (imports, and upgrades at first login), and counting reads every hash row.
const mixTTL = time.Minute

// New returns the service.
func New(d Deps) *Service {
	if d.IDs == nil {
		d.IDs = ident.NewGenerator()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Wake == nil {
		d.Wake = func() {}
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.MaxHashes <= 0 {
		d.MaxHashes = 2 * runtime.GOMAXPROCS(0)
	}
	if len(d.EnumerationKey) == 0 {
		d.EnumerationKey = make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, d.EnumerationKey); err != nil {
			panic(fmt.Sprintf("passwordauth: read an enumeration key: %v", err))
		}
	}
	return &Service{d: d, slots: make(chan struct{}, d.MaxHashes), mixes: map[string]hashMix{}}
}

// Signup is a new account's email, password and name.
type Signup struct {
	Email     string
	Password  string
	FirstName string
	LastName  string
}

// SignUp creates a user with a password and signs them in (the MFA policy may ask for a second
// factor first). Errors: invalid_email, password_too_short, password_too_long,
// password_breached (400), login_method_disabled, signup_disabled (403), email_exists (409).
func (s *Service) SignUp(ctx context.Context, p store.Project, in Signup, meta audit.Meta) (login.Result, error) {
	st, err := s.enabled(p)
	if err != nil {
		return login.Result{}, err
	}
	if !st.AllowSignup {
		return login.Result{}, failure.New(failure.Forbidden, "signup_disabled", "this project does not allow sign-up")
	}
	if err := s.d.Protect.CheckIP(p, meta.IPAddress); err != nil {
		return login.Result{}, err
	}
	email, err := directory.NormalizeEmail("email", in.Email)
	if err != nil {
		return login.Result{}, err
	}
	if err := directory.CheckNewEmail("email", email, st.Emails.AllowLookalikeAddresses); err != nil {
		return login.Result{}, err
	}
	hash, err := s.newHash(ctx, st, in.Password)
	if err != nil {
		return login.Result{}, err
	}
	now := s.now()
	u := store.User{ID: s.d.IDs.New(), ProjectID: p.ID, Email: email, Active: true, ConnectionType: login.Password,
		FirstName: strings.TrimSpace(in.FirstName), LastName: strings.TrimSpace(in.LastName),
		Groups: []string{}, RawAttributes: map[string]any{}, CreatedAt: now, UpdatedAt: now}
	// The account is made in the login's own commit: a sign-up whose session cannot be written
	// leaves no account behind, and the same sign-up can be tried again.
	return s.d.Login.Complete(ctx, login.Request{Project: p, ConnectionType: login.Password, AMR: []string{"pwd"}, Meta: meta,
		Spend: func(ctx context.Context, tx store.Store) (string, error) {
			if err := tx.CreateUser(ctx, u); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return "", &failure.Error{Kind: failure.Conflict, Code: "email_exists", Field: "email",
						Description: "email: a user with this email exists"}
				}
				return "", fmt.Errorf("create user: %w", err)
			}
			if err := tx.SetPasswordHash(ctx, p.ID, u.ID, hash, now); err != nil {
				return "", fmt.Errorf("set password: %w", err)
			}
			return u.ID, s.audit(ctx, tx, p, u.ID, AuditSignedUp, meta, nil)
		}})
}

// Login checks an email and password. Unknown emails, users without a password and wrong
// passwords get the same answer after the same work. Errors: invalid_email (400),
// invalid_credentials (401), login_method_disabled, user_inactive (403), and attack
// protection's refusals (429 with Retry-After).
func (s *Service) Login(ctx context.Context, p store.Project, emailIn, pw string, meta audit.Meta) (login.Result, error) {
	return s.LoginDevice(ctx, p, emailIn, pw, "", meta)
}

// LoginDevice is Login from a device that may hold a device token of the account (from an
// earlier sign-in): a valid one keeps the attempt out of the account-wide lock that strangers
// can fill. A completed sign-in carries a fresh device token (Result.Device) for the client to keep.
func (s *Service) LoginDevice(ctx context.Context, p store.Project, emailIn, pw, device string, meta audit.Meta) (login.Result, error) {
	if _, err := s.enabled(p); err != nil {
		return login.Result{}, err
	}
	email, err := directory.NormalizeEmail("email", emailIn)
	if err != nil {
		return login.Result{}, err
	}
	account := store.EmailKey(email)
	attempt, err := s.d.Protect.Begin(ctx, protect.Guard{Project: p, Kind: protect.KindPassword, Account: account, IP: meta.IPAddress, Device: device})
	if err != nil {
		return login.Result{}, err
	}
	u, hash, err := s.userAndHash(ctx, p.ID, email)
	if err != nil {
		return login.Result{}, cancel(ctx, attempt, err)
	}
	stand := ""
	if hash == "" {
		if stand, err = s.standInKind(ctx, p.ID, store.EmailKey(email)); err != nil {
			return login.Result{}, cancel(ctx, attempt, err)
		}
	}
	ok, rehash, err := s.verifyOr(ctx, hash, stand, pw)
	if err != nil {
		// server_busy or a hash that could not be read: the password was never compared.
		return login.Result{}, cancel(ctx, attempt, err)
	}
	if !ok {
		userID := ""
		if hash != "" {
			userID = u.ID
		}
		if err := s.audit(ctx, s.d.Store, p, userID, AuditFailed, meta, map[string]any{"reason": "invalid_credentials"}); err != nil {
			return login.Result{}, err
		}
		return login.Result{}, failure.New(failure.Unauthenticated, "invalid_credentials", "the email or the password is wrong")
	}
	// Accepted: a client that goes away now must not leave the success uncounted or the
	// login half done.
	ctx, stop := login.Detach(ctx)
	defer stop()
	if rehash {
		s.upgrade(ctx, p, u.ID, hash, pw)
	}
	// The success is counted in the login's commit: nothing more to write stands between the
	// login and its answer.
	res, err := s.d.Login.Complete(ctx, login.Request{Project: p, UserID: u.ID, ConnectionType: login.Password,
		AMR: []string{"pwd"}, Meta: meta, Also: attempt.SucceedIn})
	if err != nil || !res.Authenticated {
		return res, err
	}
	if res.Device, err = s.d.Protect.IssueDevice(p, account); err != nil {
		return login.Result{}, err
	}
	return res, nil
}

// cancel takes back attempt's provisional failure, for a refusal made before the secret was
// compared, and returns err.
func cancel(ctx context.Context, attempt *protect.Attempt, err error) error {
	if cerr := attempt.Cancel(ctx); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// SendReset emails a reset link to the active user with this email, if there is one; the
// answer is the same either way. The link is redirectURL (one of the project's redirect URIs)
// with the token added as ?token=. Errors: invalid_email,
// invalid_redirect_url (400), login_method_disabled (403), delivery_not_configured (503),
// attack protection's send limits (429).
func (s *Service) SendReset(ctx context.Context, p store.Project, emailIn, redirectURL, ip string) error {
	st, err := s.enabled(p)
	if err != nil {
		return err
	}
	email, err := directory.NormalizeEmail("email", emailIn)
	if err != nil {
		return err
	}
	if !slices.Contains(st.RedirectURIs, redirectURL) {
		return failure.InvalidField("invalid_redirect_url", "redirect_url", "must be one of the project's redirect URIs")
	}
	if s.d.Delivery != nil && !s.d.Delivery(notify.Email) {
		return failure.New(failure.Unavailable, "delivery_not_configured", "no email sender is configured on this server")
	}
	raw := make([]byte, 32)
	if _, err := io.ReadFull(s.d.Rand, raw); err != nil {
		return fmt.Errorf("make a reset token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	link, err := url.Parse(redirectURL)
	if err != nil {
		return fmt.Errorf("parse redirect URL: %w", err)
	}
	q := link.Query()
	q.Set("token", tok)
	link.RawQuery = q.Encode()
	now := s.now()
	err = s.d.Store.InTx(ctx, func(tx store.Store) error {
		// Counted whether or not the account exists, in the transaction that queues the message.
		// Counted by the lookup key: case variants of one address are one mailbox's budget.
		if err := s.d.Protect.AllowSendTx(ctx, tx, protect.Send{Project: p, Channel: string(notify.Email), Destination: store.EmailKey(email), IP: ip}); err != nil {
			return err
		}
		u, err := tx.GetUserByEmail(ctx, p.ID, email)
		found := err == nil && u.Active
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("find user: %w", err)
		}
		// The link goes to the address the account has, never to the one typed: the two share
		// a lookup key, and only the stored one was proven to be the owner's.
		to := email
		if found {
			to = u.Email
		}
		m, err := outbox.Compose(ctx, tx, s.d.Sealer, outbox.Message{ID: s.d.IDs.New(), ProjectID: p.ID, Channel: notify.Email,
			Recipient: to, Template: notify.PasswordReset, At: now, ExpiresAt: now.Add(ResetTTL),
			Data: notify.TemplateData{Link: link.String(), Brand: st.Brand(p.Name), LogoURL: st.Branding.LogoURL, Color: st.Branding.PrimaryColor, Expiry: "30 minutes", Email: to}})
		if err != nil {
			return err
		}
		if !found {
			// No account: the message is composed all the same and a token row is written
			// under a purpose nothing redeems, so that the answer costs what a real one does
			// (the write and its commit are most of it; the outbox INSERT is what is left).
			if err := tx.CreateOneTimeSecret(ctx, store.OneTimeSecret{ID: s.d.IDs.New(), ProjectID: p.ID, Purpose: resetDecoyPurpose,
				Hash: hashToken(tok), Subject: "", CreatedAt: now, ExpiresAt: now.Add(ResetTTL)}); err != nil {
				return fmt.Errorf("store a decoy reset token: %w", err)
			}
			return nil
		}
		if err := tx.CreateOneTimeSecret(ctx, store.OneTimeSecret{ID: s.d.IDs.New(), ProjectID: p.ID, Purpose: resetPurpose,
			Hash: hashToken(tok), Subject: u.ID, CreatedAt: now, ExpiresAt: now.Add(ResetTTL)}); err != nil {
			return fmt.Errorf("store reset token: %w", err)
		}
		return tx.EnqueueMessage(ctx, m)
	})
	if err != nil {
		return err
	}
	s.d.Wake()
	return nil
}

// Reset sets a new password with a reset token, once. The token proves control of the email:
// the email becomes verified, a lock on the account's passwords lifts, every session ends
// (whoever knew the old password is signed out), and the user's other reset links stop working. Errors: password_too_short,
// password_too_long, password_breached (400), invalid_reset_token (401).
func (s *Service) Reset(ctx context.Context, p store.Project, tok, newPassword string, meta audit.Meta) error {
	st, err := s.enabled(p)
	if err != nil {
		return err
	}
	// Checked before the token is spent, so a refused password does not burn the link.
	hash, err := s.newHash(ctx, st, newPassword)
	if err != nil {
		return err
	}
	now := s.now()
	var u store.User
	err = s.d.Store.InTx(ctx, func(tx store.Store) error {
		secret, err := tx.ConsumeOneTimeSecret(ctx, p.ID, resetPurpose, hashToken(strings.TrimSpace(tok)), now)
		if errors.Is(err, store.ErrNotFound) {
			return failure.New(failure.Unauthenticated, "invalid_reset_token", "the reset link is not valid: ask for a new one")
		}
		if err != nil {
			return fmt.Errorf("use reset token: %w", err)
		}
		if u, err = tx.GetUser(ctx, p.ID, secret.Subject); err != nil {
			return failure.New(failure.Unauthenticated, "invalid_reset_token", "the reset link is not valid: ask for a new one")
		}
		if err := tx.SetPasswordHash(ctx, p.ID, u.ID, hash, now); err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		// Other links sent before this one die with it: an old email must not reset again.
		if _, err := tx.ConsumeSubjectSecrets(ctx, p.ID, resetPurpose, u.ID, now); err != nil {
			return fmt.Errorf("void other reset links: %w", err)
		}
		if !u.EmailVerified {
			u.EmailVerified, u.UpdatedAt = true, now
			if err := tx.UpdateUser(ctx, u); err != nil {
				return fmt.Errorf("mark email verified: %w", err)
			}
		}
		if err := s.d.Notices.Notify(ctx, tx, p, u, notice.PasswordReset); err != nil {
			return err
		}
		// The owner proved control of the email: the lock lifts and every session ends in the
		// commit that sets the password, so that no crash leaves one done without the others.
		if err := s.d.Protect.UnlockIn(ctx, tx, protect.Guard{Project: p, Kind: protect.KindPassword, Account: store.EmailKey(u.Email), IP: meta.IPAddress}); err != nil {
			return err
		}
		if _, err := s.d.Sessions.RevokeUserSessionsIn(ctx, tx, p.ID, u.ID, "password_reset", meta); err != nil {
			return err
		}
		return s.audit(ctx, tx, p, u.ID, AuditReset, meta, nil)
	})
	if err != nil {
		return err
	}
	s.d.Wake()
	return nil
}

// Change replaces the signed-in user's password, given the current one, from a sign-in of the
// last FreshSession; the user's other sessions end. Errors: as Reset's, and invalid_credentials
// (401), reauthentication_required (403).
func (s *Service) Change(ctx context.Context, p store.Project, sess store.Session, current, newPassword string, meta audit.Meta) error {
	st, err := s.enabled(p)
	if err != nil {
		return err
	}
	if s.now().Sub(sess.CreatedAt) > FreshSession {
		return failure.New(failure.Forbidden, "reauthentication_required",
			"sign in again: changing the password needs a sign-in from the last %d minutes", int(FreshSession/time.Minute))
	}
	u, err := s.d.Store.GetUser(ctx, p.ID, sess.UserID)
	if err != nil {
		return fmt.Errorf("get user %s: %w", sess.UserID, err)
	}
	attempt, err := s.d.Protect.Begin(ctx, protect.Guard{Project: p, Kind: protect.KindPassword, Account: store.EmailKey(u.Email), IP: meta.IPAddress})
	if err != nil {
		return err
	}
	old, err := s.d.Store.GetPasswordHash(ctx, p.ID, u.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return cancel(ctx, attempt, fmt.Errorf("get password: %w", err))
	}
	ok, _, err := s.verify(ctx, old, current)
	if err != nil {
		return cancel(ctx, attempt, err)
	}
	if !ok {
		return failure.New(failure.Unauthenticated, "invalid_credentials", "the current password is wrong")
	}
	if err := attempt.Succeed(ctx); err != nil {
		return err
	}
	hash, err := s.newHash(ctx, st, newPassword)
	if err != nil {
		return err
	}
	now := s.now()
	err = s.d.Store.InTx(ctx, func(tx store.Store) error {
		if err := tx.SetPasswordHash(ctx, p.ID, u.ID, hash, now); err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		sessions, err := tx.ListUserSessions(ctx, p.ID, u.ID, now)
		if err != nil {
			return fmt.Errorf("list sessions: %w", err)
		}
		for _, other := range sessions {
			if other.ID != sess.ID {
				if err := tx.RevokeSession(ctx, p.ID, other.ID, now, "password_changed"); err != nil && !errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("revoke session %s: %w", other.ID, err)
				}
			}
		}
		if err := s.d.Notices.Notify(ctx, tx, p, u, notice.PasswordChanged); err != nil {
			return err
		}
		return s.audit(ctx, tx, p, u.ID, AuditChanged, meta, map[string]any{"sessions_revoked": len(sessions) - 1})
	})
	if err == nil {
		s.d.Wake()
	}
	return err
}

// SetByAdmin sets a user's password from the management API: a new password (checked like a
// user's) or, to import users, an existing hash (argon2id PHC or bcrypt), which is upgraded to
// the server's argon2id at the user's first login. Errors: invalid_request,
// password_too_short, password_too_long, password_breached, invalid_password_hash (400),
// user_not_found (404).
func (s *Service) SetByAdmin(ctx context.Context, p store.Project, userID, pw, importHash string, meta audit.Meta) error {
	st, err := s.d.Settings(p)
	if err != nil {
		return err
	}
	var hash string
	switch {
	case (pw == "") == (importHash == ""):
		return failure.New(failure.Invalid, "invalid_request", "give either password or password_hash")
	case importHash != "":
		if _, _, err := s.d.Hasher.Verify(importHash, "latchkey import check"); err != nil {
			return failure.InvalidField("invalid_password_hash", "password_hash",
				"must be an argon2id PHC string or a bcrypt hash ($2a$, $2b$, $2y$) within the accepted costs")
		}
		hash = importHash
	default:
		if hash, err = s.newHash(ctx, st, pw); err != nil {
			return err
		}
	}
	now := s.now()
	err = s.d.Store.InTx(ctx, func(tx store.Store) error {
		if err := tx.SetPasswordHash(ctx, p.ID, userID, hash, now); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return failure.New(failure.NotFound, "user_not_found", "user not found")
			}
			return fmt.Errorf("set password: %w", err)
		}
		if importHash == "" { // an import is a migration, not news to the user
			u, err := tx.GetUser(ctx, p.ID, userID)
			if err != nil {
				return fmt.Errorf("get user %s: %w", userID, err)
			}
			if err := s.d.Notices.Notify(ctx, tx, p, u, notice.PasswordSet); err != nil {
				return err
			}
		}
		return s.audit(ctx, tx, p, userID, AuditSet, meta, map[string]any{"imported": importHash != ""})
	})
	if err == nil {
		s.d.Wake()
	}
	return err
}

// newHash checks a new password (length, breached lists) and hashes it.
func (s *Service) newHash(ctx context.Context, st project.Settings, pw string) (string, error) {
	if err := password.Check(pw, st.Password.MinLength); err != nil {
		return "", err
	}
	if s.d.Breached != nil {
		breached, err := s.d.Breached.Breached(ctx, pw)
		if err != nil {
			// The online check is down; the offline list was consulted. Never block sign-up on it.
			s.d.Log.WarnContext(ctx, "breached-password check failed", "err", err)
		}
		if breached {
			return "", failure.InvalidField("password_breached", "password",
				"this password is in lists of common or breached passwords: choose another")
		}
	}
	release, err := s.slot(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return s.d.Hasher.Hash(pw)
}

// verify checks pw against an encoded hash; "" (no such user, or no password) does the same
// work as for an argon2id hash and fails.
func (s *Service) verify(ctx context.Context, hash, pw string) (bool, bool, error) {
	return s.verifyOr(ctx, hash, password.KindArgon2id, pw)
}

// verifyOr is verify where an empty hash does the work of a hash of the kind standIn.
func (s *Service) verifyOr(ctx context.Context, hash, standIn, pw string) (bool, bool, error) {
	release, err := s.slot(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	if hash == "" {
		s.d.Hasher.DummyVerifyKind(standIn, pw)
		return false, false, nil
	}
	ok, rehash, err := s.d.Hasher.Verify(hash, pw)
	if err != nil {
		return false, false, fmt.Errorf("verify password: %w", err)
	}
	return ok, rehash, nil
}

// slot bounds concurrent hashing: each takes 19 MiB and a core for ~25 ms, so a burst of
// logins must queue briefly, then be told to come back, rather than exhaust memory.
func (s *Service) slot(ctx context.Context) (func(), error) {
	t := time.NewTimer(hashWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-t.C:
		return nil, failure.TooManyUntil(time.Second, "server_busy", "too many sign-ins at once: try again in a second")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// upgrade rehashes a password whose hash is weaker than the server's (an imported bcrypt hash,
// older argon2id parameters). A failure only delays the upgrade to the next login.
func (s *Service) upgrade(ctx context.Context, p store.Project, userID, old, pw string) {
	release, err := s.slot(ctx)
	if err != nil {
		return
	}
	hash, err := s.d.Hasher.Hash(pw)
	release()
	if err != nil {
		s.d.Log.WarnContext(ctx, "rehash password", "user_id", userID, "err", err)
		return
	}
	if err := s.d.Store.UpgradePasswordHash(ctx, p.ID, userID, old, hash, s.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.d.Log.WarnContext(ctx, "store rehashed password", "user_id", userID, "err", err)
	}
}

// standInKind picks the kind of hash whose verification a login for an email without a
// password imitates: drawn from the project's stored hashes in their proportions, with the
// email's lookup key and the enumeration key as the die, so the same email always costs the
// same. While a share of the users are on imported bcrypt hashes (slow until their first login
// rehashes them), that share of unknown emails is as slow, and a slow answer says nothing
// about whether an account exists.
func (s *Service) standInKind(ctx context.Context, projectID, emailKey string) (string, error) {
	mix, err := s.hashMix(ctx, projectID)
	if err != nil {
		return "", err
	}
	if mix.total == 0 {
		return password.KindArgon2id, nil
	}
	mac := hmac.New(sha256.New, s.d.EnumerationKey)
	mac.Write([]byte("password stand-in\x00" + projectID + "\x00" + emailKey))
	// A point in [0, 1) that stays put while the mix moves: when the counts change (a sign-up,
	// an upgrade at login), only the emails whose point lies where the boundaries moved change
	// kind, as few as the users whose hashes changed, rather than every email at random, which
	// would let anyone who signs up watch a target email flip and know it has no account.
	point := float64(binary.BigEndian.Uint64(mac.Sum(nil)[:8])>>11) / (1 << 53)
	seen := 0
	for i, n := range mix.counts {
		seen += n
		if point < float64(seen)/float64(mix.total) {
			return mix.kinds[i], nil
		}
	}
	return mix.kinds[len(mix.kinds)-1], nil
}

// hashMix returns the project's hash mix, counted at most mixTTL ago.
func (s *Service) hashMix(ctx context.Context, projectID string) (hashMix, error) {
	now := s.d.Now()
	s.mixMu.Lock()
	m, ok := s.mixes[projectID]
	s.mixMu.Unlock()
	if ok && now.Sub(m.at) < mixTTL && !now.Before(m.at) {
		return m, nil
	}
	counts, err := s.d.Store.CountPasswordHashPrefixes(ctx, projectID)
	if err != nil {
		return hashMix{}, fmt.Errorf("count password hashes: %w", err)
	}
	m = hashMix{at: now}
	for _, c := range counts {
		kind := password.Kind(c.Prefix)
		if kind == "" {
			continue
		}
		if i := slices.Index(m.kinds, kind); i >= 0 {
			m.counts[i] += c.Count
		} else {
			m.kinds, m.counts = append(m.kinds, kind), append(m.counts, c.Count)
		}
		m.total += c.Count
	}
	s.mixMu.Lock()
	s.mixes[projectID] = m
	s.mixMu.Unlock()
	return m, nil
}

func (s *Service) userAndHash(ctx context.Context, projectID, email string) (store.User, string, error) {
	u, err := s.d.Store.GetUserByEmail(ctx, projectID, email)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, "", nil
	}
	if err != nil {
		return store.User{}, "", fmt.Errorf("find user: %w", err)
	}
	hash, err := s.d.Store.GetPasswordHash(ctx, projectID, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return u, "", nil
	}
	if err != nil {
		return store.User{}, "", fmt.Errorf("get password: %w", err)
	}
	return u, hash, nil
}

func (s *Service) enabled(p store.Project) (project.Settings, error) {
	st, err := s.d.Settings(p)
	if err != nil {
		return project.Settings{}, err
	}
	if !st.LoginMethods.Password {
		return project.Settings{}, failure.New(failure.Forbidden, "login_method_disabled", "password login is not enabled for this project")
	}
	return st, nil
}

func (s *Service) audit(ctx context.Context, st store.AuditEvents, p store.Project, userID, typ string, meta audit.Meta, detail map[string]any) error {
	if err := st.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: p.ID, Type: typ, UserID: userID,
		IPAddress: meta.IPAddress, UserAgent: meta.UserAgent, Detail: detail, CreatedAt: s.now()}); err != nil {
		return fmt.Errorf("write audit event %s: %w", typ, err)
	}
	return nil
}

func (s *Service) now() time.Time { return s.d.Now().UTC().Truncate(time.Microsecond) }

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte("latchkey password reset\x00" + tok))
	return h[:]
}
