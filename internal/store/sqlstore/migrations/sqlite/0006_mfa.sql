-- Multi-factor authentication: users' second factors (issue 6).

-- A TOTP factor's secret is sealed (secretbox) because codes are checked against it: it must be
-- readable by the server, never by whoever copies the database file. last_used_step is the
-- newest time step accepted, so each step is accepted once.
CREATE TABLE mfa_factors (
    id             TEXT    NOT NULL PRIMARY KEY,
    project_id     TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    secret         BLOB    NOT NULL,
    confirmed      INTEGER NOT NULL,
    last_used_step INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    confirmed_at   INTEGER,
    last_used_at   INTEGER,
    FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX mfa_factors_user ON mfa_factors (project_id, user_id, id);
