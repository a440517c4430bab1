// Package directory manages a project's users, organizations, memberships, roles, permissions
// and login logs: every validation rule and flow of the management API, with no HTTP in it.
package directory
