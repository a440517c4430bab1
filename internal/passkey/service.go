package passkey

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// Limits of the ceremonies.
const (
	// CeremonyTTL is how long options stay usable: the finish call must come within it.
	CeremonyTTL = 5 * time.Minute
	// ceremonyRetention is how long finished and expired ceremonies stay readable by the status
	// route before they are removed.
	ceremonyRetention = 24 * time.Hour
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

// Deps are the service's dependencies.
type Deps struct {
	Store    store.Store
	Login    Completer
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
		name = st.Branding.DisplayName
	}
	if name == "" {
		name = p.Name
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

// credentialParameters are the algorithms asked for, in order of preference.
var credentialParameters = []protocol.CredentialParameter{
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgEdDSA},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgRS256},
}

// BeginRegistration starts adding a passkey to a signed-in user's account.
func (s *Service) BeginRegistration(ctx context.Context, p store.Project, userID string) (Options, error) {
	rp, err := s.relyingParty(p)
	if err != nil {
		return Options{}, err
	}
	u, err := s.loadUser(ctx, p.ID, userID, true)
	if err != nil {
		return Options{}, err
	}
	creation, session, err := rp.wa.BeginRegistration(u,
		webauthn.WithCredentialParameters(credentialParameters),
		webauthn.WithExclusions(webauthn.Credentials(u.creds).CredentialDescriptors()),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		return Options{}, fmt.Errorf("begin registration: %w", err)
	}
	// Only logins started with an identifier are found by the status route: reporting
	// registrations or discoverable logins under a user's email would tell anyone who asks
	// that the account exists.
	code, err := s.startCeremony(ctx, p.ID, store.CeremonyRegister, u.ID, "", session)
	if err != nil {
		return Options{}, err
	}
	return Options{AuthCode: code, PublicKey: creation.Response}, nil
}

// FinishRegistration checks the authenticator's response to the options of authCode and stores
// the new credential.
func (s *Service) FinishRegistration(ctx context.Context, p store.Project, userID, authCode string, response []byte) (store.Passkey, error) {
	rp, err := s.relyingParty(p)
	if err != nil {
		return store.Passkey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return store.Passkey{}, invalidResponse(err)
	}
	c, session, err := s.useCeremony(ctx, p.ID, store.CeremonyRegister, authCode)
	if err != nil {
		return store.Passkey{}, err
	}
	pk, err := s.register(ctx, rp, p, userID, c, session, parsed)
	status := store.CeremonyCompleted
	if err != nil {
		status = store.CeremonyFailed
	}
	s.finishCeremony(ctx, c, status, "", "")
	return pk, err
}

func (s *Service) register(ctx context.Context, rp relyingParty, p store.Project, userID string, c store.Ceremony,
	session webauthn.SessionData, parsed *protocol.ParsedCredentialCreationData) (store.Passkey, error) {
	if c.UserID != userID {
		// Another user's options: the code proves nothing about this caller.
		return store.Passkey{}, invalidAuthCode()
	}
	u, err := s.loadUser(ctx, p.ID, userID, true)
	if err != nil {
		return store.Passkey{}, err
	}
	cred, err := rp.wa.CreateCredential(u, session, parsed)
	if err != nil {
		return store.Passkey{}, verificationFailed(err)
	}
	if len(cred.ID) == 0 || len(cred.ID) > maxCredentialIDLen {
		return store.Passkey{}, failure.New(failure.Invalid, "invalid_passkey_response", "the credential id must be 1 to %d bytes", maxCredentialIDLen)
	}
	now := s.now()
	pk := store.Passkey{
		ID: s.d.IDs.New(), ProjectID: p.ID, UserID: userID, CredentialID: cred.ID, PublicKey: cred.PublicKey,
		SignCount: cred.Authenticator.SignCount, AAGUID: cred.Authenticator.AAGUID, Transports: transports(cred.Transport),
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState, UserVerified: cred.Flags.UserVerified,
		AttestationType: cred.AttestationType, AttestationFormat: cred.AttestationFormat,
		Name: ProviderName(cred.Authenticator.AAGUID), CreatedAt: now, UpdatedAt: now,
	}
	err = s.d.Store.InTx(ctx, func(tx store.Store) error {
		if err := tx.CreatePasskey(ctx, pk); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: p.ID, Type: "passkey.registered",
			UserID: userID, Detail: map[string]any{"passkey_id": pk.ID, "name": pk.Name}, CreatedAt: now})
	})
	if errors.Is(err, store.ErrConflict) {
		return store.Passkey{}, failure.New(failure.Conflict, "passkey_exists", "this passkey is already registered")
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Passkey{}, failure.New(failure.NotFound, "user_not_found", "no such user")
	}
	if err != nil {
		return store.Passkey{}, fmt.Errorf("store passkey: %w", err)
	}
	return pk, nil
}

