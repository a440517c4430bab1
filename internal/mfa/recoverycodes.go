package mfa

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// The shape of recovery codes.
const (
	// recoveryAlphabet has no 0/O, 1/I/L: a code copied from paper is read back as written.
	recoveryAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
	// recoveryCodeLen characters of 31 give log2(31^12) ≈ 59.4 bits per code.
	recoveryCodeLen = 12
	recoveryGroup   = 4 // characters between dashes in the displayed form
	// RecoveryCodeCount is how many codes a set holds.
	RecoveryCodeCount = 10
	// recoveryAcceptBelow is the largest multiple of the alphabet's size that fits in a byte:
	// random bytes at or above it are thrown away, so that every character is equally likely
	// (taking every byte modulo 31 would favour the first 8 characters).
	recoveryAcceptBelow = 256 / len(recoveryAlphabet) * len(recoveryAlphabet)
)

// AuditRecoveryCodeUsed is the audit event type written when a recovery code is spent.
const AuditRecoveryCodeUsed = "mfa.recovery_code_used"

// RecoveryCodeStore is the part of the store the recovery-code service uses: InTx, so that a
// use and its audit event commit together (code here uses tx only through RecoveryCodeStore).
type RecoveryCodeStore interface {
	store.RecoveryCodes
	store.AuditEvents
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// RecoveryCodesDeps are the recovery-code service's dependencies.
type RecoveryCodesDeps struct {
	Store RecoveryCodeStore
	Now   func() time.Time
	Rand  io.Reader // the codes' randomness
	IDs   *ident.Generator
}

// RecoveryCodes issues users' backup codes and accepts each once in place of a second factor.
type RecoveryCodes struct {
	d RecoveryCodesDeps
}

// NewRecoveryCodes returns the service; Now, Rand and IDs default to the real clock and
// randomness.
func NewRecoveryCodes(d RecoveryCodesDeps) *RecoveryCodes {
	fillDefaults(&d.Now, &d.Rand, &d.IDs)
	return &RecoveryCodes{d: d}
}

// errInvalidRecoveryCode is the answer to a code that is malformed, unknown, another user's or
// used already: it does not say which.
func errInvalidRecoveryCode() error {
	return failure.New(failure.Unauthenticated, "invalid_recovery_code", "the recovery code is not valid")
}

// Generate issues a new set of RecoveryCodeCount codes for the user, voiding the old set (used
// codes included), and returns them formatted as XXXX-XXXX-XXXX. They are shown this once:
// only their hashes are kept.
func (s *RecoveryCodes) Generate(ctx context.Context, projectID, userID string) ([]string, error) {
	now := s.d.Now()
	shown := make([]string, 0, RecoveryCodeCount)
	records := make([]store.RecoveryCode, 0, RecoveryCodeCount)
	seen := map[string]bool{}
	for len(shown) < RecoveryCodeCount {
		code, err := s.randomCode()
		if err != nil {
			return nil, err
		}
		if seen[code] { // about 2^-53 per pair, but the set must hold distinct codes
			continue
		}
		seen[code] = true
		shown = append(shown, formatRecoveryCode(code))
		records = append(records, store.RecoveryCode{ID: s.d.IDs.New(), ProjectID: projectID, UserID: userID,
			Hash: hashRecoveryCode(projectID, userID, code), CreatedAt: now})
	}
	if err := s.d.Store.ReplaceRecoveryCodes(ctx, projectID, userID, records); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, failure.New(failure.NotFound, "user_not_found", "no such user")
		}
		return nil, fmt.Errorf("replace recovery codes of user %s: %w", userID, err)
	}
	return shown, nil
}

// Use spends one of the user's codes. The store's conditioned update decides, so of concurrent
// requests carrying one code exactly one passes; the use and its audit event (with the number
// of codes left, so that the user can be told to make a new set) commit together.
func (s *RecoveryCodes) Use(ctx context.Context, projectID, userID, code string) error {
	return s.UseIn(ctx, s.d.Store, projectID, userID, code)
}

