-- Passwordless flows, the outbox and message template overrides (issue 4).

CREATE TABLE flows (
    id           TEXT    NOT NULL PRIMARY KEY,
    project_id   TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    channel      TEXT    NOT NULL,
    destination  TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL,
    redirect_url TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    resends      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    verified_at  INTEGER,
    collected_at INTEGER
) STRICT;
CREATE INDEX flows_project ON flows (project_id, id);

CREATE TABLE outbox (
    id           TEXT    NOT NULL PRIMARY KEY,
    project_id   TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    channel      TEXT    NOT NULL,
    recipient    TEXT    NOT NULL,
    payload      BLOB    NOT NULL, -- secretbox-sealed
    created_at   INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    last_error   TEXT    NOT NULL,
    sent_at      INTEGER,
    failed_at    INTEGER
) STRICT;
CREATE INDEX outbox_pending ON outbox (available_at, id) WHERE sent_at IS NULL AND failed_at IS NULL;

CREATE TABLE message_templates (
    project_id TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    text_body  TEXT    NOT NULL,
    html_body  TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, name)
) STRICT;
