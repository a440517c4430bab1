-- Garbage collection and the master key check (issue 13).

-- Garbage collection deletes by expiry in bounded batches; each batch finds its rows through
-- these indexes instead of scanning the table. (passkey_ceremonies, mfa_challenges and
-- spent_challenges have theirs already.)
CREATE INDEX flows_expiry ON flows (expires_at);
CREATE INDEX one_time_secrets_expiry ON one_time_secrets (expires_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX sessions_idle_expiry ON sessions (idle_expires_at);
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX outbox_failed ON outbox (failed_at) WHERE failed_at IS NOT NULL;
CREATE INDEX outbox_expiry ON outbox (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries (failed_at) WHERE failed_at IS NOT NULL;

-- A known value sealed with the master key at first start (at most one row): a server whose
-- keys cannot open it was given the wrong key, and refuses to start instead of answering every
-- request that needs a secret with an error. Rewrapped by "keys rotate-master" like every
-- sealed column.
CREATE TABLE master_key_check (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (id = 'canary'),
    canary     BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
