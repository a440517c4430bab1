-- Passwords (issue 7): an optional login method. The encoded hash (argon2id PHC string, or an
-- imported bcrypt hash until the user's next login upgrades it) is kept apart from users.

CREATE TABLE user_passwords (
    project_id TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    hash       TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id),
    FOREIGN KEY (project_id, user_id) REFERENCES users (project_id, id) ON DELETE CASCADE
);
