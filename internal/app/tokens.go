package app

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// tokenPolicy reads the token settings of a project for the session service.
func (a *App) tokenPolicy(p store.Project) (token.Policy, error) {
	s, err := a.projects.Settings(p)
	if err != nil {
		return token.Policy{}, err
	}
	alg, err := token.ParseAlgorithm(s.Tokens.SigningAlgorithm)
	if err != nil {
		return token.Policy{}, fmt.Errorf("project %s: %w", p.ID, err)
	}
	return token.Policy{
		Algorithm: alg, AccessTTL: s.Tokens.AccessTokenTTL(), RefreshTTL: s.Tokens.RefreshTokenTTL(),
		IdleTimeout: s.Tokens.SessionIdleTimeout(), AbsoluteTimeout: s.Tokens.SessionAbsoluteTimeout(),
	}, nil
}

// ephemeralKeyring is a key ring that exists only in this process (see WithSealer).
func ephemeralKeyring(random io.Reader) (*secretbox.Keyring, error) {
	if random == nil {
		random = rand.Reader
	}
	key, err := secretbox.GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("generate an ephemeral master key: %w", err)
	}
	return secretbox.NewKeyring(key)
}
