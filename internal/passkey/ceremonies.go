package passkey

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
)

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

func hashCode(code string) []byte {
	h := sha256.Sum256([]byte("passkey-ceremony\x00" + code))
	return h[:]
}
