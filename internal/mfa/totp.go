package mfa

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// The TOTP parameters. They are what every authenticator app supports (most ignore the
// algorithm, digits and period of the otpauth URI), so they are not settings.
const (
	period     = 30 // seconds per time step
	digits     = otp.DigitsSix
	secretSize = 20 // bytes: the 160 bits RFC 4226 §4 recommends for an HMAC-SHA1 key
	// skew is how many steps before and after the current one a code may come from: clocks of
	// phones drift, and a code typed at the end of its window arrives in the next.
	skew = 1
)

var algorithm = otp.AlgorithmSHA1

// Sealer encrypts TOTP secrets at rest (secretbox.Keyring). Unlike a code, a TOTP secret
// cannot be hashed: every check recomputes codes from it.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// TOTPDeps are the TOTP service's dependencies.
type TOTPDeps struct {
	Store  store.MFAFactors
	Sealer Sealer
	Now    func() time.Time
	Rand   io.Reader // the secrets' randomness
	IDs    *ident.Generator
}

// TOTP enrolls TOTP authenticators and checks their codes.
type TOTP struct {
	d TOTPDeps
}

// NewTOTP returns the service; Now, Rand and IDs default to the real clock and randomness.
func NewTOTP(d TOTPDeps) *TOTP {
	fillDefaults(&d.Now, &d.Rand, &d.IDs)
	return &TOTP{d: d}
}

// Enrollment is what a user needs to add a new TOTP factor to an authenticator app.
type Enrollment struct {
	FactorID string
	Secret   string // base32, unpadded: what a user types when they cannot scan the URI
	URI      string // otpauth://totp/...: what the QR code holds
}

// errInvalidOTP is the answer to a code that matches no allowed step. It says no more (not
// whether the user has a factor, nor how close the code was).
func errInvalidOTP() error {
	return failure.New(failure.Unauthenticated, "invalid_otp", "the one-time code is not valid")
}

// errOTPUsed is the answer to a valid code whose step was accepted already: a replay, or the
// loser of concurrent requests with one code.
func errOTPUsed() error {
	return failure.New(failure.Unauthenticated, "otp_already_used", "the one-time code was already used")
}

func errNoFactor() error {
	return failure.New(failure.NotFound, "authenticator_not_found", "no such authenticator")
}

func errConfirmed() error {
	return failure.New(failure.Conflict, "authenticator_already_confirmed", "the authenticator is confirmed already")
}

// Enroll makes a new, unconfirmed TOTP factor for the user: it counts as a second factor only
// once Confirm has seen a code from it. issuer defaults to the project's name; account names
// the user in the app (their email).
func (s *TOTP) Enroll(ctx context.Context, project store.Project, issuer, account, userID string) (Enrollment, error) {
	if issuer == "" {
		issuer = project.Name
	}
	if account == "" {
		return Enrollment{}, failure.InvalidField("invalid_request", "account", "is required")
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: period,
		SecretSize: secretSize, Digits: digits, Algorithm: algorithm, Rand: s.d.Rand})
	if err != nil {
		return Enrollment{}, fmt.Errorf("generate a totp secret: %w", err)
	}
	raw, err := decodeSecret(key.Secret())
	if err != nil {
		return Enrollment{}, err
	}
	id := s.d.IDs.New()
	sealed, err := s.d.Sealer.Seal(raw, sealAAD(project.ID, userID, id))
	if err != nil {
		return Enrollment{}, fmt.Errorf("seal the totp secret of factor %s: %w", id, err)
	}
	f := store.MFAFactor{ID: id, ProjectID: project.ID, UserID: userID, Type: store.MFAFactorOTP,
		Secret: sealed, CreatedAt: s.d.Now()}
	if err := s.d.Store.CreateMFAFactor(ctx, f); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Enrollment{}, failure.New(failure.NotFound, "user_not_found", "no such user")
		}
		return Enrollment{}, fmt.Errorf("enroll totp factor for user %s: %w", userID, err)
	}
	return Enrollment{FactorID: id, Secret: key.Secret(), URI: key.URL()}, nil
}

