-- Multi-factor authentication: users' recovery (backup) codes (issue 6).

-- A recovery code is kept only as its hash, and used once: used_at is set by one conditioned
-- UPDATE. A new set replaces the old one, used codes included.
CREATE TABLE recovery_codes (
    id         TEXT    NOT NULL PRIMARY KEY,
    project_id TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    UNIQUE (project_id, user_id, hash),
    FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id) ON DELETE CASCADE
) STRICT;
