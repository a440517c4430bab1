-- Multi-factor authentication over HTTP (issue 6): out-of-band codes (SMS, email) sent for a
-- challenge, the organization a challenged login is into, and the per-user failure window.

ALTER TABLE mfa_challenges ADD COLUMN organization_id TEXT COLLATE "C" NOT NULL DEFAULT '';
-- The newest wrong answer: the per-user limit counts the attempts of challenges that failed
-- within its window, across mfa_tokens.
ALTER TABLE mfa_challenges ADD COLUMN last_failed_at BIGINT;
-- One out-of-band code per challenge, replaced by each send; both the handle given to the
-- client (oob_code) and the code sent to the user are kept only as hashes.
ALTER TABLE mfa_challenges ADD COLUMN oob_channel TEXT NOT NULL DEFAULT '';
ALTER TABLE mfa_challenges ADD COLUMN oob_code_hash BYTEA;
ALTER TABLE mfa_challenges ADD COLUMN oob_secret_hash BYTEA;
ALTER TABLE mfa_challenges ADD COLUMN oob_sends INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mfa_challenges ADD COLUMN oob_sent_at BIGINT;
CREATE INDEX mfa_challenges_user_failures ON mfa_challenges (project_id, user_id, last_failed_at);
