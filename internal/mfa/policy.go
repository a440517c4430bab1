package mfa

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Authenticator types, as the MFA API names them (API.md §8).
const (
	TypeOTP          = "otp"
	TypeOOB          = "oob"
	TypeRecoveryCode = "recovery-code"
	TypePasskey      = "passkey"
)

// Out-of-band channels; they double as the ids of the oob authenticators.
const (
	ChannelSMS   = "sms"
	ChannelEmail = "email"
)

// Authenticator is one of a user's factors, as the MFA API lists it (API.md §8).
type Authenticator struct {
	ID                string     `json:"id"`
	AuthenticatorType string     `json:"authenticator_type"` // otp, oob, recovery-code, passkey
	OOBChannel        string     `json:"oob_channel,omitempty"`
	Name              string     `json:"name"`
	Active            bool       `json:"active"`
	CreatedAt         *time.Time `json:"created_at"`
}

// PolicyDeps are the policy's dependencies.
type PolicyDeps struct {
	Settings func(store.Project) (project.Settings, error)
	Tokens   *Tokens
}

// Policy decides whether a login needs a second factor, and starts the step when it does. It
// implements login.MFAPolicy.
type Policy struct {
	d PolicyDeps
}

// NewPolicy returns the policy.
func NewPolicy(d PolicyDeps) *Policy { return &Policy{d: d} }

var _ login.MFAPolicy = (*Policy)(nil)

// Challenge answers nil (no second factor) when the policy that applies is off, when the first
// factor was already multi-factor (a passkey that verified its user), or, under "optional",
// when the user has enrolled no factor. Under "required" every other login gets a challenge,
// also for a user without factors: the mfa_token is what lets them enroll one.
func (p *Policy) Challenge(ctx context.Context, tx store.Store, r login.Request, u store.User) (*login.Challenge, error) {
	if slices.Contains(r.AMR, "mfa") {
		return nil, nil
	}
	st, err := p.d.Settings(r.Project)
	if err != nil {
		return nil, err
	}
	policy, err := effectivePolicy(ctx, tx, st, u, r.OrganizationID)
	if err != nil || policy == project.MFAOff {
		return nil, err
	}
	auths, err := answerable(ctx, tx, st, u, r.ConnectionType)
	if err != nil {
		return nil, err
	}
	if policy == project.MFAOptional && !enrolled(auths) {
		return nil, nil
	}
	iss, err := p.d.Tokens.IssueIn(ctx, tx, Step{ProjectID: r.Project.ID, UserID: u.ID, OrganizationID: r.OrganizationID,
		ConnectionType: r.ConnectionType, AMR: r.AMR})
	if err != nil {
		return nil, err
	}
	list := make([]any, len(auths))
	for i, a := range auths {
		list[i] = a
	}
	return &login.Challenge{MFAToken: iss.Token, Authenticators: list}, nil
}

// strictness orders the policies.
var strictness = map[string]int{project.MFAOff: 0, project.MFAOptional: 1, project.MFARequired: 2}

// effectivePolicy is the MFA policy of a login of u into orgID: the organization's own policy
// when it sets one, else the project's. A login into no organization gets the strictest of the
// project's policy and those of the user's organizations, so that a member of an organization
// that requires MFA cannot avoid it by not naming the organization.
func effectivePolicy(ctx context.Context, tx Store, st project.Settings, u store.User, orgID string) (string, error) {
	if orgID != "" {
		o, err := tx.GetOrganization(ctx, u.ProjectID, orgID)
		switch {
		case err == nil && o.MFAPolicy != "":
			return o.MFAPolicy, nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return "", fmt.Errorf("get organization %s: %w", orgID, err)
		}
		return st.MFA.Policy, nil
	}
	policy := st.MFA.Policy
	if policy == project.MFARequired {
		return policy, nil
	}
	ms, err := tx.ListMemberships(ctx, u.ProjectID, []string{u.ID})
	if err != nil {
		return "", fmt.Errorf("list memberships of user %s: %w", u.ID, err)
	}
	for _, m := range ms {
		o, err := tx.GetOrganization(ctx, u.ProjectID, m.OrganizationID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("get organization %s: %w", m.OrganizationID, err)
		}
		if o.MFAPolicy != "" && strictness[o.MFAPolicy] > strictness[policy] {
			policy = o.MFAPolicy
		}
	}
	return policy, nil
}