// BeginLogin starts a login. With an identifier (email or phone) the options list that user's
// passkeys; without one they ask the browser for any passkey of the site (discoverable login,
// autofill). An identifier that names no user, or a user without passkeys, gets stand-in
// credentials that look like real ones, so the answer does not tell whether an account exists.
func (s *Service) BeginLogin(ctx context.Context, p store.Project, identifier string) (Options, error) {
	rp, err := s.relyingParty(p)
	if err != nil {
		return Options{}, err
	}
	s.sweep(ctx)
	key := IdentifierKey(identifier)
	var (
		assertion *protocol.CredentialAssertion
		session   *webauthn.SessionData
		userID    string
	)
	switch {
	case key == "":
		assertion, session, err = rp.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(rp.uv))
	default:
		u, found, lerr := s.findUser(ctx, p.ID, key)
		if lerr != nil {
			return Options{}, lerr
		}
		if found && len(u.creds) > 0 {
			userID = u.ID
			assertion, session, err = rp.wa.BeginLogin(u, webauthn.WithUserVerification(rp.uv))
		} else {
			assertion, session, err = rp.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(rp.uv),
				webauthn.WithAllowedCredentials(s.standIns(p.ID, key)))
		}
	}
	if err != nil {
		return Options{}, fmt.Errorf("begin login: %w", err)
	}
	code, err := s.startCeremony(ctx, p.ID, store.CeremonyLogin, userID, key, session)
	if err != nil {
		return Options{}, err
	}
	return Options{AuthCode: code, PublicKey: assertion.Response}, nil
}

// FinishLogin checks an assertion against the options of authCode and completes the login.
func (s *Service) FinishLogin(ctx context.Context, p store.Project, authCode string, response []byte, meta token.Meta) (login.Result, error) {
	rp, err := s.relyingParty(p)
	if err != nil {
		return login.Result{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return login.Result{}, invalidResponse(err)
	}
	c, session, err := s.useCeremony(ctx, p.ID, store.CeremonyLogin, authCode)
	if err != nil {
		return login.Result{}, err
	}
	u, use, err := s.assert(ctx, rp, p, c, session, parsed, meta)
	if err != nil {
		s.finishCeremony(ctx, c, store.CeremonyFailed, "", "")
		return login.Result{}, err
	}
	amr := []string{"pk"}
	if parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
		// A passkey that verified its user (PIN, biometrics) is something held and something
		// known or been: two factors.
		amr = append(amr, "mfa")
	}
	res, err := s.d.Login.Complete(ctx, login.Request{Project: p, UserID: u.ID, ConnectionType: login.Passkey,
		AMR: amr, Meta: meta, Also: func(ctx context.Context, tx store.Store) error {
			// The new sign count and the ceremony's outcome commit with the session.
			_, err := tx.RecordPasskeyUse(ctx, p.ID, use.id, use.PasskeyUse)
			if errors.Is(err, store.ErrConflict) {
				return failure.New(failure.Conflict, "passkey_in_use", "this passkey was used by another login at the same moment; try again")
			}
			if err != nil {
				return fmt.Errorf("record passkey use: %w", err)
			}
			return tx.FinishCeremony(ctx, p.ID, c.ID, store.CeremonyCompleted, u.ID, "", use.At)
		}})
	if err != nil {
		s.finishCeremony(ctx, c, store.CeremonyFailed, u.ID, "")
		return login.Result{}, err
	}
	s.d.Log.InfoContext(ctx, "passkey login", "project_id", p.ID, "user_id", u.ID, "passkey_id", use.id)
	return res, nil
}

// pendingUse is what a verified assertion will change in its credential record.
type pendingUse struct {
	id string
	store.PasskeyUse
}

