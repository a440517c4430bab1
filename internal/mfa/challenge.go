package mfa

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/notice"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/outbox"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Out-of-band send limits per mfa_token: a few resends for a slow SMS, not a way to send a
// user a stream of messages (or a project a bill).
const (
	maxOOBSends     = 3
	oobResendAfter  = 30 * time.Second
	oobCodeDigits   = 6
	oobHandlePrefix = "oob_"
)

// Initiated answers a challenge request (POST /api/v1/auth/mfa/initiate).
type Initiated struct {
	ChallengeType string `json:"challenge_type"`           // otp or oob
	OOBCode       string `json:"oob_code,omitempty"`       // the handle to send back with the code
	BindingMethod string `json:"binding_method,omitempty"` // "prompt": the user types the code they got
}

// Initiate starts answering an mfa_token's challenge with a factor. For "otp" there is nothing
// to send; for "oob" a code goes to the user's verified phone (sms) or email through the
// outbox, and the answer carries the oob_code to validate it with. Errors: invalid_request
// (400), invalid_mfa_token, mfa_token_expired (401), too_many_attempts, too_many_sends (429),
// delivery_not_configured (503).
func (s *Service) Initiate(ctx context.Context, p store.Project, mfaToken, authenticatorType, channel, ip string) (Initiated, error) {
	authenticatorType = strings.ToLower(strings.TrimSpace(authenticatorType))
	channel = strings.ToLower(strings.TrimSpace(channel))
	if authenticatorType == "" && channel != "" {
		authenticatorType = TypeOOB
	}
	switch authenticatorType {
	case TypeOTP:
	case TypeOOB:
		if channel != ChannelSMS && channel != ChannelEmail {
			return Initiated{}, failure.InvalidField("invalid_request", "oob_channels", `must be "sms" or "email"`)
		}
	default:
		return Initiated{}, failure.InvalidField("invalid_request", "authenticator_type", `must be "otp" or "oob"`)
	}
	c, err := s.d.Tokens.Check(ctx, p.ID, mfaToken)
	if err != nil {
		return Initiated{}, err
	}
	if err := s.throttle(ctx, c); err != nil {
		return Initiated{}, err
	}
	sub := Subject{Project: p, UserID: c.UserID, Challenge: &c}
	st, u, err := s.subject(ctx, s.d.Store, sub)
	if err != nil {
		return Initiated{}, err
	}
	if authenticatorType == TypeOTP {
		return Initiated{ChallengeType: TypeOTP}, nil
	}
	auths, err := answerable(ctx, s.d.Store, st, u, c.ConnectionType)
	if err != nil {
		return Initiated{}, err
	}
	if !slices.ContainsFunc(auths, func(a Authenticator) bool { return a.OOBChannel == channel }) {
		return Initiated{}, failure.InvalidField("invalid_request", "oob_channels",
			"this user has no verified "+channelNoun(channel)+" to use as a second factor here")
	}
	ch := notify.Email
	if channel == ChannelSMS {
		ch = notify.SMS
	}
	if s.d.Delivery != nil && !s.d.Delivery(ch) {
		return Initiated{}, failure.New(failure.Unavailable, "delivery_not_configured", "no %s sender is configured on this server", ch)
	}
	dest := u.Email
	if ch == notify.SMS {
		dest = u.Phone
	}
	code, err := randomDigits(s.d.Rand, oobCodeDigits)
	if err != nil {
		return Initiated{}, err
	}
	raw := make([]byte, 32)
	if _, err := io.ReadFull(s.d.Rand, raw); err != nil {
		return Initiated{}, fmt.Errorf("make an oob_code: %w", err)
	}
	handle := oobHandlePrefix + base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	err = s.d.Store.InTx(ctx, func(tx store.Store) error {
		_, err := tx.SetMFAChallengeOOB(ctx, p.ID, c.ID, store.OOBSend{Channel: channel,
			CodeHash: hashOOB("oob_code", c.ID, handle), SecretHash: hashOOB("code", c.ID, code), At: now,
			MaxSends: maxOOBSends, NotAfterLast: now.Add(-oobResendAfter)})
		switch {
		case errors.Is(err, store.ErrConflict):
			return s.tooManySends(c, now)
		case isNotFound(err):
			return errInvalidToken()
		case err != nil:
			return fmt.Errorf("record the code sent for MFA challenge %s: %w", c.ID, err)
		}
		// Counted once this send won the challenge, in its transaction: concurrent sends that
		// lose send nothing and count nothing.
		if err := s.d.Protect.AllowSendTx(ctx, tx, protect.Send{Project: p, Channel: string(ch), Destination: dest, IP: ip}); err != nil {
			return err
		}
		m, err := s.message(ctx, tx, p, st, u, c, ch, code, now)
		if err != nil {
			return err
		}
		if err := tx.EnqueueMessage(ctx, m); err != nil {
			return fmt.Errorf("enqueue MFA code: %w", err)
		}
		return nil
	})
	if err != nil {
		return Initiated{}, err
	}
	s.d.Wake()
	return Initiated{ChallengeType: TypeOOB, OOBCode: handle, BindingMethod: "prompt"}, nil
}

