-- Passkeys: WebAuthn credentials, the random user handles they are bound to, and ceremonies
-- (issue 5).

-- A user's WebAuthn user handle: random, never the email, so an authenticator holds nothing
-- that names the person.
CREATE TABLE passkey_handles (
    project_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    handle     BLOB NOT NULL,
    PRIMARY KEY (project_id, user_id),
    UNIQUE (project_id, handle),
    FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE passkeys (
    id                 TEXT    NOT NULL PRIMARY KEY,
    project_id         TEXT    NOT NULL,
    user_id            TEXT    NOT NULL,
    credential_id      BLOB    NOT NULL,
    public_key         BLOB    NOT NULL,
    sign_count         INTEGER NOT NULL,
    aaguid             BLOB    NOT NULL,
    transports         TEXT    NOT NULL, -- JSON array
    backup_eligible    INTEGER NOT NULL,
    backup_state       INTEGER NOT NULL,
    user_verified      INTEGER NOT NULL,
    attestation_type   TEXT    NOT NULL,
    attestation_format TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    clone_suspected    INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    last_used_at       INTEGER,
    UNIQUE (project_id, credential_id),
    FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX passkeys_user ON passkeys (project_id, user_id, id);

CREATE TABLE passkey_ceremonies (
    id             TEXT    NOT NULL PRIMARY KEY,
    project_id     TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    code_hash      BLOB    NOT NULL UNIQUE,
    kind           TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    identifier_key TEXT    NOT NULL,
    session        BLOB    NOT NULL,
    status         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    finished_at    INTEGER
) STRICT;
CREATE INDEX passkey_ceremonies_identifier ON passkey_ceremonies (project_id, identifier_key, created_at);
CREATE INDEX passkey_ceremonies_expiry ON passkey_ceremonies (expires_at);
