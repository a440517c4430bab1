package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

const passkeyColumns = `id, project_id, user_id, credential_id, public_key, sign_count, aaguid, transports,
	backup_eligible, backup_state, user_verified, attestation_type, attestation_format, name, clone_suspected,
	created_at, updated_at, last_used_at`

// CreatePasskey stores p: ErrConflict when the project has its credential id already.
func (s *Store) CreatePasskey(ctx context.Context, p store.Passkey) error {
	transports, err := stringsJSON(p.Transports)
	if err != nil {
		return s.wrap(err, "create passkey %s", p.ID)
	}
	err = s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO passkeys (`+passkeyColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.ProjectID, p.UserID, p.CredentialID, p.PublicKey, int64(p.SignCount), nonNilBytes(p.AAGUID), transports,
			p.BackupEligible, p.BackupState, p.UserVerified, p.AttestationType, p.AttestationFormat, p.Name,
			p.CloneSuspected, toMicros(p.CreatedAt), toMicros(p.UpdatedAt), toNullMicros(p.LastUsedAt))
		return err
	})
	return s.wrap(err, "create passkey %s", p.ID)
}

// GetPasskeyByCredentialID returns the project's credential with that credential id.
func (s *Store) GetPasskeyByCredentialID(ctx context.Context, projectID string, credentialID []byte) (store.Passkey, error) {
	p, err := scanPasskey(s.queryRow(ctx, `SELECT `+passkeyColumns+` FROM passkeys
		WHERE project_id = ? AND credential_id = ?`, projectID, credentialID))
	return p, s.wrap(err, "get passkey by credential id")
}

// ListPasskeys returns a user's credentials, oldest first.
func (s *Store) ListPasskeys(ctx context.Context, projectID, userID string) ([]store.Passkey, error) {
	rows, err := s.query(ctx, `SELECT `+passkeyColumns+` FROM passkeys
		WHERE project_id = ? AND user_id = ? ORDER BY created_at, id`, projectID, userID)
	if err != nil {
		return nil, s.wrap(err, "list passkeys of user %s", userID)
	}
	out, err := collect(rows, scanPasskey)
	return out, s.wrap(err, "list passkeys of user %s", userID)
}

// SamplePasskeyShapes returns the id lengths and transports of up to limit of the project's
// credentials, by user, then oldest first.
func (s *Store) SamplePasskeyShapes(ctx context.Context, projectID string, limit int) ([]store.PasskeyShape, error) {
	rows, err := s.query(ctx, `SELECT user_id, length(credential_id), transports FROM passkeys
		WHERE project_id = ? ORDER BY user_id, created_at, id LIMIT ?`, projectID, limit)
	if err != nil {
		return nil, s.wrap(err, "sample passkey shapes")
	}
	out, err := collect(rows, func(sc scanner) (store.PasskeyShape, error) {
		var p store.PasskeyShape
		var transports string
		if err := sc.Scan(&p.UserID, &p.IDLength, &transports); err != nil {
			return p, err
		}
		var err error
		p.Transports, err = stringsFromJSON(transports)
		return p, err
	})
	return out, s.wrap(err, "sample passkey shapes")
}

// RenamePasskey renames one of the user's credentials.
func (s *Store) RenamePasskey(ctx context.Context, projectID, userID, id, name string, at time.Time) (store.Passkey, error) {
	p, err := scanPasskey(s.writeRow(ctx, `UPDATE passkeys SET name = ?, updated_at = ?
		WHERE project_id = ? AND user_id = ? AND id = ? RETURNING `+passkeyColumns,
		name, toMicros(at), projectID, userID, id))
	return p, s.wrap(err, "rename passkey %s", id)
}

// DeletePasskey removes one of the user's credentials.
func (s *Store) DeletePasskey(ctx context.Context, projectID, userID, id string) error {
	err := mustAffect(s.execAffected(ctx, `DELETE FROM passkeys WHERE project_id = ? AND user_id = ? AND id = ?`,
		projectID, userID, id))
	return s.wrap(err, "delete passkey %s", id)
}

// DeleteUserPasskeys removes all of a user's credentials.
func (s *Store) DeleteUserPasskeys(ctx context.Context, projectID, userID string) (int, error) {
	n, err := s.execAffected(ctx, `DELETE FROM passkeys WHERE project_id = ? AND user_id = ?`, projectID, userID)
	return int(n), s.wrap(err, "delete passkeys of user %s", userID)
}

// RecordPasskeyUse is one UPDATE conditioned on the count the assertion was checked against,
// so two assertions racing on one count cannot both be recorded.
func (s *Store) RecordPasskeyUse(ctx context.Context, projectID, id string, u store.PasskeyUse) (store.Passkey, error) {
	p, err := scanPasskey(s.writeRow(ctx, `UPDATE passkeys SET sign_count = ?, backup_state = ?,
		user_verified = CASE WHEN ? THEN ? ELSE user_verified END, last_used_at = ?, updated_at = ?
		WHERE project_id = ? AND id = ? AND sign_count = ? AND clone_suspected = ?
		RETURNING `+passkeyColumns,
		int64(u.SignCount), u.BackupState, u.UserVerified, true, toMicros(u.At), toMicros(u.At),
		projectID, id, int64(u.PrevSignCount), false))
	if err == sql.ErrNoRows {
		// The credential exists (the caller just read it): its count moved or it was flagged.
		return store.Passkey{}, s.wrap(store.ErrConflict, "record use of passkey %s", id)
	}
	return p, s.wrap(err, "record use of passkey %s", id)
}

// FlagPasskeyClone marks the credential as possibly cloned.
func (s *Store) FlagPasskeyClone(ctx context.Context, projectID, id string, at time.Time) error {
	err := mustAffect(s.execAffected(ctx, `UPDATE passkeys SET clone_suspected = ?, updated_at = ?
		WHERE project_id = ? AND id = ?`, true, toMicros(at), projectID, id))
	return s.wrap(err, "flag passkey %s", id)
}

// EnsurePasskeyHandle inserts candidate unless the user has a handle, then reads the one stored.
func (s *Store) EnsurePasskeyHandle(ctx context.Context, projectID, userID string, candidate []byte) ([]byte, error) {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO passkey_handles (project_id, user_id, handle) VALUES (?, ?, ?)
			ON CONFLICT (project_id, user_id) DO NOTHING`, projectID, userID, candidate)
		return err
	})
	if err != nil {
		return nil, s.wrap(err, "make the passkey handle of user %s", userID)
	}
	var h []byte
	err = s.writeRow(ctx, `SELECT handle FROM passkey_handles WHERE project_id = ? AND user_id = ?`,
		projectID, userID).Scan(&h)
	return h, s.wrap(err, "read the passkey handle of user %s", userID)
}

