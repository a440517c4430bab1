package passkey

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/notice"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Limits of the ceremonies.
const (
	// CeremonyTTL is how long options stay usable: the finish call must come within it.
	CeremonyTTL = 5 * time.Minute
	// maxCredentialIDLen is WebAuthn's bound on a credential id (§5.1: at most 1023 bytes).
	maxCredentialIDLen = 1023
	// handleLen is the size of a user handle: random, at most 64 bytes by the spec.
	handleLen = 32
	// maxNameLen bounds a credential's display name.
	maxNameLen = 100
)

// Completer finishes a login (login.Service).
type Completer interface {
	Complete(ctx context.Context, r login.Request) (login.Result, error)
}

// Store is the part of the store the passkey service uses; its transactions use tx only through
// Store (see store.Store.InTx).
type Store interface {
	store.Users
	store.Passkeys
	store.Ceremonies
	store.Outbox
	store.MessageTemplates
	store.AuditEvents
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Deps are the service's dependencies.
type Deps struct {
	Store Store
	Login Completer
	// Guard throttles an IP that presents many failing assertions (protect.Engine); nil: none.
	Guard Guard
	// Notices tell users a passkey was added or removed (notice.Notifier); Wake sends them.
	Notices  Notices
	Wake     func()
	Settings func(p store.Project) (project.Settings, error)
	// PublicURL is the server's own URL: its origin is always allowed (the hosted pages live
	// there) and its host is the RP id of a project that names no origin.
	PublicURL string
	// EnumerationKey keys the stand-in credentials shown for identifiers that have no passkey,
	// so that they are stable across calls and instances but cannot be told from real ones.
	EnumerationKey []byte
	IDs            *ident.Generator
	Now            func() time.Time
	Rand           io.Reader
	Log            *slog.Logger
}

// Guard is attack protection for assertions, which cannot be guessed: only the load of failing
// ones from one IP is bounded.
type Guard interface {
	Check(ctx context.Context, g protect.Guard) error
	Fail(ctx context.Context, g protect.Guard) error
}

// Notices tell users of changes to how they sign in (notice.Notifier).
type Notices interface {
	Notify(ctx context.Context, tx notice.Store, p store.Project, u store.User, change string) error
}

// Service runs WebAuthn registration and login ceremonies and manages credentials.
type Service struct {
	d          Deps
	publicHost string
	origin     string
}

// New returns the service.
func New(d Deps) (*Service, error) {
	u, err := url.Parse(d.PublicURL)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("public URL %q has no host", d.PublicURL)
	}
	if d.IDs == nil {
		d.IDs = ident.NewGenerator()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if len(d.EnumerationKey) == 0 {
		d.EnumerationKey = make([]byte, 32)
		if _, err := io.ReadFull(d.Rand, d.EnumerationKey); err != nil {
			return nil, fmt.Errorf("make an enumeration key: %w", err)
		}
	}
	return &Service{d: d, publicHost: u.Hostname(), origin: u.Scheme + "://" + u.Host}, nil
}

// Options is what starting a ceremony answers: the code that ties the finish call to it, and
// the options for navigator.credentials.create() or .get().
type Options struct {
	AuthCode  string `json:"auth_code"`
	PublicKey any    `json:"publicKey"`
}

// relyingParty is a project's WebAuthn relying party.
type relyingParty struct {
	wa       *webauthn.WebAuthn
	settings project.Settings
	uv       protocol.UserVerificationRequirement
}

func (s *Service) relyingParty(p store.Project) (relyingParty, error) {
	st, err := s.d.Settings(p)
	if err != nil {
		return relyingParty{}, err
	}
	if !st.LoginMethods.Passkey {
		return relyingParty{}, failure.New(failure.Forbidden, "passkeys_disabled", "passkeys are not enabled for this project")
	}
	name := st.Passkey.RPName
	if name == "" {
		name = st.Brand(p.Name)
	}
	uv := protocol.VerificationPreferred
	if st.Passkey.UserVerification == project.UserVerificationRequired {
		uv = protocol.VerificationRequired
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:                  st.EffectiveRPID(s.publicHost),
		RPDisplayName:         name,
		RPOrigins:             s.origins(st),
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   uv,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
		},
	})
	if err != nil {
		return relyingParty{}, fmt.Errorf("relying party of project %s: %w", p.ID, err)
	}
	return relyingParty{wa: wa, settings: st, uv: uv}, nil
}

// origins are the origins a ceremony may come from: the project's allowed origins and the
// server's own (its hosted pages).
func (s *Service) origins(st project.Settings) []string {
	out := []string{s.origin}
	for _, o := range st.AllowedOrigins {
		if o != s.origin {
			out = append(out, o)
		}
	}
	return out
}

// RelatedOrigins lists the origins of the project for /.well-known/webauthn.
func (s *Service) RelatedOrigins(p store.Project) ([]string, error) {
	st, err := s.d.Settings(p)
	if err != nil {
		return nil, err
	}
	return s.origins(st), nil
}

// RPID returns the project's relying party id.
func (s *Service) RPID(p store.Project) (string, error) {
	st, err := s.d.Settings(p)
	if err != nil {
		return "", err
	}
	return st.EffectiveRPID(s.publicHost), nil
}

func (s *Service) now() time.Time { return s.d.Now().UTC().Truncate(time.Microsecond) }

func invalidAuthCode() error {
	return failure.New(failure.Unauthenticated, "invalid_auth_code",
		"the auth_code is unknown, expired or already used: start the ceremony again")
}

func invalidResponse(err error) error {
	fe := failure.New(failure.Invalid, "invalid_passkey_response", "the authenticator response is malformed")
	fe.Err = err
	return fe
}

func verificationFailed(err error) error {
	fe := failure.New(failure.Unauthenticated, "passkey_verification_failed", "the passkey response did not verify")
	fe.Err = err
	return fe
}

func cloneSuspected() error {
	return failure.New(failure.Unauthenticated, "passkey_clone_suspected",
		"this passkey's signature counter went backwards, so a copy of it may exist; it is blocked until removed")
}
