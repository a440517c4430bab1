package store

import (
	"context"
	"time"
)

// Passwords stores users' password hashes, apart from the user record so that no listing of
// users can carry one by mistake.
type Passwords interface {
	// GetPasswordHash returns the user's encoded hash: ErrNotFound when the user has no
	// password (or does not exist).
	GetPasswordHash(ctx context.Context, projectID, userID string) (string, error)
	// SetPasswordHash sets or replaces the user's hash: ErrNotFound when the user does not
	// exist.
	SetPasswordHash(ctx context.Context, projectID, userID, hash string, at time.Time) error
	// UpgradePasswordHash replaces the hash only if it is still old, so that a rehash on login
	// never overwrites a password changed meanwhile: ErrNotFound otherwise.
	UpgradePasswordHash(ctx context.Context, projectID, userID, old, hash string, at time.Time) error
	// DeletePasswordHash removes the user's password; no error when there is none.
	DeletePasswordHash(ctx context.Context, projectID, userID string) error
	// CountPasswordHashPrefixes counts the project's hashes by their first 7 bytes (which say
	// the algorithm and, for bcrypt, the cost), in prefix order: the mix of verification costs
	// that logins for unknown users imitate.
	CountPasswordHashPrefixes(ctx context.Context, projectID string) ([]PrefixCount, error)
}

// PrefixCount is how many hashes start with Prefix.
type PrefixCount struct {
	Prefix string
	Count  int
}
