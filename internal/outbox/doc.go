// Package outbox delivers the outbox: a worker claims the messages that flows wrote in their
// own transactions, opens their sealed content and hands them to the notify senders, with
// retries, backoff and expiry.
package outbox
