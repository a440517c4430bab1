package mfa

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// mfa_token limits (issue 6): a second factor must follow the first within minutes, and an
// mfa_token buys a handful of guesses, not a brute force of a 6-digit code.
const (
	TokenTTL         = 5 * time.Minute
	MaxTokenAttempts = 5
)

// tokenPrefix marks an mfa_token, so that an access token, a refresh token or a client secret
// presented in its place is refused before any lookup. The other way round, an mfa_token is not
// a JWT, a refresh token or a secret, so the Bearer and token endpoints refuse it already.
const tokenPrefix = "mfa_"

// TokensDeps are the mfa_token service's dependencies.
type TokensDeps struct {
	Store store.MFAChallenges
	Now   func() time.Time
	Rand  io.Reader
	IDs   *ident.Generator
}

// Tokens issues and checks mfa_tokens: single-purpose, short-lived, bound to a user, a project
// and the first factor that succeeded.
type Tokens struct {
	d TokensDeps
}

// NewTokens returns the service; Now, Rand and IDs default to the real clock and randomness.
func NewTokens(d TokensDeps) *Tokens {
	fillDefaults(&d.Now, &d.Rand, &d.IDs)
	return &Tokens{d: d}
}

// Issued is a new mfa_token with the challenge it stands for.
type Issued struct {
	Token     string
	ExpiresIn int // seconds
	Challenge store.MFAChallenge
}

// Step is a second-factor step to start: the user whose first factor (ConnectionType, AMR)
// has just succeeded, and the organization they sign in to.
type Step struct {
	ProjectID      string
	UserID         string
	OrganizationID string
	ConnectionType string
	AMR            []string
}

// Issue starts a second-factor step.
func (t *Tokens) Issue(ctx context.Context, s Step) (Issued, error) {
	return t.IssueIn(ctx, t.d.Store, s)
}

// IssueIn is Issue writing through st, the transaction of the login that asks for the step.
func (t *Tokens) IssueIn(ctx context.Context, st store.MFAChallenges, s Step) (Issued, error) {
	raw := make([]byte, 32)
	if _, err := io.ReadFull(t.d.Rand, raw); err != nil {
		return Issued{}, fmt.Errorf("make an mfa_token: %w", err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	now := t.now()
	c := store.MFAChallenge{ID: t.d.IDs.New(), ProjectID: s.ProjectID, UserID: s.UserID, OrganizationID: s.OrganizationID,
		TokenHash: hashToken(token), ConnectionType: s.ConnectionType, AMR: append([]string{}, s.AMR...),
		MaxAttempts: MaxTokenAttempts,
		Status:      store.MFAChallengePending, CreatedAt: now, ExpiresAt: now.Add(TokenTTL)}
	if err := st.CreateMFAChallenge(ctx, c); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Issued{}, failure.New(failure.NotFound, "user_not_found", "no such user")
		}
		return Issued{}, fmt.Errorf("store MFA challenge: %w", err)
	}
	return Issued{Token: token, ExpiresIn: int(TokenTTL / time.Second), Challenge: c}, nil
}

// Check returns the pending challenge an mfa_token of the project stands for. Errors:
// invalid_mfa_token (401: unknown, of another project, or already used), mfa_token_expired
// (401), too_many_attempts (429: the token's wrong answers ran out).
func (t *Tokens) Check(ctx context.Context, projectID, token string) (store.MFAChallenge, error) {
	if !strings.HasPrefix(token, tokenPrefix) || len(token) > 128 {
		return store.MFAChallenge{}, errInvalidToken()
	}
	c, err := t.d.Store.GetMFAChallenge(ctx, projectID, hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return store.MFAChallenge{}, errInvalidToken()
	}
	if err != nil {
		return store.MFAChallenge{}, fmt.Errorf("check mfa_token: %w", err)
	}
	switch {
	case c.Status == store.MFAChallengeDead:
		return store.MFAChallenge{}, errTooManyAttempts()
	case c.Status != store.MFAChallengePending:
		return store.MFAChallenge{}, errInvalidToken()
	case !t.now().Before(c.ExpiresAt):
		return store.MFAChallenge{}, failure.New(failure.Unauthenticated, "mfa_token_expired",
			"the mfa_token has expired: sign in again")
	}
	return c, nil
}

// Fail counts a wrong second factor against the challenge. It returns the error to answer
// with: wrong (the caller's own error for the factor) while tries are left, too_many_attempts
// once the last one is spent.
func (t *Tokens) Fail(ctx context.Context, c store.MFAChallenge, wrong error) error {
	after, err := t.d.Store.FailMFAChallenge(ctx, c.ProjectID, c.ID, t.now())
	if errors.Is(err, store.ErrNotFound) {
		// Another request completed or killed it meanwhile.
		return errInvalidToken()
	}
	if err != nil {
		return fmt.Errorf("count a wrong second factor: %w", err)
	}
	if after.Status == store.MFAChallengeDead {
		return errTooManyAttempts()
	}
	return wrong
}

// Complete ends the challenge, once: of concurrent completions one wins and the others get
// invalid_mfa_token.
func (t *Tokens) Complete(ctx context.Context, c store.MFAChallenge) (store.MFAChallenge, error) {
	done, err := t.d.Store.CompleteMFAChallenge(ctx, c.ProjectID, c.ID, t.now())
	if errors.Is(err, store.ErrNotFound) {
		return store.MFAChallenge{}, errInvalidToken()
	}
	if err != nil {
		return store.MFAChallenge{}, fmt.Errorf("complete MFA challenge: %w", err)
	}
	return done, nil
}

func (t *Tokens) now() time.Time { return t.d.Now().UTC().Truncate(time.Microsecond) }

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte("latchkey mfa_token\x00" + token))
	return h[:]
}

func errInvalidToken() error {
	return failure.New(failure.Unauthenticated, "invalid_mfa_token", "the mfa_token is not valid: sign in again")
}

func errTooManyAttempts() error {
	return failure.New(failure.TooMany, "too_many_attempts",
		"too many wrong second factors for this sign-in: sign in again")
}
