-- Login log order (issue 13): newest first is by (created_at, id), because ids carry only the
-- second they were made in, as for audit events (0016). This index serves that order for a
-- user's logs and replaces the one by id, which no query orders by any more.

CREATE INDEX login_logs_user_time ON login_logs (project_id, user_id, created_at, id);
DROP INDEX login_logs_user;
