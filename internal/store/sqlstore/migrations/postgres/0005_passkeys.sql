-- Passkeys: WebAuthn credentials, the random user handles they are bound to, and ceremonies
-- (issue 5).

-- A user's WebAuthn user handle: random, never the email, so an authenticator holds nothing
-- that names the person.
CREATE TABLE passkey_handles (
    project_id TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    handle     BYTEA NOT NULL,
    PRIMARY KEY (project_id, user_id),
    UNIQUE (project_id, handle),
    FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id) ON DELETE CASCADE
);

CREATE TABLE passkeys (
    id                 TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id         TEXT COLLATE "C" NOT NULL,
    user_id            TEXT COLLATE "C" NOT NULL,
    credential_id      BYTEA   NOT NULL,
    public_key         BYTEA   NOT NULL,
    sign_count         BIGINT  NOT NULL,
    aaguid             BYTEA   NOT NULL,
    transports         TEXT    NOT NULL, -- JSON array
    backup_eligible    BOOLEAN NOT NULL,
    backup_state       BOOLEAN NOT NULL,
    user_verified      BOOLEAN NOT NULL,
    attestation_type   TEXT    NOT NULL,
    attestation_format TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    clone_suspected    BOOLEAN NOT NULL,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    last_used_at       BIGINT,
    UNIQUE (project_id, credential_id),
    FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id) ON DELETE CASCADE
);
CREATE INDEX passkeys_user ON passkeys (project_id, user_id, id);

CREATE TABLE passkey_ceremonies (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id     TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    code_hash      BYTEA   NOT NULL UNIQUE,
    kind           TEXT    NOT NULL,
    user_id        TEXT COLLATE "C" NOT NULL,
    identifier_key TEXT    NOT NULL,
    session        BYTEA   NOT NULL,
    status         TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    finished_at    BIGINT
);
CREATE INDEX passkey_ceremonies_identifier ON passkey_ceremonies (project_id, identifier_key, created_at);
CREATE INDEX passkey_ceremonies_expiry ON passkey_ceremonies (expires_at);