// Confirm checks a first code from an enrolled factor and marks it confirmed; the code's step
// counts as used, so the same code cannot then also pass Verify.
func (s *TOTP) Confirm(ctx context.Context, projectID, userID, factorID, code string) error {
	f, err := s.d.Store.GetMFAFactor(ctx, projectID, userID, factorID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNoFactor()
	case err != nil:
		return fmt.Errorf("confirm totp factor %s: %w", factorID, err)
	case f.Type != store.MFAFactorOTP:
		return errNoFactor()
	case f.Confirmed:
		return errConfirmed()
	}
	now := s.d.Now()
	step, ok, err := s.matchingStep(f, code, now)
	if err != nil {
		return err
	}
	if !ok {
		return errInvalidOTP()
	}
	_, err = s.d.Store.ConfirmMFAFactor(ctx, projectID, userID, factorID, step, now)
	switch {
	case errors.Is(err, store.ErrConflict): // a concurrent Confirm won
		return errConfirmed()
	case errors.Is(err, store.ErrReused):
		return errOTPUsed()
	case errors.Is(err, store.ErrNotFound): // deleted meanwhile
		return errNoFactor()
	case err != nil:
		return fmt.Errorf("confirm totp factor %s: %w", factorID, err)
	}
	return nil
}

// Verify checks a code against the user's confirmed TOTP factors and returns the id of the
// factor it came from. A time step is accepted once per factor: the store's conditioned update
// decides, so of concurrent requests carrying one code exactly one passes.
func (s *TOTP) Verify(ctx context.Context, projectID, userID, code string) (string, error) {
	id, _, err := s.VerifyIn(ctx, s.d.Store, projectID, userID, code, false)
	return id, err
}

// VerifyIn is Verify through st, the transaction of the login the code completes. With
// confirming, a code from a factor not yet confirmed also passes, and confirms it: the first
// valid code of an enrollment made during a sign-in both proves the enrollment and answers the
// sign-in's challenge; confirmed reports that it did.
func (s *TOTP) VerifyIn(ctx context.Context, st store.MFAFactors, projectID, userID, code string, confirming bool) (id string, confirmed bool, err error) {
	factors, err := st.ListMFAFactors(ctx, projectID, userID)
	if err != nil {
		return "", false, fmt.Errorf("list mfa factors of user %s: %w", userID, err)
	}
	now := s.d.Now()
	reused := false
	for _, f := range factors {
		if f.Type != store.MFAFactorOTP || (!f.Confirmed && !confirming) {
			continue
		}
		step, ok, err := s.matchingStep(f, code, now)
		if err != nil {
			return "", false, err
		}
		if !ok {
			continue
		}
		if f.Confirmed {
			_, err = st.UseMFAFactorStep(ctx, projectID, userID, f.ID, step, now)
		} else {
			_, err = st.ConfirmMFAFactor(ctx, projectID, userID, f.ID, step, now)
		}
		switch {
		case err == nil:
			return f.ID, !f.Confirmed, nil
		case errors.Is(err, store.ErrReused), errors.Is(err, store.ErrConflict):
			reused = true // ErrConflict: a concurrent request confirmed it with this code
		case errors.Is(err, store.ErrNotFound): // deleted meanwhile
		default:
			return "", false, fmt.Errorf("use a step of totp factor %s: %w", f.ID, err)
		}
	}
	if reused {
		return "", false, errOTPUsed()
	}
	return "", false, errInvalidOTP()
}

// matchingStep returns the time step, within the allowed skew of now, whose code is code.
// Every candidate is computed and compared in constant time (hotp.ValidateCustom), so the
// response time does not tell which step matched or how much of the code was right.
func (s *TOTP) matchingStep(f store.MFAFactor, code string, now time.Time) (int64, bool, error) {
	if len(code) != digits.Length() {
		return 0, false, nil
	}
	raw, err := s.d.Sealer.Open(f.Secret, sealAAD(f.ProjectID, f.UserID, f.ID))
	if err != nil {
		return 0, false, fmt.Errorf("open the totp secret of factor %s: %w", f.ID, err)
	}
	secret := base32.StdEncoding.EncodeToString(raw)
	current := now.Unix() / period
	var step int64
	found := false
	for c := current - skew; c <= current+skew; c++ {
		if c <= 0 {
			continue
		}
		ok, err := hotp.ValidateCustom(code, uint64(c), secret, hotp.ValidateOpts{Digits: digits, Algorithm: algorithm})
		if err != nil {
			return 0, false, nil // not digits of the right length: just a wrong code
		}
		if ok && !found {
			step, found = c, true
		}
	}
	return step, found, nil
}

// sealAAD binds a sealed secret to its factor, user and project: a sealed value copied into
// another row does not open.
func sealAAD(projectID, userID, factorID string) []byte {
	return []byte("latchkey totp secret\x00" + projectID + "\x00" + userID + "\x00" + factorID)
}

func decodeSecret(b32 string) ([]byte, error) {
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(b32)
	if err != nil {
		return nil, fmt.Errorf("decode the generated totp secret: %w", err)
	}
	return raw, nil
}
