package passkey

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// BeginLogin starts a login. With an identifier (email or phone) the options list that user's
// passkeys; without one they ask the browser for any passkey of the site (discoverable login,
// autofill). An identifier that names no user, or a user without passkeys, gets stand-in
// credentials that look like real ones, so the answer does not tell whether an account exists.
func (s *Service) BeginLogin(ctx context.Context, p store.Project, identifier string) (Options, error) {
	rp, err := s.relyingParty(p)
	if err != nil {
		return Options{}, err
	}
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
			standIns, serr := s.standIns(ctx, p.ID, key)
			if serr != nil {
				return Options{}, serr
			}
			assertion, session, err = rp.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(rp.uv),
				webauthn.WithAllowedCredentials(standIns))
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
func (s *Service) FinishLogin(ctx context.Context, p store.Project, authCode string, response []byte, meta audit.Meta) (login.Result, error) {
	rp, err := s.relyingParty(p)
	if err != nil {
		return login.Result{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return login.Result{}, invalidResponse(err)
	}
	guard := protect.Guard{Project: p, Kind: "passkey", IP: meta.IPAddress}
	if s.d.Guard != nil {
		if err := s.d.Guard.Check(ctx, guard); err != nil {
			return login.Result{}, err
		}
	}
	c, session, err := s.useCeremony(ctx, p.ID, store.CeremonyLogin, authCode)
	if err != nil {
		return login.Result{}, err
	}
	u, use, err := s.assert(ctx, rp, p, c, session, parsed, meta)
	if err != nil {
		s.finishCeremony(ctx, c, store.CeremonyFailed, "", "")
		if fe, ok := failure.As(err); ok && fe.Kind == failure.Unauthenticated {
			if s.d.Guard != nil {
				if ferr := s.d.Guard.Fail(ctx, guard); ferr != nil {
					return login.Result{}, ferr
				}
			}
			if aerr := s.d.Store.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: p.ID, Type: login.AuditFailed,
				IPAddress: meta.IPAddress, UserAgent: meta.UserAgent, CreatedAt: s.now(),
				Detail: map[string]any{"connection_type": login.Passkey, "reason": fe.Code}}); aerr != nil {
				return login.Result{}, fmt.Errorf("audit a failed passkey login: %w", aerr)
			}
		}
		return login.Result{}, err
	}
	// Accepted: a client that goes away now must not leave the login or the ceremony half done.
	ctx, cancel := login.Detach(ctx)
	defer cancel()
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
	session webauthn.SessionData, parsed *protocol.ParsedCredentialAssertionData, meta audit.Meta) (*user, pendingUse, error) {
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

// standInSample bounds how many of the project's credentials stand-ins are modelled on.
const standInSample = 256

// standIns returns the credential descriptors shown for an identifier without passkeys. They
// copy the shape of a real user's credentials, chosen among the project's with a server key:
// how many, each id's length and its transports, so that nothing but the random-looking bytes
// of the ids differs from a real answer (ids of 16 bytes with [hybrid, internal] gave unknown
// identifiers away in a project whose passkeys have 32-byte ids). The choice and the id bytes
// are derived from the identifier, so they are the same on every call and every instance.
// A project without passkeys has nobody to be told apart from; its stand-ins look like a
// platform passkey's.
func (s *Service) standIns(ctx context.Context, projectID, key string) ([]protocol.CredentialDescriptor, error) {
	shapes, err := s.d.Store.SamplePasskeyShapes(ctx, projectID, standInSample)
	if err != nil {
		return nil, fmt.Errorf("stand-in credentials: %w", err)
	}
	var model []store.PasskeyShape
	if len(shapes) == 0 {
		platform := []string{string(protocol.Hybrid), string(protocol.Internal)}
		model = []store.PasskeyShape{{IDLength: 16, Transports: platform}}
		if s.derive(projectID, key, "count", 0, 1)[0]%2 == 1 {
			model = append(model, store.PasskeyShape{IDLength: 15, Transports: platform})
		}
	} else {
		var users [][]store.PasskeyShape
		for i, sh := range shapes {
			if i == 0 || sh.UserID != shapes[i-1].UserID {
				users = append(users, nil)
			}
			users[len(users)-1] = append(users[len(users)-1], sh)
		}
		// Rendezvous hashing: the user whose id scores highest with this identifier. Adding or
		// removing another user's passkeys rarely changes the choice (1 time in n), so watching
		// an identifier's options while registering passkeys elsewhere hardly tells a stand-in
		// from a real user's options, which change only when that user's passkeys do.
		var best uint64
		for _, creds := range users {
			if score := binary.BigEndian.Uint64(s.derive(projectID, key, "user:"+creds[0].UserID, 0, 8)); model == nil || score > best {
				model, best = creds, score
			}
		}
	}
	out := make([]protocol.CredentialDescriptor, len(model))
	for i, sh := range model {
		ts := make([]protocol.AuthenticatorTransport, len(sh.Transports))
		for j, t := range sh.Transports {
			ts[j] = protocol.AuthenticatorTransport(t)
		}
		out[i] = protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType,
			CredentialID: s.derive(projectID, key, "id", i, sh.IDLength), Transport: ts}
	}
	return out, nil
}

// derive returns n bytes derived with the enumeration key from the identifier, a purpose and an
// index: HMAC-SHA256 in counter mode.
func (s *Service) derive(projectID, key, purpose string, index, n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	for block := 0; len(out) < n; block++ {
		mac := hmac.New(sha256.New, s.d.EnumerationKey)
		fmt.Fprintf(mac, "%s\x00%s\x00%s\x00%d\x00%d", projectID, key, purpose, index, block)
		out = mac.Sum(out)
	}
	return out[:n]
}