// enrolled reports whether the user has a factor of their own: a verified email or phone
// offered as a channel does not count as the user having chosen a second factor.
func enrolled(auths []Authenticator) bool {
	return slices.ContainsFunc(auths, func(a Authenticator) bool { return a.AuthenticatorType == TypeOTP && a.Active })
}

// secondFactor reports whether the user could answer a challenge without a recovery code.
func secondFactor(auths []Authenticator) bool {
	return slices.ContainsFunc(auths, func(a Authenticator) bool {
		return a.Active && (a.AuthenticatorType == TypeOTP || a.AuthenticatorType == TypeOOB)
	})
}

// answerable lists the factors the user can answer a challenge with, among those the project
// offers, after a first factor of connectionType. The channel the first factor came through
// is left out: a second code to the same inbox proves nothing more than the first did.
func answerable(ctx context.Context, tx Store, st project.Settings, u store.User, connectionType string) ([]Authenticator, error) {
	all, err := listFactors(ctx, tx, st, u)
	if err != nil {
		return nil, err
	}
	out := []Authenticator{}
	for _, a := range all {
		if !a.Active || a.AuthenticatorType == TypePasskey || sameChannel(a, connectionType) {
			continue
		}
		if a.AuthenticatorType == TypeRecoveryCode && !enrolled(all) {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

func sameChannel(a Authenticator, connectionType string) bool {
	switch a.OOBChannel {
	case ChannelEmail:
		return connectionType == login.EmailOTP || connectionType == login.MagicLink
	case ChannelSMS:
		return connectionType == login.PhoneOTP
	}
	return false
}

// listFactors lists the user's factors that the project offers: TOTP factors (unconfirmed ones
// inactive), the verified phone and email as out-of-band channels, and the recovery codes.
func listFactors(ctx context.Context, tx Store, st project.Settings, u store.User) ([]Authenticator, error) {
	offers := func(f string) bool { return slices.Contains(st.MFA.Factors, f) }
	out := []Authenticator{}
	if offers(project.FactorOTP) {
		factors, err := tx.ListMFAFactors(ctx, u.ProjectID, u.ID)
		if err != nil {
			return nil, fmt.Errorf("list MFA factors: %w", err)
		}
		for _, f := range factors {
			if f.Type == store.MFAFactorOTP {
				out = append(out, Authenticator{ID: f.ID, AuthenticatorType: TypeOTP, Name: "Authenticator app",
					Active: f.Confirmed, CreatedAt: ptr(f.CreatedAt)})
			}
		}
	}
	if offers(project.FactorSMS) && u.Phone != "" && u.PhoneVerified {
		out = append(out, Authenticator{ID: ChannelSMS, AuthenticatorType: TypeOOB, OOBChannel: ChannelSMS,
			Name: maskPhone(u.Phone), Active: true})
	}
	if offers(project.FactorEmail) && u.Email != "" && u.EmailVerified {
		out = append(out, Authenticator{ID: ChannelEmail, AuthenticatorType: TypeOOB, OOBChannel: ChannelEmail,
			Name: maskEmail(u.Email), Active: true})
	}
	if offers(project.FactorRecoveryCode) {
		n, err := tx.CountRecoveryCodes(ctx, u.ProjectID, u.ID)
		if err != nil {
			return nil, fmt.Errorf("count recovery codes: %w", err)
		}
		if n > 0 {
			out = append(out, Authenticator{ID: TypeRecoveryCode, AuthenticatorType: TypeRecoveryCode,
				Name: fmt.Sprintf("%d recovery codes left", n), Active: true})
		}
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

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
