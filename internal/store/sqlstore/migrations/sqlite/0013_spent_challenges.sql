-- Bot detection (issue 7): proof-of-work challenges accepted once, across instances. The key
-- is the challenge's hash; rows go once the challenge has expired.

CREATE TABLE spent_challenges (
    challenge_key TEXT    NOT NULL PRIMARY KEY,
    expires_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX spent_challenges_expiry ON spent_challenges (expires_at);
