-- Audit log order (issue 13): newest first is by (created_at, id), because ids carry only the
-- second they were made in. These indexes serve that order for the listing and its filters by
-- user and organization, and replace the ones by id, which no query orders by any more.

CREATE INDEX audit_events_project_time ON audit_events (project_id, created_at, id);
CREATE INDEX audit_events_user_time ON audit_events (project_id, user_id, created_at, id);
CREATE INDEX audit_events_organization_time ON audit_events (project_id, organization_id, created_at, id);
DROP INDEX audit_events_project;
DROP INDEX audit_events_user;
DROP INDEX audit_events_organization;
