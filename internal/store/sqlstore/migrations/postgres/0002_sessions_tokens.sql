-- Signing keys, sessions, refresh tokens and audit events (issue 3).

CREATE TABLE signing_keys (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id   TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    algorithm    TEXT    NOT NULL,
    private_key  BYTEA   NOT NULL, -- secretbox-sealed PKCS#8
    public_jwk   TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    activates_at BIGINT  NOT NULL,
    retires_at   BIGINT
);
CREATE INDEX signing_keys_project ON signing_keys (project_id, activates_at, id);

CREATE TABLE sessions (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id      TEXT COLLATE "C" NOT NULL,
    user_id         TEXT COLLATE "C" NOT NULL,
    organization_id TEXT COLLATE "C" NOT NULL,
    connection_type TEXT    NOT NULL,
    amr_json        TEXT    NOT NULL,
    ip_address      TEXT    NOT NULL,
    user_agent      TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    last_seen_at    BIGINT  NOT NULL,
    idle_expires_at BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    revoked_at      BIGINT,
    revoke_reason   TEXT    NOT NULL,
    UNIQUE (project_id, id),
    FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_user ON sessions (project_id, user_id, id);

CREATE TABLE refresh_tokens (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id TEXT COLLATE "C" NOT NULL,
    session_id TEXT COLLATE "C" NOT NULL,
    hash       BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT,
    UNIQUE (project_id, hash),
    FOREIGN KEY (project_id, session_id) REFERENCES sessions (project_id, id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (project_id, session_id);

CREATE TABLE audit_events (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id  TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    type        TEXT    NOT NULL,
    user_id     TEXT COLLATE "C" NOT NULL,
    session_id  TEXT COLLATE "C" NOT NULL,
    ip_address  TEXT    NOT NULL,
    user_agent  TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX audit_events_project ON audit_events (project_id, id);
CREATE INDEX audit_events_user ON audit_events (project_id, user_id, id);