// PasskeyHandle returns the user's handle.
func (s *Store) PasskeyHandle(ctx context.Context, projectID, userID string) ([]byte, error) {
	var h []byte
	err := s.queryRow(ctx, `SELECT handle FROM passkey_handles WHERE project_id = ? AND user_id = ?`,
		projectID, userID).Scan(&h)
	return h, s.wrap(err, "read the passkey handle of user %s", userID)
}

// UserIDByPasskeyHandle returns the id of the user the handle belongs to.
func (s *Store) UserIDByPasskeyHandle(ctx context.Context, projectID string, handle []byte) (string, error) {
	var id string
	err := s.queryRow(ctx, `SELECT user_id FROM passkey_handles WHERE project_id = ? AND handle = ?`,
		projectID, handle).Scan(&id)
	return id, s.wrap(err, "find the user of a passkey handle")
}

func scanPasskey(sc scanner) (store.Passkey, error) {
	var p store.Passkey
	var signCount, created, updated int64
	var transports string
	var lastUsed sql.NullInt64
	if err := sc.Scan(&p.ID, &p.ProjectID, &p.UserID, &p.CredentialID, &p.PublicKey, &signCount, &p.AAGUID, &transports,
		&p.BackupEligible, &p.BackupState, &p.UserVerified, &p.AttestationType, &p.AttestationFormat, &p.Name,
		&p.CloneSuspected, &created, &updated, &lastUsed); err != nil {
		return store.Passkey{}, err
	}
	var err error
	if p.Transports, err = stringsFromJSON(transports); err != nil {
		return store.Passkey{}, err
	}
	p.SignCount = uint32(signCount)
	p.CreatedAt, p.UpdatedAt, p.LastUsedAt = fromMicros(created), fromMicros(updated), fromNullMicros(lastUsed)
	return p, nil
}