// UseIn is Use through st, the transaction of the login the code completes.
func (s *RecoveryCodes) UseIn(ctx context.Context, st RecoveryCodeStore, projectID, userID, code string) error {
	norm, ok := normalizeRecoveryCode(code)
	if !ok {
		return errInvalidRecoveryCode()
	}
	hash := hashRecoveryCode(projectID, userID, norm)
	now := s.d.Now()
	err := st.InTx(ctx, func(tx store.Store) error {
		c, err := tx.UseRecoveryCode(ctx, projectID, userID, hash, now)
		if err != nil {
			return err
		}
		n, err := tx.CountRecoveryCodes(ctx, projectID, userID)
		if err != nil {
			return fmt.Errorf("count recovery codes: %w", err)
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: projectID, Type: AuditRecoveryCodeUsed,
			UserID: userID, Detail: map[string]any{"recovery_code_id": c.ID, "remaining": n}, CreatedAt: now})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errInvalidRecoveryCode()
	case err != nil:
		return fmt.Errorf("use a recovery code of user %s: %w", userID, err)
	}
	return nil
}

// Remaining returns how many of the user's codes are unused.
func (s *RecoveryCodes) Remaining(ctx context.Context, projectID, userID string) (int, error) {
	n, err := s.d.Store.CountRecoveryCodes(ctx, projectID, userID)
	if err != nil {
		return 0, fmt.Errorf("count recovery codes of user %s: %w", userID, err)
	}
	return n, nil
}

// randomCode returns recoveryCodeLen characters drawn uniformly from the alphabet by rejection
// sampling over random bytes.
func (s *RecoveryCodes) randomCode() (string, error) {
	out := make([]byte, 0, recoveryCodeLen)
	buf := make([]byte, 2*recoveryCodeLen) // 3% of bytes are rejected: one read nearly always does
	for len(out) < recoveryCodeLen {
		if _, err := io.ReadFull(s.d.Rand, buf); err != nil {
			return "", fmt.Errorf("read randomness for a recovery code: %w", err)
		}
		for _, b := range buf {
			if int(b) < recoveryAcceptBelow && len(out) < recoveryCodeLen {
				out = append(out, recoveryAlphabet[int(b)%len(recoveryAlphabet)])
			}
		}
	}
	return string(out), nil
}

// formatRecoveryCode groups a code for display: XXXX-XXXX-XXXX.
func formatRecoveryCode(code string) string {
	var b strings.Builder
	for i := 0; i < len(code); i += recoveryGroup {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(code[i:min(i+recoveryGroup, len(code))])
	}
	return b.String()
}

// normalizeRecoveryCode accepts a code as people type it back: any case, with or without the
// dashes, with spaces. It reports false for anything that cannot be a code, which is then
// refused without a database write.
func normalizeRecoveryCode(code string) (string, bool) {
	norm := strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToUpper(r)
	}, code)
	if len(norm) != recoveryCodeLen {
		return "", false
	}
	for i := range len(norm) {
		if strings.IndexByte(recoveryAlphabet, norm[i]) < 0 {
			return "", false
		}
	}
	return norm, true
}

// hashRecoveryCode is the stored form of a normalised code: SHA-256 under a domain separator
// naming the project and user. A fast hash is used on purpose, as for other high-entropy
// secrets (DESIGN.md, performance rules): a code is ~59 bits of uniform randomness, not a
// password, so there is no dictionary to try. Online guessing is bounded by the MFA rate
// limits. Offline, someone holding the database must search 31^12 ≈ 7.6e17 values per user
// (the separator makes every guess good for one user of one project only, so no precomputed
// table serves two users): at 10^10 SHA-256 a second, about three months for one of a user's
// ten codes, and a code is only a second factor. argon2id (22 ms, 19 MiB) on every attempt
// would instead hand attackers a cheap way to load the server.
func hashRecoveryCode(projectID, userID, normalized string) []byte {
	h := sha256.Sum256([]byte("latchkey recovery code\x00" + projectID + "\x00" + userID + "\x00" + normalized))
	return h[:]
}