func (s *Service) tooManySends(c store.MFAChallenge, now time.Time) error {
	if c.OOBSends >= maxOOBSends || c.OOBSentAt == nil {
		return failure.TooManyUntil(c.ExpiresAt.Sub(now), "too_many_sends",
			"no more codes can be sent for this sign-in: sign in again")
	}
	wait := c.OOBSentAt.Add(oobResendAfter).Sub(now)
	return failure.TooManyUntil(max(wait, time.Second), "too_many_sends", "wait before asking for another code")
}

// message composes the code's message with the project's one-time code template.
func (s *Service) message(ctx context.Context, tx Store, p store.Project, st project.Settings, u store.User,
	c store.MFAChallenge, ch notify.Channel, code string, now time.Time) (store.OutboxMessage, error) {
	tmpl, recipient := notify.EmailOTP, u.Email
	if ch == notify.SMS {
		tmpl, recipient = notify.SMSOTP, u.Phone
	}
	minutes := max(int(c.ExpiresAt.Sub(now).Round(time.Minute)/time.Minute), 1)
	expiry := fmt.Sprintf("%d minutes", minutes)
	if minutes == 1 {
		expiry = "1 minute"
	}
	return outbox.Compose(ctx, tx, s.d.Sealer, outbox.Message{ID: s.d.IDs.New(), ProjectID: p.ID, Channel: ch,
		Recipient: recipient, Template: tmpl, At: now, ExpiresAt: c.ExpiresAt,
		Data: notify.TemplateData{Code: code, Brand: st.Brand(p.Name), LogoURL: st.Branding.LogoURL, Color: st.Branding.PrimaryColor, Expiry: expiry, Email: u.Email}})
}

// Answer answers an mfa_token's challenge: OTP alone (an authenticator app), OOBCode with OTP
// (the code that was sent), or RecoveryCode.
type Answer struct {
	MFAToken     string
	OTP          string
	OOBCode      string
	RecoveryCode string
}

func (a Answer) kind() (string, error) {
	otp, oob, rc := a.OTP != "", a.OOBCode != "", a.RecoveryCode != ""
	switch {
	case strings.TrimSpace(a.MFAToken) == "":
		return "", failure.InvalidField("invalid_request", "mfa_token", "is required")
	case rc && !otp && !oob:
		return TypeRecoveryCode, nil
	case oob && otp && !rc:
		return TypeOOB, nil
	case otp && !oob && !rc:
		return TypeOTP, nil
	case oob && !otp:
		return "", failure.InvalidField("invalid_request", "otp", "is required with oob_code: the code the user received")
	}
	return "", failure.New(failure.Invalid, "invalid_request",
		"give one answer: otp, oob_code with otp, or recovery_code")
}

