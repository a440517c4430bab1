// Package webhook manages a project's webhooks (endpoints that receive its audit events, each
// with a signing secret) and delivers the events to them, signed, with retries.
package webhook
