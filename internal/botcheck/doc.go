// Package botcheck tells people from scripts on the endpoints bots abuse (sign-up, sending
// codes): an ALTCHA-compatible proof of work, Turnstile and hCaptcha token checks, and a
// honeypot field for hosted forms.
package botcheck