const ceremonyColumns = `id, project_id, code_hash, kind, user_id, identifier_key, session, status, created_at,
	expires_at, finished_at`

// CreateCeremony stores c; ErrNotFound when its project does not exist.
func (s *Store) CreateCeremony(ctx context.Context, c store.Ceremony) error {
	err := s.guarded(ctx, func(s *Store) error {
		_, err := s.exec(ctx, `INSERT INTO passkey_ceremonies (`+ceremonyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.ProjectID, c.CodeHash, c.Kind, c.UserID, c.IdentifierKey, c.Session, c.Status,
			toMicros(c.CreatedAt), toMicros(c.ExpiresAt), toNullMicros(c.FinishedAt))
		return err
	})
	return s.wrap(err, "create ceremony %s", c.ID)
}

// UseCeremony is one UPDATE whose WHERE clause holds every condition, so a code is used once
// however many callers present it at the same time.
func (s *Store) UseCeremony(ctx context.Context, projectID, kind string, codeHash []byte, at time.Time) (store.Ceremony, error) {
	c, err := scanCeremony(s.writeRow(ctx, `UPDATE passkey_ceremonies SET status = ?
		WHERE project_id = ? AND kind = ? AND code_hash = ? AND status = ? AND expires_at > ?
		RETURNING `+ceremonyColumns,
		store.CeremonyUsed, projectID, kind, codeHash, store.CeremonyPending, toMicros(at)))
	return c, s.wrap(err, "use a %s ceremony", kind)
}

// FinishCeremony records the outcome of a used ceremony.
func (s *Store) FinishCeremony(ctx context.Context, projectID, id, status, userID, identifierKey string, at time.Time) error {
	err := mustAffect(s.execAffected(ctx, `UPDATE passkey_ceremonies SET status = ?, finished_at = ?,
		user_id = CASE WHEN ? = '' THEN user_id ELSE ? END,
		identifier_key = CASE WHEN ? = '' THEN identifier_key ELSE ? END
		WHERE project_id = ? AND id = ? AND status = ?`,
		status, toMicros(at), userID, userID, identifierKey, identifierKey, projectID, id, store.CeremonyUsed))
	return s.wrap(err, "finish ceremony %s", id)
}

// LatestCeremony returns the newest ceremony of the project for the identifier.
func (s *Store) LatestCeremony(ctx context.Context, projectID, identifierKey string) (store.Ceremony, error) {
	c, err := scanCeremony(s.queryRow(ctx, `SELECT `+ceremonyColumns+` FROM passkey_ceremonies
		WHERE project_id = ? AND identifier_key = ? ORDER BY created_at DESC, id DESC LIMIT 1`,
		projectID, identifierKey))
	return c, s.wrap(err, "find the latest ceremony")
}

func scanCeremony(sc scanner) (store.Ceremony, error) {
	var c store.Ceremony
	var created, expires int64
	var finished sql.NullInt64
	if err := sc.Scan(&c.ID, &c.ProjectID, &c.CodeHash, &c.Kind, &c.UserID, &c.IdentifierKey, &c.Session, &c.Status,
		&created, &expires, &finished); err != nil {
		return store.Ceremony{}, err
	}
	c.CreatedAt, c.ExpiresAt, c.FinishedAt = fromMicros(created), fromMicros(expires), fromNullMicros(finished)
	return c, nil
}

// nonNilBytes stores an absent value as an empty one: the columns are NOT NULL.
func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
