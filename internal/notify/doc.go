// Package notify delivers email and SMS messages: the senders (SMTP, Twilio, log), the message
// templates with their built-in defaults, and the outbox worker that drives the senders.
package notify
