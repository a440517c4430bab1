-- Attack protection (issue 7): counters of failed secrets and sent messages per account, IP,
-- (account, IP) and destination, shared by every instance through the database.

CREATE TABLE protect_counters (
    project_id   TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    scope        TEXT    NOT NULL,
    counter_key  TEXT    NOT NULL,
    count        INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    last_at      INTEGER,
    locked_until INTEGER,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (project_id, scope, counter_key)
) STRICT;
CREATE INDEX protect_counters_idle ON protect_counters (updated_at);
