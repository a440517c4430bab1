// Package auditlog reads a project's audit log: filtered, paged listings of its audit events,
// and the public form of an event that the log API and webhooks both show.
package auditlog
