-- An outbox message may expire with the flow that wrote it: a 5-minute code must not be
-- delivered an hour later by a retry. NULL means the message never expires.

ALTER TABLE outbox ADD COLUMN expires_at INTEGER;
