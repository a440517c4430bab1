-- 0001 foundation: projects and their client secrets, users, organizations with memberships,
-- roles and permissions, login logs and one-time secrets.
--
-- Conventions (the SQLite file follows the same ones):
--   * times are BIGINT unix microseconds, UTC;
--   * JSON documents are TEXT; booleans are BOOLEAN;
--   * ids and other keys are TEXT COLLATE "C": they sort byte by byte, as in SQLite, so paging
--     by id gives the same pages on both, and range scans on them can use the indexes;
--   * every row of project data carries project_id, and the keys that link rows include it
--     (FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id)), so the database
--     itself refuses a link between two projects;
--   * (project_id, id) is UNIQUE on every entity: it is the parent key of those links and the
--     index that paging by id within a project walks.

CREATE TABLE projects (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    client_id  TEXT COLLATE "C" NOT NULL UNIQUE,
    name       TEXT   NOT NULL,
    settings   TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- At most one row, ever: whoever inserts it creates the Default project.
CREATE TABLE instance_bootstrap (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    claimed_at BIGINT  NOT NULL
);

CREATE TABLE project_secrets (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    hash       BYTEA  NOT NULL UNIQUE,
    hint       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX project_secrets_project_id ON project_secrets (project_id, id);

CREATE TABLE users (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id      TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    email           TEXT,
    -- email_key is the email case-folded (store.EmailKey): addresses that differ only in case
    -- belong to one person, so lookups and uniqueness use it while email keeps the user's spelling.
    email_key       TEXT,
    phone           TEXT,
    first_name      TEXT    NOT NULL,
    last_name       TEXT    NOT NULL,
    email_verified  BOOLEAN NOT NULL,
    phone_verified  BOOLEAN NOT NULL,
    active          BOOLEAN NOT NULL,
    connection_type TEXT    NOT NULL,
    groups_json     TEXT    NOT NULL,
    raw_attributes  TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    last_login_at   BIGINT,
    UNIQUE (project_id, id),
    UNIQUE (project_id, email_key),
    UNIQUE (project_id, phone)
);

CREATE TABLE organizations (
    id                                  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id                          TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                                TEXT    NOT NULL,
    domain                              TEXT    NOT NULL,
    workspace_name                      TEXT    NOT NULL,
    white_list_domains                  TEXT    NOT NULL,
    allow_profiles_outside_organization BOOLEAN NOT NULL,
    active                              BOOLEAN NOT NULL,
    created_at                          BIGINT  NOT NULL,
    updated_at                          BIGINT  NOT NULL,
    UNIQUE (project_id, id)
);

CREATE TABLE roles (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id  TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    slug        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    active      BOOLEAN NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (project_id, id),
    UNIQUE (project_id, slug)
);

CREATE TABLE permissions (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id  TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT   NOT NULL,
    slug        TEXT   NOT NULL,
    description TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (project_id, id),
    UNIQUE (project_id, slug)
);

CREATE TABLE role_permissions (
    project_id    TEXT COLLATE "C" NOT NULL,
    role_id       TEXT COLLATE "C" NOT NULL,
    permission_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, role_id, permission_id),
    FOREIGN KEY (project_id, role_id) REFERENCES roles (project_id, id) ON DELETE CASCADE,
    FOREIGN KEY (project_id, permission_id) REFERENCES permissions (project_id, id) ON DELETE CASCADE
);
CREATE INDEX role_permissions_permission ON role_permissions (project_id, permission_id);

CREATE TABLE memberships (
    project_id      TEXT COLLATE "C" NOT NULL,
    organization_id TEXT COLLATE "C" NOT NULL,
    user_id         TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (project_id, organization_id, user_id),
    FOREIGN KEY (project_id, organization_id) REFERENCES organizations (project_id, id) ON DELETE CASCADE,
    FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id) ON DELETE CASCADE
);
CREATE INDEX memberships_user ON memberships (project_id, user_id, organization_id);

CREATE TABLE membership_roles (
    project_id      TEXT COLLATE "C" NOT NULL,
    organization_id TEXT COLLATE "C" NOT NULL,
    user_id         TEXT COLLATE "C" NOT NULL,
    role_id         TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, organization_id, user_id, role_id),
    FOREIGN KEY (project_id, organization_id, user_id)
        REFERENCES memberships (project_id, organization_id, user_id) ON DELETE CASCADE,
    FOREIGN KEY (project_id, role_id) REFERENCES roles (project_id, id) ON DELETE CASCADE
);
CREATE INDEX membership_roles_role ON membership_roles (project_id, role_id);

CREATE TABLE login_logs (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id      TEXT COLLATE "C" NOT NULL,
    user_id         TEXT COLLATE "C" NOT NULL,
    ip_address      TEXT   NOT NULL,
    country         TEXT   NOT NULL,
    city            TEXT   NOT NULL,
    user_agent      TEXT   NOT NULL,
    connection_type TEXT   NOT NULL,
    os              TEXT   NOT NULL,
    device          TEXT   NOT NULL,
    browser         TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id) ON DELETE CASCADE
);
CREATE INDEX login_logs_user ON login_logs (project_id, user_id, id);

CREATE TABLE one_time_secrets (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project_id  TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    purpose     TEXT COLLATE "C" NOT NULL,
    hash        BYTEA  NOT NULL,
    subject     TEXT   NOT NULL,
    payload     TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    consumed_at BIGINT,
    UNIQUE (project_id, purpose, hash)
);
