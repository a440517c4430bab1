-- The email lookup key (users.email_key, store.EmailKey) changes from the whole address
-- lower-cased with Unicode rules to: the domain in its IDNA ASCII form, lower case, and only
-- A-Z folded in the local part. SQL cannot compute IDNA, so the new keys are written by a Go
-- step that runs in this migration's transaction (sqlstore.rekeyEmails). For every address the
-- old code could store the domain part is unchanged; only local parts with non-ASCII letters
-- get a new key. Nothing changes in the schema.
SELECT 1;
