package mfa

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pquerna/otp/totp"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/notice"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Enrolled is a new authenticator app factor, to be confirmed by its first code.
type Enrolled struct {
	AuthenticatorID string
	Secret          string // base32, for typing in when the QR code cannot be scanned
	BarcodeURI      string // otpauth://totp/...
	// RecoveryCodes is a first set of backup codes, issued with a user's first factor; empty
	// when the user has unused codes already.
	RecoveryCodes []string
}

// Enroll adds an authenticator app (TOTP) factor for the subject. With an mfa_token it is
// allowed only to a user who has no second factor to answer the challenge with (under a
// required policy, a user's first factor must not let anyone replace a second factor they
// already have); with an access token, the sign-in must be from the last FreshSession.
// Errors: unsupported_authenticator_type (400), factor_disabled, mfa_enrollment_not_allowed,
// reauthentication_required (403), too_many_authenticators (409).
func (s *Service) Enroll(ctx context.Context, sub Subject, types []string) (Enrolled, error) {
	if len(types) != 1 || strings.TrimSpace(strings.ToLower(types[0])) != TypeOTP {
		return Enrolled{}, failure.InvalidField("unsupported_authenticator_type", "authenticator_types",
			`must be ["otp"]: out-of-band channels are the user's verified phone and email`)
	}
	if sub.Session != nil {
		// A stolen access token must not be enough to plant a second factor of the thief's.
		if err := s.requireFresh(sub); err != nil {
			return Enrolled{}, err
		}
	}
	st, u, err := s.subject(ctx, s.d.Store, sub)
	if err != nil {
		return Enrolled{}, err
	}
	if !slices.Contains(st.MFA.Factors, project.FactorOTP) {
		return Enrolled{}, failure.New(failure.Forbidden, "factor_disabled", "authenticator apps are not offered by this project")
	}
	factors, err := s.d.Store.ListMFAFactors(ctx, sub.Project.ID, u.ID)
	if err != nil {
		return Enrolled{}, fmt.Errorf("list MFA factors of user %s: %w", u.ID, err)
	}
	if sub.Challenge != nil {
		auths, err := answerable(ctx, s.d.Store, st, u, sub.Challenge.ConnectionType)
		if err != nil {
			return Enrolled{}, err
		}
		if secondFactor(auths) {
			return Enrolled{}, failure.New(failure.Forbidden, "mfa_enrollment_not_allowed",
				"this user has a second factor: answer the challenge with it, then add authenticators while signed in")
		}
	}
	confirmed := 0
	for _, f := range factors {
		if f.Type == store.MFAFactorOTP && f.Confirmed {
			confirmed++
		}
	}
	if confirmed >= maxOTPFactors {
		return Enrolled{}, failure.New(failure.Conflict, "too_many_authenticators",
			"a user may have at most %d authenticator apps", maxOTPFactors)
	}
	// One enrollment in progress at a time: an abandoned one is replaced, not kept.
	for _, f := range factors {
		if f.Type == store.MFAFactorOTP && !f.Confirmed {
			if err := s.d.Store.DeleteMFAFactor(ctx, sub.Project.ID, u.ID, f.ID); err != nil && !isNotFound(err) {
				return Enrolled{}, fmt.Errorf("drop unconfirmed factor %s: %w", f.ID, err)
			}
		}
	}
	e, err := s.d.TOTP.Enroll(ctx, sub.Project, st.Brand(sub.Project.Name), account(u), u.ID)
	if err != nil {
		return Enrolled{}, err
	}
	out := Enrolled{AuthenticatorID: e.FactorID, Secret: e.Secret, BarcodeURI: e.URI, RecoveryCodes: []string{}}
	if slices.Contains(st.MFA.Factors, project.FactorRecoveryCode) {
		n, err := s.d.Codes.Remaining(ctx, sub.Project.ID, u.ID)
		if err != nil {
			return Enrolled{}, err
		}
		if n == 0 {
			if out.RecoveryCodes, err = s.d.Codes.Generate(ctx, sub.Project.ID, u.ID); err != nil {
				return Enrolled{}, err
			}
		}
	}
	if err := s.audit(ctx, s.d.Store, sub, AuditEnrolled, map[string]any{"authenticator_id": e.FactorID,
		"authenticator_type": TypeOTP}); err != nil {
		return Enrolled{}, err
	}
	return out, nil
}

