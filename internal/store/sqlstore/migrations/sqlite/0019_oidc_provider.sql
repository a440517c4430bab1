-- The OpenID Provider (issue 15): authorization requests, single-use authorization codes and
-- the hosted login page's browser sessions, all in the database so that any instance finishes
-- a flow another started; and the OAuth scope a session was granted.

-- One authorization request from /v1/authorize until its code is exchanged or it expires. The
-- id is 128 random bits (it travels in the login page's URL); browser_binding is the SHA-256 of
-- the cookie that ties it to the browser that started it. The approval columns (user_id ..
-- done_at) are written once, by the login that answers the request; they carry no foreign key
-- because the login writes them in its own transaction, in whatever order it creates the user
-- and the session, and the row is swept soon after it expires anyway. denied_at is set instead of
-- done_at when the user declines: the callback then answers the client with access_denied.
CREATE TABLE oidc_auth_requests (
    id                    TEXT    NOT NULL PRIMARY KEY,
    project_id            TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    client_id             TEXT    NOT NULL,
    redirect_uri          TEXT    NOT NULL,
    scopes_json           TEXT    NOT NULL,
    state                 TEXT    NOT NULL,
    nonce                 TEXT    NOT NULL,
    response_mode         TEXT    NOT NULL,
    code_challenge        TEXT    NOT NULL,
    code_challenge_method TEXT    NOT NULL,
    prompt_json           TEXT    NOT NULL,
    max_age               INTEGER, -- seconds; NULL when the client sent none
    login_hint            TEXT    NOT NULL,
    ui_locales_json       TEXT    NOT NULL,
    extensions_json       TEXT    NOT NULL,
    browser_binding       BLOB    NOT NULL,
    user_id               TEXT    NOT NULL,
    session_id            TEXT    NOT NULL,
    organization_id       TEXT    NOT NULL,
    connection_type       TEXT    NOT NULL,
    amr_json              TEXT    NOT NULL,
    auth_time             INTEGER,
    done_at               INTEGER,
    denied_at             INTEGER, -- the user declined (consent); a request is answered once, either way
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    UNIQUE (project_id, id)
) STRICT;
CREATE INDEX oidc_auth_requests_expiry ON oidc_auth_requests (expires_at);

-- An authorization code, kept only as its SHA-256. consumed_at is set by one conditional
-- UPDATE (consumed_at IS NULL), together with the token session the winning exchange started,
-- so that a second exchange can revoke it. session_id has no foreign key: the exchange may
-- consume the code before it creates the session in the same transaction.
CREATE TABLE oidc_codes (
    code_hash   BLOB    NOT NULL PRIMARY KEY,
    project_id  TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    consumed_at INTEGER,
    session_id  TEXT    NOT NULL,
    FOREIGN KEY (project_id, request_id) REFERENCES oidc_auth_requests (project_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX oidc_codes_request ON oidc_codes (project_id, request_id);
CREATE INDEX oidc_codes_expiry ON oidc_codes (expires_at);

-- The hosted login page's sign-in of one browser: the SHA-256 of a __Host- cookie, linked to
-- the token session the login started, so that ending that session ends single sign-on too
-- (the row goes with its session).
CREATE TABLE oidc_browser_sessions (
    id              TEXT    NOT NULL PRIMARY KEY,
    project_id      TEXT    NOT NULL,
    token_hash      BLOB    NOT NULL,
    user_id         TEXT    NOT NULL,
    session_id      TEXT    NOT NULL,
    organization_id TEXT    NOT NULL,
    connection_type TEXT    NOT NULL,
    amr_json        TEXT    NOT NULL,
    auth_time       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    UNIQUE (project_id, id),
    UNIQUE (project_id, token_hash),
    FOREIGN KEY (project_id, session_id) REFERENCES sessions (project_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX oidc_browser_sessions_session ON oidc_browser_sessions (project_id, session_id);
CREATE INDEX oidc_browser_sessions_expiry ON oidc_browser_sessions (expires_at);
CREATE INDEX oidc_browser_sessions_revoked ON oidc_browser_sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- The space-separated OAuth scope an OpenID Connect client was granted; '' for the API's own
-- logins, which is what every existing session is.
ALTER TABLE sessions ADD COLUMN scope TEXT NOT NULL DEFAULT '';

-- The login session whose single sign-on a code exchange's session came from (the hosted
-- page's session, which the browser session is linked to); '' for every other session. No
-- foreign key: the parent may be swept before the child, and the link is only followed by
-- RP-initiated logout, which ignores a parent that is gone.
ALTER TABLE sessions ADD COLUMN parent_id TEXT NOT NULL DEFAULT '';
