// Package auditloghttp serves a project's audit log (GET /api/v1/logs) over package auditlog.
package auditloghttp
