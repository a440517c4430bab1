package mfa

import (
	"context"
	"fmt"
	"slices"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/notice"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// NewRecoveryCodes issues the signed-in user a new set of backup codes, voiding the old set.
// It needs a sign-in of the last FreshSession. Errors: user_token_required,
// reauthentication_required, factor_disabled (403).
func (s *Service) NewRecoveryCodes(ctx context.Context, sub Subject) ([]string, error) {
	if err := s.requireFresh(sub); err != nil {
		return nil, err
	}
	st, u, err := s.subject(ctx, s.d.Store, sub)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(st.MFA.Factors, project.FactorRecoveryCode) {
		return nil, failure.New(failure.Forbidden, "factor_disabled", "recovery codes are not offered by this project")
	}
	codes, err := s.d.Codes.Generate(ctx, sub.Project.ID, u.ID)
	if err != nil {
		return nil, err
	}
	if err := s.notify(ctx, s.d.Store, sub.Project, u.ID, notice.RecoveryCodesIssued); err != nil {
		return nil, err
	}
	s.d.Wake()
	if err := s.audit(ctx, s.d.Store, sub, AuditRecoveryCodesIssued, map[string]any{"count": len(codes)}); err != nil {
		return nil, err
	}
	return codes, nil
}

// DeleteAuthenticator removes one of the signed-in user's factors: an authenticator app, a
// passkey, or the recovery codes ("recovery-code"). It needs a sign-in of the last
// FreshSession, and is refused when the policy that applies to the user requires MFA and the
// removal would leave no second factor. The verified phone and email are removed by changing
// the user, not here. Errors: user_token_required, reauthentication_required (403),
// authenticator_not_found (404), authenticator_not_removable, last_second_factor (409).
func (s *Service) DeleteAuthenticator(ctx context.Context, sub Subject, id string) error {
	if err := s.requireFresh(sub); err != nil {
		return err
	}
	st, u, err := s.subject(ctx, s.d.Store, sub)
	if err != nil {
		return err
	}
	all, err := s.allFactors(ctx, sub.Project, st, u)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(all, func(a Authenticator) bool { return a.ID == id })
	if i < 0 {
		return errNoFactor()
	}
	a := all[i]
	switch a.AuthenticatorType {
	case TypeOOB:
		return failure.New(failure.Conflict, "authenticator_not_removable",
			"the verified %s is a second factor while the user has it: change the user to remove it", channelNoun(a.OOBChannel))
	case TypePasskey:
		if err := s.d.Passkeys.Delete(ctx, sub.Project, u.ID, id); err != nil {
			return err
		}
		return s.audit(ctx, s.d.Store, sub, AuditAuthenticatorDeleted, map[string]any{"authenticator_type": TypePasskey,
			"authenticator_id": id})
	}
	err = s.d.Store.InTx(ctx, func(tx store.Store) error {
		if a.AuthenticatorType == TypeOTP && a.Active {
			if err := s.keepsSecondFactor(ctx, tx, st, u, sub, id); err != nil {
				return err
			}
		}
		var err error
		if a.AuthenticatorType == TypeRecoveryCode {
			err = tx.ReplaceRecoveryCodes(ctx, sub.Project.ID, u.ID, nil)
		} else {
			err = tx.DeleteMFAFactor(ctx, sub.Project.ID, u.ID, id)
		}
		switch {
		case isNotFound(err):
			return errNoFactor()
		case err != nil:
			return fmt.Errorf("delete %s authenticator %s: %w", a.AuthenticatorType, id, err)
		}
		if a.AuthenticatorType == TypeOTP {
			if err := s.notify(ctx, tx, sub.Project, u.ID, notice.AuthenticatorRemoved); err != nil {
				return err
			}
		}
		return s.audit(ctx, tx, sub, AuditAuthenticatorDeleted, map[string]any{"authenticator_type": a.AuthenticatorType,
			"authenticator_id": id})
	})
	if err == nil {
		s.d.Wake()
	}
	return err
}

// keepsSecondFactor refuses removing the factor `without` from a user whose policy requires
// MFA when no other factor would be left to answer a challenge with.
func (s *Service) keepsSecondFactor(ctx context.Context, tx Store, st project.Settings, u store.User, sub Subject, without string) error {
	org := ""
	if sub.Session != nil {
		org = sub.Session.OrganizationID
	}
	policy, err := effectivePolicy(ctx, tx, st, u, org)
	if err != nil || policy != project.MFARequired {
		return err
	}
	left, err := listFactors(ctx, tx, st, u)
	if err != nil {
		return err
	}
	left = slices.DeleteFunc(left, func(a Authenticator) bool { return a.ID == without })
	if secondFactor(left) {
		return nil
	}
	return failure.New(failure.Conflict, "last_second_factor",
		"this is the user's last second factor and the policy requires one: add another first")
}

// Reset removes every authenticator app and recovery code of a user of the project (the
// management API), for a user who lost their device. The user enrolls again at their next
// sign-in when the policy requires MFA. It returns how many authenticator apps it removed.
// Errors: user_not_found (404).
func (s *Service) Reset(ctx context.Context, p store.Project, userID string) (int, error) {
	n := 0
	err := s.d.Store.InTx(ctx, func(tx store.Store) error {
		if _, err := tx.GetUser(ctx, p.ID, userID); err != nil {
			return userNotFound(err, userID)
		}
		factors, err := tx.ListMFAFactors(ctx, p.ID, userID)
		if err != nil {
			return fmt.Errorf("list MFA factors of user %s: %w", userID, err)
		}
		for _, f := range factors {
			if err := tx.DeleteMFAFactor(ctx, p.ID, userID, f.ID); err != nil {
				return fmt.Errorf("delete MFA factor %s: %w", f.ID, err)
			}
			n++
		}
		if err := tx.ReplaceRecoveryCodes(ctx, p.ID, userID, nil); err != nil {
			return fmt.Errorf("void recovery codes of user %s: %w", userID, err)
		}
		if n > 0 {
			if err := s.notify(ctx, tx, p, userID, notice.MFAReset); err != nil {
				return err
			}
		}
		return s.audit(ctx, tx, Subject{Project: p, UserID: userID}, AuditReset, map[string]any{"authenticators": n})
	})
	if err == nil {
		s.d.Wake()
	}
	return n, err
}