// Confirm confirms an enrolled authenticator app with its first code, for a signed-in user
// (with an mfa_token, validate confirms and signs in at once). Errors: invalid_otp,
// otp_already_used (401), authenticator_not_found (404), authenticator_already_confirmed (409).
func (s *Service) Confirm(ctx context.Context, sub Subject, factorID, code string) error {
	if sub.Session == nil {
		return failure.New(failure.Forbidden, "user_token_required",
			"with an mfa_token, confirm the enrollment by answering the challenge (POST /api/v1/auth/mfa/validate)")
	}
	if _, _, err := s.subject(ctx, s.d.Store, sub); err != nil {
		return err
	}
	if err := s.d.TOTP.Confirm(ctx, sub.Project.ID, sub.UserID, factorID, code); err != nil {
		return err
	}
	if err := s.notify(ctx, s.d.Store, sub.Project, sub.UserID, notice.AuthenticatorAdded); err != nil {
		return err
	}
	s.d.Wake()
	return s.audit(ctx, s.d.Store, sub, AuditConfirmed, map[string]any{"authenticator_id": factorID})
}

// QRCode returns a PNG of the otpauth URI of an authenticator app that is not confirmed yet.
// Once confirmed, the secret is never shown again: an access token must not be enough to copy
// a user's second factor. Errors: authenticator_not_found (404),
// authenticator_already_confirmed (409).
func (s *Service) QRCode(ctx context.Context, sub Subject, factorID string) ([]byte, error) {
	st, u, err := s.subject(ctx, s.d.Store, sub)
	if err != nil {
		return nil, err
	}
	f, err := s.d.Store.GetMFAFactor(ctx, sub.Project.ID, u.ID, factorID)
	switch {
	case isNotFound(err) || (err == nil && f.Type != store.MFAFactorOTP):
		return nil, errNoFactor()
	case err != nil:
		return nil, fmt.Errorf("get MFA factor %s: %w", factorID, err)
	case f.Confirmed:
		return nil, errConfirmed()
	}
	raw, err := s.d.TOTP.d.Sealer.Open(f.Secret, sealAAD(f.ProjectID, f.UserID, f.ID))
	if err != nil {
		return nil, fmt.Errorf("open the totp secret of factor %s: %w", f.ID, err)
	}
	// The URI is rebuilt exactly as enrollment built it, from the same secret.
	key, err := totp.Generate(totp.GenerateOpts{Issuer: st.Brand(sub.Project.Name), AccountName: account(u), Period: period,
		Secret: raw, Digits: digits, Algorithm: algorithm})
	if err != nil {
		return nil, fmt.Errorf("rebuild the otpauth URI of factor %s: %w", f.ID, err)
	}
	return QRCodePNG(key.URL())
}

// account names the user in authenticator apps: their email, else their phone number.
func account(u store.User) string {
	if u.Email != "" {
		return u.Email
	}
	if u.Phone != "" {
		return u.Phone
	}
	return u.ID
}

// findUser finds a user of the project by email address or phone number.
func findUser(ctx context.Context, st Store, projectID, identifier string) (store.User, error) {
	identifier = strings.TrimSpace(identifier)
	if identifier == "" {
		return store.User{}, failure.InvalidField("invalid_identifier", "identifier", "is required")
	}
	var u store.User
	if strings.Contains(identifier, "@") {
		email, err := directory.NormalizeEmail("identifier", identifier)
		if err != nil {
			return store.User{}, err
		}
		if u, err = st.GetUserByEmail(ctx, projectID, email); err != nil {
			return store.User{}, userNotFound(err, "with this email")
		}
		return u, nil
	}
	phone, err := directory.NormalizePhone("identifier", identifier)
	if err != nil {
		return store.User{}, err
	}
	us, err := st.ListUsers(ctx, projectID, store.UserFilter{Phone: phone}, store.Page{Limit: 1})
	if err != nil {
		return store.User{}, fmt.Errorf("find user by phone: %w", err)
	}
	if len(us) == 0 {
		return store.User{}, failure.New(failure.NotFound, "user_not_found", "user not found")
	}
	return us[0], nil
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