// assert verifies the assertion and returns the use to record.
func (s *Service) assert(ctx context.Context, rp relyingParty, p store.Project, c store.Ceremony,
	session webauthn.SessionData, parsed *protocol.ParsedCredentialAssertionData, meta token.Meta) (*user, pendingUse, error) {
	stored, err := s.d.Store.GetPasskeyByCredentialID(ctx, p.ID, parsed.RawID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, pendingUse{}, failure.New(failure.Unauthenticated, "passkey_not_registered", "this passkey is not registered")
	}
	if err != nil {
		return nil, pendingUse{}, fmt.Errorf("find passkey: %w", err)
	}
	if c.IdentifierKey != "" && c.UserID == "" {
		// The options named an identifier with no passkey: nothing can answer them.
		return nil, pendingUse{}, failure.New(failure.Unauthenticated, "passkey_not_registered", "this passkey is not registered")
	}
	if c.UserID != "" && stored.UserID != c.UserID {
		return nil, pendingUse{}, failure.New(failure.Unauthenticated, "passkey_not_registered", "this passkey is not registered for this account")
	}
	u, err := s.loadUser(ctx, p.ID, stored.UserID, false)
	if err != nil {
		return nil, pendingUse{}, err
	}
	var cred *webauthn.Credential
	if len(session.UserID) > 0 {
		cred, err = rp.wa.ValidateLogin(u, session, parsed)
	} else {
		_, cred, err = rp.wa.ValidatePasskeyLogin(func(rawID, handle []byte) (webauthn.User, error) {
			if !bytes.Equal(handle, u.handle) {
				return nil, errors.New("the user handle is not the credential's")
			}
			return u, nil
		}, session, parsed)
	}
	if err != nil {
		return nil, pendingUse{}, verificationFailed(err)
	}
	if cred.Flags.BackupEligible != stored.BackupEligible {
		return nil, pendingUse{}, verificationFailed(errors.New("backup eligibility changed"))
	}
	// Only the holder of the key learns, after the signature checked out, that the credential
	// or its user is blocked.
	if stored.CloneSuspected {
		return nil, pendingUse{}, cloneSuspected()
	}
	if !u.Active {
		return nil, pendingUse{}, failure.New(failure.Forbidden, "user_inactive", "this user is deactivated")
	}
	now := s.now()
	if cred.Authenticator.CloneWarning {
		// The counter went backwards or stood still: two copies of the key may be in use. Refuse,
		// and keep refusing until the owner removes the credential.
		if err := s.d.Store.InTx(ctx, func(tx store.Store) error {
			if err := tx.FlagPasskeyClone(ctx, p.ID, stored.ID, now); err != nil {
				return err
			}
			return tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: p.ID, Type: "passkey.clone_suspected",
				UserID: stored.UserID, IPAddress: meta.IPAddress, UserAgent: meta.UserAgent, CreatedAt: now,
				Detail: map[string]any{"passkey_id": stored.ID, "stored_sign_count": stored.SignCount,
					"presented_sign_count": parsed.Response.AuthenticatorData.Counter}})
		}); err != nil {
			return nil, pendingUse{}, fmt.Errorf("flag passkey %s: %w", stored.ID, err)
		}
		s.d.Log.WarnContext(ctx, "passkey sign count went backwards: credential flagged", "project_id", p.ID,
			"user_id", stored.UserID, "passkey_id", stored.ID)
		return nil, pendingUse{}, cloneSuspected()
	}
	return u, pendingUse{id: stored.ID, PasskeyUse: store.PasskeyUse{PrevSignCount: stored.SignCount,
		SignCount: cred.Authenticator.SignCount, BackupState: cred.Flags.BackupState,
		UserVerified: cred.Flags.UserVerified, At: now}}, nil
}

