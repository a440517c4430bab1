// Package webhookhttp serves the webhook management routes over package webhook.
package webhookhttp
