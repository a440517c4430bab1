package passkey

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/notice"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// List returns a user's passkeys, oldest first.
func (s *Service) List(ctx context.Context, p store.Project, userID string) ([]store.Passkey, error) {
	out, err := s.d.Store.ListPasskeys(ctx, p.ID, userID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	return out, nil
}

// Rename renames one of the user's passkeys.
func (s *Service) Rename(ctx context.Context, p store.Project, userID, id, name string) (store.Passkey, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > maxNameLen || strings.ContainsFunc(name, isControl) {
		return store.Passkey{}, failure.InvalidField("invalid_name", "name", fmt.Sprintf("must be 1 to %d characters without control characters", maxNameLen))
	}
	var pk store.Passkey
	err := s.d.Store.InTx(ctx, func(tx store.Store) error {
		var err error
		if pk, err = tx.RenamePasskey(ctx, p.ID, userID, id, name, s.now()); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: p.ID, Type: "passkey.renamed",
			UserID: userID, Detail: map[string]any{"passkey_id": id}, CreatedAt: s.now()})
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Passkey{}, passkeyNotFound()
	}
	if err != nil {
		return store.Passkey{}, fmt.Errorf("rename passkey: %w", err)
	}
	return pk, nil
}

// Delete removes one of the user's passkeys. The last passkey of a user who has no verified
// email or phone is their only way in, so removing it is refused.
func (s *Service) Delete(ctx context.Context, p store.Project, userID, id string) error {
	err := s.d.Store.InTx(ctx, func(tx store.Store) error {
		u, err := tx.GetUser(ctx, p.ID, userID)
		if err != nil {
			return err
		}
		pks, err := tx.ListPasskeys(ctx, p.ID, userID)
		if err != nil {
			return err
		}
		owned := false
		for _, pk := range pks {
			owned = owned || pk.ID == id
		}
		if !owned {
			return passkeyNotFound()
		}
		if len(pks) == 1 && !u.EmailVerified && !u.PhoneVerified {
			return failure.New(failure.Conflict, "last_sign_in_method",
				"this passkey is the account's only way to sign in: verify an email or phone, or add another passkey, first")
		}
		if err := tx.DeletePasskey(ctx, p.ID, userID, id); err != nil {
			return err
		}
		if err := s.notify(ctx, tx, p, userID, notice.PasskeyRemoved); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: p.ID, Type: "passkey.deleted",
			UserID: userID, Detail: map[string]any{"passkey_id": id}, CreatedAt: s.now()})
	})
	if errors.Is(err, store.ErrNotFound) {
		return passkeyNotFound()
	}
	if err == nil {
		s.wake()
	}
	return err
}

// DeleteAll removes every passkey of a user (the management API: an operator recovering an
// account whose device was lost). It reports how many there were.
func (s *Service) DeleteAll(ctx context.Context, p store.Project, userID string) (int, error) {
	var n int
	err := s.d.Store.InTx(ctx, func(tx store.Store) error {
		if _, err := tx.GetUser(ctx, p.ID, userID); err != nil {
			return err
		}
		var err error
		if n, err = tx.DeleteUserPasskeys(ctx, p.ID, userID); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{ID: s.d.IDs.New(), ProjectID: p.ID, Type: "passkey.deleted_all",
			UserID: userID, Detail: map[string]any{"count": n}, CreatedAt: s.now()})
	})
	if errors.Is(err, store.ErrNotFound) {
		return 0, failure.New(failure.NotFound, "user_not_found", "no such user")
	}
	return n, err
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }

func passkeyNotFound() error {
	return failure.New(failure.NotFound, "passkey_not_found", "no such passkey")
}

// notify tells the user of a change through tx, when the service has notices.
func (s *Service) notify(ctx context.Context, tx Store, p store.Project, userID, change string) error {
	if s.d.Notices == nil {
		return nil
	}
	u, err := tx.GetUser(ctx, p.ID, userID)
	if err != nil {
		return fmt.Errorf("get user %s: %w", userID, err)
	}
	return s.d.Notices.Notify(ctx, tx, p, u, change)
}

func (s *Service) wake() {
	if s.d.Wake != nil {
		s.d.Wake()
	}
}
