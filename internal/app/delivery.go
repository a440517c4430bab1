package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/latchkey-dev/latchkey/internal/botcheck"
	"github.com/latchkey-dev/latchkey/internal/config"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/project"
)

// Senders builds the message senders cfg configures: SMTP for email, Twilio or the log for SMS.
// A channel without a sender is left out; in development mode the outbox keeps its messages for
// /dev/inbox instead (see WithDev).
func Senders(cfg config.Config, log *slog.Logger) (map[notify.Channel]notify.Sender, error) {
	out := map[notify.Channel]notify.Sender{}
	if cfg.SMTPAddr != "" {
		host, port, err := splitPort(cfg.SMTPAddr)
		if err != nil {
			return nil, err
		}
		s, err := notify.NewSMTPSender(notify.SMTPConfig{Host: host, Port: port, TLS: notify.TLSMode(cfg.SMTPTLS),
			Username: cfg.SMTPUsername, Password: cfg.SMTPPassword, From: cfg.SMTPFrom})
		if err != nil {
			return nil, fmt.Errorf("smtp: %w", err)
		}
		out[notify.Email] = s
	}
	switch cfg.SMSProvider {
	case "twilio":
		s, err := notify.NewTwilioSender(notify.TwilioConfig{BaseURL: cfg.TwilioBaseURL, AccountSID: cfg.TwilioAccountSID,
			AuthToken: cfg.TwilioAuthToken, From: cfg.TwilioFrom})
		if err != nil {
			return nil, fmt.Errorf("twilio: %w", err)
		}
		out[notify.SMS] = s
	case "log":
		out[notify.SMS] = notify.LogSender{Log: log}
	}
	return out, nil
}

// devSender "delivers" by leaving the message in the outbox for /dev/inbox.
type devSender struct{}

func (devSender) Send(_ context.Context, _ notify.Message) error { return nil }

func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("smtp address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("smtp address %q: bad port", addr)
	}
	return host, port, nil
}

// Captchas returns the CAPTCHA verifiers cfg configures, by provider.
func Captchas(cfg config.Config) (map[string]botcheck.Verifier, error) {
	out := map[string]botcheck.Verifier{}
	if cfg.TurnstileSecret != "" {
		v, err := botcheck.NewTurnstile(botcheck.CAPTCHAConfig{Secret: cfg.TurnstileSecret})
		if err != nil {
			return nil, fmt.Errorf("turnstile: %w", err)
		}
		out[project.BotProviderTurnstile] = v
	}
	if cfg.HCaptchaSecret != "" {
		v, err := botcheck.NewHCaptcha(botcheck.CAPTCHAConfig{Secret: cfg.HCaptchaSecret, SiteKey: cfg.HCaptchaSiteKey})
		if err != nil {
			return nil, fmt.Errorf("hcaptcha: %w", err)
		}
		out[project.BotProviderHCaptcha] = v
	}
	return out, nil
}
