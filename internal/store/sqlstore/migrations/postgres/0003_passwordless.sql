-- Passwordless flows, the outbox and message template overrides (issue 4).

CREATE TABLE flows (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id   TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    channel      TEXT    NOT NULL,
    destination  TEXT    NOT NULL,
    secret_hash  BYTEA   NOT NULL,
    redirect_url TEXT    NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL,
    status       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    resends      INTEGER NOT NULL,
    created_at   BIGINT  NOT NULL,
    sent_at      BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    verified_at  BIGINT,
    collected_at BIGINT
);
CREATE INDEX flows_project ON flows (project_id, id);

CREATE TABLE outbox (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id   TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    channel      TEXT    NOT NULL,
    recipient    TEXT    NOT NULL,
    payload      BYTEA   NOT NULL, -- secretbox-sealed
    created_at   BIGINT  NOT NULL,
    available_at BIGINT  NOT NULL,
    attempts     INTEGER NOT NULL,
    last_error   TEXT    NOT NULL,
    sent_at      BIGINT,
    failed_at    BIGINT
);
CREATE INDEX outbox_pending ON outbox (available_at, id) WHERE sent_at IS NULL AND failed_at IS NULL;

CREATE TABLE message_templates (
    project_id TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    text_body  TEXT    NOT NULL,
    html_body  TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (project_id, name)
);
