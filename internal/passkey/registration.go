package passkey

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/notice"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// credentialParameters are the algorithms asked for, in order of preference.
var credentialParameters = []protocol.CredentialParameter{
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgEdDSA},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgRS256},
}

// FreshSignIn is how recent the sign-in behind a registration must be. A passkey is a lasting
// way in that also counts as two factors, so a stolen access token alone must not add one.
const FreshSignIn = 10 * time.Minute

// BeginRegistration starts adding a passkey to a signed-in user's account; signedIn is when
// the user's session began. Errors: reauthentication_required (403).
func (s *Service) BeginRegistration(ctx context.Context, p store.Project, userID string, signedIn time.Time) (Options, error) {
	if s.now().Sub(signedIn) > FreshSignIn {
		return Options{}, failure.New(failure.Forbidden, "reauthentication_required",
			"sign in again: adding a passkey needs a sign-in from the last %d minutes", int(FreshSignIn/time.Minute))
	}
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
		if err := s.notify(ctx, tx, p, userID, notice.PasskeyAdded); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: p.ID, Type: "passkey.registered",
			UserID: userID, Detail: map[string]any{"passkey_id": pk.ID, "name": pk.Name}, CreatedAt: now})
	})
	if err == nil {
		s.wake()
	}
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

func transports(ts []protocol.AuthenticatorTransport) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}
