package mfa

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Authenticator is one second factor a user can answer a challenge with, as the MFA API lists
// it (API.md §8).
type Authenticator struct {
	ID                string    `json:"id"`
	AuthenticatorType string    `json:"authenticator_type"` // otp, oob, recovery-code
	OOBChannel        string    `json:"oob_channel,omitempty"`
	Name              string    `json:"name"`
	Active            bool      `json:"active"`
	CreatedAt         time.Time `json:"created_at"`
}

// PolicyDeps are the policy's dependencies.
type PolicyDeps struct {
	Settings func(store.Project) (project.Settings, error)
	Tokens   *Tokens
}

// Policy decides, per project setting, whether a login needs a second factor, and starts the
// step when it does. It implements login.MFAPolicy.
type Policy struct {
	d PolicyDeps
}

// NewPolicy returns the policy.
func NewPolicy(d PolicyDeps) *Policy { return &Policy{d: d} }

var _ login.MFAPolicy = (*Policy)(nil)

// Challenge answers nil (no second factor) when the project's policy is off, when the first
// factor was already multi-factor (a passkey that verified its user), or, under "optional",
// when the user has enrolled no factor. Under "required" every other login gets a challenge,
// also for a user without factors: the mfa_token is what lets them enroll one.
func (p *Policy) Challenge(ctx context.Context, tx store.Store, r login.Request, u store.User) (*login.Challenge, error) {
	st, err := p.d.Settings(r.Project)
	if err != nil {
		return nil, err
	}
	if st.MFA.Policy == project.MFAOff || slices.Contains(r.AMR, "mfa") {
		return nil, nil
	}
	auths, err := authenticators(ctx, tx, st, u)
	if err != nil {
		return nil, err
	}
	if st.MFA.Policy == project.MFAOptional && !enrolled(auths) {
		return nil, nil
	}
	iss, err := p.d.Tokens.IssueIn(ctx, tx, r.Project.ID, u.ID, r.ConnectionType, r.AMR)
	if err != nil {
		return nil, err
	}
	list := make([]any, len(auths))
	for i, a := range auths {
		list[i] = a
	}
	return &login.Challenge{MFAToken: iss.Token, Authenticators: list}, nil
}

// enrolled reports whether the user has a factor of their own: a verified email or phone
// offered as a channel does not count as the user having chosen a second factor.
func enrolled(auths []Authenticator) bool {
	for _, a := range auths {
		if a.AuthenticatorType == project.FactorOTP {
			return true
		}
	}
	return false
}

// authenticators lists the factors the user can answer with, among those the project offers.
func authenticators(ctx context.Context, tx store.Store, st project.Settings, u store.User) ([]Authenticator, error) {
	offers := func(f string) bool { return slices.Contains(st.MFA.Factors, f) }
	out := []Authenticator{}
	if offers(project.FactorOTP) {
		factors, err := tx.ListMFAFactors(ctx, u.ProjectID, u.ID)
		if err != nil {
			return nil, fmt.Errorf("list MFA factors: %w", err)
		}
		for _, f := range factors {
			if f.Type == store.MFAFactorOTP && f.Confirmed {
				out = append(out, Authenticator{ID: f.ID, AuthenticatorType: project.FactorOTP, Name: "Authenticator app",
					Active: true, CreatedAt: f.CreatedAt})
			}
		}
	}
	if offers(project.FactorSMS) && u.Phone != "" && u.PhoneVerified {
		out = append(out, Authenticator{ID: "sms", AuthenticatorType: "oob", OOBChannel: "sms", Name: maskPhone(u.Phone), Active: true})
	}
	if offers(project.FactorEmail) && u.Email != "" && u.EmailVerified {
		out = append(out, Authenticator{ID: "email", AuthenticatorType: "oob", OOBChannel: "email", Name: maskEmail(u.Email), Active: true})
	}
	if offers(project.FactorRecoveryCode) && enrolled(out) {
		n, err := tx.CountRecoveryCodes(ctx, u.ProjectID, u.ID)
		if err != nil {
			return nil, fmt.Errorf("count recovery codes: %w", err)
		}
		if n > 0 {
			out = append(out, Authenticator{ID: "recovery-code", AuthenticatorType: project.FactorRecoveryCode,
				Name: fmt.Sprintf("%d recovery codes left", n), Active: true})
		}
	}
	return out, nil
}

// maskPhone shows the last two digits, enough for a user to recognise their number and too
// little for anyone else to learn it from a challenge.
func maskPhone(p string) string {
	if len(p) <= 4 {
		return "••••"
	}
	return p[:2] + "••••••" + p[len(p)-2:]
}

// maskEmail shows the first letter and the domain.
func maskEmail(e string) string {
	at := -1
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] == '@' {
			at = i
			break
		}
	}
	if at <= 0 {
		return "•••"
	}
	first := []rune(e[:at])[0]
	return string(first) + "•••" + e[at:]
}
