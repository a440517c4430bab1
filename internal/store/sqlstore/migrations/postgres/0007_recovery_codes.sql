-- Multi-factor authentication: users' recovery (backup) codes (issue 6).

-- A recovery code is kept only as its hash, and used once: used_at is set by one conditioned
-- UPDATE. A new set replaces the old one, used codes included.
CREATE TABLE recovery_codes (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    hash       BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    UNIQUE (project_id, user_id, hash),
    FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id) ON DELETE CASCADE
);