// Status is the state of the newest ceremony of an identifier.
type Status struct {
	Status    string     `json:"status"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Status reports the newest ceremony for identifier: pending, completed, expired, failed or
// not_found.
func (s *Service) Status(ctx context.Context, p store.Project, identifier string) (Status, error) {
	if _, err := s.relyingParty(p); err != nil {
		return Status{}, err
	}
	key := IdentifierKey(identifier)
	if key == "" {
		return Status{}, failure.InvalidField("invalid_identifier", "identifier", "is required")
	}
	c, err := s.d.Store.LatestCeremony(ctx, p.ID, key)
	if errors.Is(err, store.ErrNotFound) {
		return Status{Status: "not_found"}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("passkey status: %w", err)
	}
	exp := c.ExpiresAt
	out := Status{Status: c.Status, ExpiresAt: &exp}
	switch {
	case c.Status == store.CeremonyUsed:
		out.Status = store.CeremonyPending // being checked right now
	case c.Status == store.CeremonyPending && !s.now().Before(c.ExpiresAt):
		out.Status = "expired"
	}
	return out, nil
}

// List returns a user's passkeys, oldest first.
func (s *Service) List(ctx context.Context, p store.Project, userID string) ([]store.Passkey, error) {
	out, err := s.d.Store.ListPasskeys(ctx, p.ID, userID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	return out, nil
}

// Rename renames one of the user's passkeys.
func (s *Service) Rename(ctx context.Context, p store.Project, userID, id, name string) (store.Passkey, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > maxNameLen || strings.ContainsFunc(name, isControl) {
		return store.Passkey{}, failure.InvalidField("invalid_name", "name", fmt.Sprintf("must be 1 to %d characters without control characters", maxNameLen))
	}
	var pk store.Passkey
	err := s.d.Store.InTx(ctx, func(tx store.Store) error {
		var err error
		if pk, err = tx.RenamePasskey(ctx, p.ID, userID, id, name, s.now()); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: p.ID, Type: "passkey.renamed",
			UserID: userID, Detail: map[string]any{"passkey_id": id}, CreatedAt: s.now()})
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Passkey{}, passkeyNotFound()
	}
	if err != nil {
		return store.Passkey{}, fmt.Errorf("rename passkey: %w", err)
	}
	return pk, nil
}

// Delete removes one of the user's passkeys. The last passkey of a user who has no verified
// email or phone is their only way in, so removing it is refused.
func (s *Service) Delete(ctx context.Context, p store.Project, userID, id string) error {
	err := s.d.Store.InTx(ctx, func(tx store.Store) error {
		u, err := tx.GetUser(ctx, p.ID, userID)
		if err != nil {
			return err
		}
		pks, err := tx.ListPasskeys(ctx, p.ID, userID)
		if err != nil {
			return err
		}
		owned := false
		for _, pk := range pks {
			owned = owned || pk.ID == id
		}
		if !owned {
			return passkeyNotFound()
		}
		if len(pks) == 1 && !u.EmailVerified && !u.PhoneVerified {
			return failure.New(failure.Conflict, "last_sign_in_method",
				"this passkey is the account's only way to sign in: verify an email or phone, or add another passkey, first")
		}
		if err := tx.DeletePasskey(ctx, p.ID, userID, id); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: p.ID, Type: "passkey.deleted",
			UserID: userID, Detail: map[string]any{"passkey_id": id}, CreatedAt: s.now()})
	})
	if errors.Is(err, store.ErrNotFound) {
		return passkeyNotFound()
	}
	return err
}

// DeleteAll removes every passkey of a user (the management API: an operator recovering an
// account whose device was lost). It reports how many there were.
func (s *Service) DeleteAll(ctx context.Context, p store.Project, userID string) (int, error) {
	var n int
	err := s.d.Store.InTx(ctx, func(tx store.Store) error {
		if _, err := tx.GetUser(ctx, p.ID, userID); err != nil {
			return err
		}
		var err error
		if n, err = tx.DeleteUserPasskeys(ctx, p.ID, userID); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: p.ID, Type: "passkey.deleted_all",
			UserID: userID, Detail: map[string]any{"count": n}, CreatedAt: s.now()})
	})
	if errors.Is(err, store.ErrNotFound) {
		return 0, failure.New(failure.NotFound, "user_not_found", "no such user")
	}
	return n, err
}

// startCeremony stores the ceremony state and returns the auth_code that finds it again.
func (s *Service) startCeremony(ctx context.Context, projectID, kind, userID, identifierKey string, session *webauthn.SessionData) (string, error) {
	doc, err := json.Marshal(session)
	if err != nil {
		return "", fmt.Errorf("encode ceremony: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := io.ReadFull(s.d.Rand, raw); err != nil {
		return "", fmt.Errorf("make an auth code: %w", err)
	}
	code := base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	err = s.d.Store.CreateCeremony(ctx, store.Ceremony{ID: s.d.IDs.New(), ProjectID: projectID, CodeHash: hashCode(code),
		Kind: kind, UserID: userID, IdentifierKey: identifierKey, Session: doc, Status: store.CeremonyPending,
		CreatedAt: now, ExpiresAt: now.Add(CeremonyTTL)})
	if err != nil {
		return "", fmt.Errorf("store ceremony: %w", err)
	}
	return code, nil
}

// useCeremony takes the ceremony of authCode, once.
func (s *Service) useCeremony(ctx context.Context, projectID, kind, authCode string) (store.Ceremony, webauthn.SessionData, error) {
	if authCode == "" {
		return store.Ceremony{}, webauthn.SessionData{}, failure.InvalidField("missing_auth_code", "auth_code", "is required")
	}
	c, err := s.d.Store.UseCeremony(ctx, projectID, kind, hashCode(authCode), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return store.Ceremony{}, webauthn.SessionData{}, invalidAuthCode()
	}
	if err != nil {
		return store.Ceremony{}, webauthn.SessionData{}, fmt.Errorf("use ceremony: %w", err)
	}
	var session webauthn.SessionData
	if err := json.Unmarshal(c.Session, &session); err != nil {
		return store.Ceremony{}, webauthn.SessionData{}, fmt.Errorf("decode ceremony %s: %w", c.ID, err)
	}
	// The store's expiry, on the service's clock, is the one that counts.
	session.Expires = time.Time{}
	return c, session, nil
}

// finishCeremony records the outcome for the status route. The outcome has already been
// decided; a failure here only makes the status stale, so it is logged, not returned.
func (s *Service) finishCeremony(ctx context.Context, c store.Ceremony, status, userID, identifierKey string) {
	if err := s.d.Store.FinishCeremony(context.WithoutCancel(ctx), c.ProjectID, c.ID, status, userID, identifierKey, s.now()); err != nil {
		s.d.Log.WarnContext(ctx, "record the outcome of a passkey ceremony", "ceremony_id", c.ID, "err", err)
	}
}

// sweep removes long-expired ceremonies now and then: login options are handed to anyone, so
// their rows must not pile up.
func (s *Service) sweep(ctx context.Context) {
	var b [1]byte
	if _, err := io.ReadFull(s.d.Rand, b[:]); err != nil || b[0]%64 != 0 {
		return
	}
	if _, err := s.d.Store.DeleteCeremoniesBefore(ctx, s.now().Add(-ceremonyRetention)); err != nil {
		s.d.Log.WarnContext(ctx, "remove expired passkey ceremonies", "err", err)
	}
}

// standIns returns the credential descriptors shown for an identifier without passkeys: one or
// two ids derived from the identifier with a server key, so they are the same on every call
// and every instance, and look like a platform passkey's.
func (s *Service) standIns(projectID, key string) []protocol.CredentialDescriptor {
	mac := hmac.New(sha256.New, s.d.EnumerationKey)
	mac.Write([]byte(projectID + "\x00" + key))
	sum := mac.Sum(nil)
	out := []protocol.CredentialDescriptor{{Type: protocol.PublicKeyCredentialType, CredentialID: sum[:16],
		Transport: []protocol.AuthenticatorTransport{protocol.Hybrid, protocol.Internal}}}
	if sum[31]%2 == 1 {
		out = append(out, protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: sum[16:31],
			Transport: []protocol.AuthenticatorTransport{protocol.Hybrid, protocol.Internal}})
	}
	return out
}

// user is a directory user as go-webauthn sees it.
type user struct {
	store.User
	handle []byte
	creds  []webauthn.Credential
}

func (u *user) WebAuthnID() []byte { return u.handle }

func (u *user) WebAuthnName() string {
	switch {
	case u.Email != "":
		return u.Email
	case u.Phone != "":
		return u.Phone
	}
	return u.ID
}

func (u *user) WebAuthnDisplayName() string {
	if n := strings.TrimSpace(u.FirstName + " " + u.LastName); n != "" {
		return n
	}
	return u.WebAuthnName()
}

func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// loadUser reads a user with their handle and credentials. makeHandle gives a user without a
// handle a new random one (registration) and requires the user to be active; otherwise the
// user must have a handle, and the caller decides what an inactive user means.
func (s *Service) loadUser(ctx context.Context, projectID, userID string, makeHandle bool) (*user, error) {
	u, err := s.d.Store.GetUser(ctx, projectID, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, failure.New(failure.NotFound, "user_not_found", "no such user")
	}
	if err != nil {
		return nil, fmt.Errorf("load user %s: %w", userID, err)
	}
	if makeHandle && !u.Active {
		return nil, failure.New(failure.Forbidden, "user_inactive", "this user is deactivated")
	}
	var handle []byte
	if makeHandle {
		candidate := make([]byte, handleLen)
		if _, err := io.ReadFull(s.d.Rand, candidate); err != nil {
			return nil, fmt.Errorf("make a user handle: %w", err)
		}
		handle, err = s.d.Store.EnsurePasskeyHandle(ctx, projectID, userID, candidate)
	} else {
		handle, err = s.d.Store.PasskeyHandle(ctx, projectID, userID)
	}
	if err != nil {
		return nil, fmt.Errorf("user handle of %s: %w", userID, err)
	}
	pks, err := s.d.Store.ListPasskeys(ctx, projectID, userID)
	if err != nil {
		return nil, fmt.Errorf("passkeys of %s: %w", userID, err)
	}
	out := &user{User: u, handle: handle, creds: make([]webauthn.Credential, 0, len(pks))}
	for _, pk := range pks {
		out.creds = append(out.creds, credentialOf(pk))
	}
	return out, nil
}

// findUser finds the user an identifier names and loads their passkeys.
func (s *Service) findUser(ctx context.Context, projectID, key string) (*user, bool, error) {
	var u store.User
	var err error
	if strings.HasPrefix(key, "+") {
		var us []store.User
		us, err = s.d.Store.ListUsers(ctx, projectID, store.UserFilter{Phone: key}, store.Page{Limit: 1})
		if err == nil && len(us) == 0 {
			err = store.ErrNotFound
		}
		if err == nil {
			u = us[0]
		}
	} else {
		u, err = s.d.Store.GetUserByEmail(ctx, projectID, key)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("find user: %w", err)
	}
	if !u.Active {
		return nil, false, nil
	}
	full, err := s.loadUser(ctx, projectID, u.ID, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil // no handle: the user never registered a passkey
	}
	if err != nil {
		return nil, false, err
	}
	return full, true, nil
}

// credentialOf is the credential record go-webauthn checks an assertion against.
func credentialOf(pk store.Passkey) webauthn.Credential {
	ts := make([]protocol.AuthenticatorTransport, len(pk.Transports))
	for i, t := range pk.Transports {
		ts[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID: pk.CredentialID, PublicKey: pk.PublicKey, AttestationType: pk.AttestationType,
		AttestationFormat: pk.AttestationFormat, Transport: ts,
		Flags: webauthn.CredentialFlags{UserPresent: true, UserVerified: pk.UserVerified,
			BackupEligible: pk.BackupEligible, BackupState: pk.BackupState},
		Authenticator: webauthn.Authenticator{AAGUID: pk.AAGUID, SignCount: pk.SignCount},
	}
}

// IdentifierKey is the form in which an identifier is matched: an E.164 phone number, or an
// email compared by store.EmailKey. "" for none.
func IdentifierKey(identifier string) string {
	identifier = strings.TrimSpace(identifier)
	if identifier == "" {
		return ""
	}
	if !strings.Contains(identifier, "@") {
		if phone, err := directory.NormalizePhone("identifier", identifier); err == nil {
			return phone
		}
	}
	return store.EmailKey(identifier)
}

func identifierKeyOf(u store.User) string {
	if u.Email != "" {
		return store.EmailKey(u.Email)
	}
	return u.Phone
}

func transports(ts []protocol.AuthenticatorTransport) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

func hashCode(code string) []byte {
	h := sha256.Sum256([]byte("passkey-ceremony\x00" + code))
	return h[:]
}

func (s *Service) now() time.Time { return s.d.Now().UTC().Truncate(time.Microsecond) }

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }

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

func passkeyNotFound() error {
	return failure.New(failure.NotFound, "passkey_not_found", "no such passkey")
}
