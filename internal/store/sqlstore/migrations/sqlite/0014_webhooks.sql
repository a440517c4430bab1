-- Audit log filters and webhooks (issue 7).

-- An audit event may concern an organization ('' for none), so the log can be filtered by it.
ALTER TABLE audit_events ADD COLUMN organization_id TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_organization ON audit_events (project_id, organization_id, id);

-- A project's endpoints that receive its audit events. events is the JSON list of what the
-- endpoint receives ("*", exact types, or prefixes ending in "."); the signing secret is sealed
-- (secretbox): the server must read it to sign, whoever copies the database file must not.
CREATE TABLE webhooks (
    id         TEXT    NOT NULL PRIMARY KEY,
    project_id TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url        TEXT    NOT NULL,
    events     TEXT    NOT NULL,
    secret     BLOB    NOT NULL,
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX webhooks_project ON webhooks (project_id, id);

-- webhooks.events one pattern a row: what every new audit event's type is matched against.
CREATE TABLE webhook_event_types (
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    pattern    TEXT NOT NULL,
    PRIMARY KEY (webhook_id, pattern)
) STRICT;

-- One audit event on its way to one webhook, written in the transaction that writes the event,
-- and the record of its attempts: the last one's HTTP status (0: no answer) and error.
CREATE TABLE webhook_deliveries (
    project_id   TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    webhook_id   TEXT    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id     TEXT    NOT NULL REFERENCES audit_events (id) ON DELETE CASCADE,
    event_type   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    status_code  INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    delivered_at INTEGER,
    failed_at    INTEGER,
    PRIMARY KEY (webhook_id, event_id)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (available_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