// Validate answers an mfa_token's challenge and, when the answer is right, completes the
// sign-in: the login result (API.md §2) with both factors in amr. The answer, the challenge's
// completion and the login commit together. A wrong answer counts against the mfa_token (5)
// and the user (5 per 15 minutes, across tokens). Errors: invalid_request (400), invalid_otp,
// otp_already_used, invalid_oob_code, invalid_recovery_code, invalid_mfa_token,
// mfa_token_expired (401), too_many_attempts (429).
func (s *Service) Validate(ctx context.Context, p store.Project, a Answer, meta audit.Meta) (login.Result, error) {
	kind, err := a.kind()
	if err != nil {
		return login.Result{}, err
	}
	c, err := s.d.Tokens.Check(ctx, p.ID, a.MFAToken)
	if err != nil {
		return login.Result{}, err
	}
	if err := s.throttle(ctx, c); err != nil {
		return login.Result{}, err
	}
	st, err := s.d.Settings(p)
	if err != nil {
		return login.Result{}, err
	}
	sub := Subject{Project: p, UserID: c.UserID, Challenge: &c}
	attempt, err := s.d.Protect.Begin(ctx, protect.Guard{Project: p, Kind: "mfa", Account: c.UserID, IP: meta.IPAddress})
	if err != nil {
		return login.Result{}, err
	}
	// The answer is checked in the login's own commit; a client that goes away from here on
	// must not leave the counters or the login half done.
	ctx, cancel := login.Detach(ctx)
	defer cancel()
	var wrong error
	res, err := s.d.Login.Complete(ctx, login.Request{
		Project: p, UserID: c.UserID, OrganizationID: c.OrganizationID, ConnectionType: c.ConnectionType,
		AMR: combineAMR(c.AMR, secondFactorAMR(kind, c.OOBChannel)), Meta: meta,
		Also: func(ctx context.Context, tx store.Store) error {
			detail, err := s.answer(ctx, tx, p, st, c, a, kind)
			if err != nil {
				if isWrongAnswer(err) {
					wrong = err
				}
				return err
			}
			switch _, err := tx.CompleteMFAChallenge(ctx, p.ID, c.ID, s.now()); {
			case isNotFound(err):
				return errInvalidToken() // completed by a concurrent answer, or expired meanwhile
			case err != nil:
				return fmt.Errorf("complete MFA challenge %s: %w", c.ID, err)
			}
			if err := s.audit(ctx, tx, sub, AuditVerified, detail); err != nil {
				return err
			}
			// In the same commit: nothing more to write stands between the login and its answer.
			return attempt.SucceedIn(ctx, tx)
		},
	})
	if wrong != nil {
		return login.Result{}, s.fail(ctx, sub, kind, wrong)
	}
	if err != nil {
		// Not a wrong answer: refused before the answer was checked, or after a right one.
		// Either way the provisional failure must not spend the owner's budget.
		if cerr := attempt.Cancel(ctx); cerr != nil {
			return login.Result{}, errors.Join(err, cerr)
		}
		return login.Result{}, err
	}
	s.d.Wake() // a notice of an app confirmed by this answer may be waiting
	return res, nil
}

// answer checks the answer through tx and says what passed, for the audit event.
func (s *Service) answer(ctx context.Context, tx Store, p store.Project, st project.Settings, c store.MFAChallenge, a Answer, kind string) (map[string]any, error) {
	detail := map[string]any{"authenticator_type": kind, "challenge_id": c.ID}
	switch kind {
	case TypeOTP:
		if !slices.Contains(st.MFA.Factors, project.FactorOTP) {
			return nil, errInvalidOTP()
		}
		id, confirmed, err := s.d.TOTP.VerifyIn(ctx, tx, c.ProjectID, c.UserID, strings.TrimSpace(a.OTP), true)
		if err != nil {
			return nil, err
		}
		if confirmed { // the first code of an app enrolled during this sign-in
			if err := s.notify(ctx, tx, p, c.UserID, notice.AuthenticatorAdded); err != nil {
				return nil, err
			}
		}
		detail["authenticator_id"] = id
	case TypeOOB:
		if len(c.OOBCodeHash) == 0 || subtle.ConstantTimeCompare(hashOOB("oob_code", c.ID, a.OOBCode), c.OOBCodeHash) != 1 {
			return nil, errInvalidOOBCode()
		}
		if subtle.ConstantTimeCompare(hashOOB("code", c.ID, strings.TrimSpace(a.OTP)), c.OOBSecretHash) != 1 {
			return nil, errInvalidOTP()
		}
		detail["oob_channel"] = c.OOBChannel
	case TypeRecoveryCode:
		// Backup codes stand in for an authenticator app: without a confirmed one they answer nothing.
		if !slices.Contains(st.MFA.Factors, project.FactorRecoveryCode) || !s.hasConfirmedApp(ctx, tx, c) {
			return nil, errInvalidRecoveryCode()
		}
		if err := s.d.Codes.UseIn(ctx, tx, c.ProjectID, c.UserID, a.RecoveryCode); err != nil {
			return nil, err
		}
	}
	return detail, nil
}

