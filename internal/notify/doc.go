// Package notify sends email and SMS messages: the senders (SMTP, Twilio, log) and the message
// templates with their built-in defaults. Package outbox drives the senders.
package notify
