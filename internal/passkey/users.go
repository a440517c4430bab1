package passkey

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
)

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
