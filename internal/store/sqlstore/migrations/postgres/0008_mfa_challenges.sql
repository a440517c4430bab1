-- Multi-factor authentication: second-factor steps in progress, the state behind an mfa_token
-- (issue 6).

-- The token is kept only as its hash. Wrong second factors are counted by one UPDATE that
-- kills the challenge at its limit; completing it is one conditioned UPDATE, so it is used once.
CREATE TABLE mfa_challenges (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id      TEXT COLLATE "C" NOT NULL,
    user_id         TEXT COLLATE "C" NOT NULL,
    token_hash      BYTEA   NOT NULL UNIQUE,
    connection_type TEXT    NOT NULL,
    amr             TEXT    NOT NULL, -- JSON array
    attempts        INTEGER NOT NULL,
    max_attempts    INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    completed_at    BIGINT,
    FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id) ON DELETE CASCADE
);
CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);