func (s *Service) hasConfirmedApp(ctx context.Context, tx Store, c store.MFAChallenge) bool {
	factors, err := tx.ListMFAFactors(ctx, c.ProjectID, c.UserID)
	return err == nil && slices.ContainsFunc(factors, func(f store.MFAFactor) bool {
		return f.Type == store.MFAFactorOTP && f.Confirmed
	})
}

// fail counts a wrong answer against the mfa_token and records it; once the user's failures
// reach the limit, the answer is too_many_attempts with the time to wait.
func (s *Service) fail(ctx context.Context, sub Subject, kind string, wrong error) error {
	c := *sub.Challenge
	answer := s.d.Tokens.Fail(ctx, c, wrong)
	code := ""
	if fe, ok := failure.As(wrong); ok {
		code = fe.Code
	}
	if err := s.audit(ctx, s.d.Store, sub, AuditFailed, map[string]any{"authenticator_type": kind, "reason": code,
		"challenge_id": c.ID}); err != nil {
		return err
	}
	if locked := s.throttle(ctx, c); locked != nil {
		if err := s.audit(ctx, s.d.Store, sub, AuditLocked, map[string]any{"window_minutes": int(FailureWindow / time.Minute)}); err != nil {
			return err
		}
		return locked
	}
	return answer
}

// throttle refuses a user whose wrong second factors within the window reached the limit.
func (s *Service) throttle(ctx context.Context, c store.MFAChallenge) error {
	now := s.now()
	n, oldest, err := s.d.Store.CountMFAFailures(ctx, c.ProjectID, c.UserID, now.Add(-FailureWindow))
	if err != nil {
		return err
	}
	if n < MaxUserFailures || oldest == nil {
		return nil
	}
	wait := oldest.Add(FailureWindow).Sub(now)
	return failure.TooManyUntil(max(wait, time.Second), "too_many_attempts",
		"too many wrong second factors: try again in %d minutes", int((wait+time.Minute-1)/time.Minute))
}

func isWrongAnswer(err error) bool {
	fe, ok := failure.As(err)
	return ok && slices.Contains([]string{"invalid_otp", "otp_already_used", "invalid_oob_code", "invalid_recovery_code"}, fe.Code)
}

func errInvalidOOBCode() error {
	return failure.New(failure.Unauthenticated, "invalid_oob_code", "the oob_code is not the one sent for this sign-in")
}

// secondFactorAMR are the amr values (RFC 8176) of a second factor. A recovery code is a
// look-up secret, a one-time password in RFC 8176's terms.
func secondFactorAMR(kind, channel string) []string {
	switch {
	case kind == TypeOOB && channel == ChannelSMS:
		return []string{"sms", "otp"}
	case kind == TypeOOB:
		return []string{"email", "otp"}
	}
	return []string{"otp"}
}

// combineAMR is the amr of a login with both factors: each factor's values once, then "mfa".
func combineAMR(first, second []string) []string {
	out := []string{}
	for _, v := range slices.Concat(first, second, []string{"mfa"}) {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// hashOOB binds a value sent for a challenge to the challenge and its role before hashing.
func hashOOB(role, challengeID, value string) []byte {
	h := sha256.Sum256([]byte("latchkey mfa " + role + "\x00" + challengeID + "\x00" + value))
	return h[:]
}

func randomDigits(r io.Reader, n int) (string, error) {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(r, limit) // uniform: rand.Int rejects rather than biasing with a modulo
	if err != nil {
		return "", fmt.Errorf("read randomness: %w", err)
	}
	return fmt.Sprintf("%0*d", n, v), nil
}

func channelNoun(ch string) string {
	if ch == ChannelSMS {
		return "phone number"
	}
	return "email address"
}
