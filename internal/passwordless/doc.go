// Package passwordless runs the login flows that send a secret to the user: magic links, email
// codes and SMS codes, one flow engine for all three, with their messages queued in the outbox.
package passwordless
