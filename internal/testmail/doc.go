// Package testmail runs a real SMTP server, mailpit, for tests and reads what it received
// through mailpit's REST API.
package testmail
