// Package directoryhttp serves the management API for users, organizations, roles and
// permissions (API.md §9) as thin handlers over package directory.
package directoryhttp
