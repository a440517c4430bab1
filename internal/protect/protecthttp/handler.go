// Package protecthttp serves bot detection: the proof-of-work challenge route, and the gate
// that sign-up and send routes pass before their handlers.
package protecthttp

import (
	"context"
	"net/http"
	"net/netip"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/botcheck"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Headers that carry a bot check's answer. JSON APIs take them as headers so that every gated
// route accepts them without a field of its own.
const (
	// AltchaHeader carries the ALTCHA widget's payload (base64 JSON) solving a challenge.
	AltchaHeader = "X-Altcha"
	// CaptchaHeader carries a Turnstile or hCaptcha response token.
	CaptchaHeader = "X-Captcha-Token"
	// HoneypotHeader carries the hosted forms' hidden field: people never fill it in.
	HoneypotHeader = "X-Latchkey-Honeypot"
)

// Risk tells whether an IP's requests look automated (protect.Engine).
type Risk interface {
	Risky(ctx context.Context, p store.Project, ip string) (bool, error)
}

// Handler serves the challenge route and is the bot-check gate.
type Handler struct {
	PoW      *botcheck.PoW
	Captchas map[string]botcheck.Verifier // by provider: project.BotProviderTurnstile, ...
	Risk     Risk
	Settings func(store.Project) (project.Settings, error)
}

// Mount registers the challenge route on rt.
func (h Handler) Mount(rt *httpserver.Router) {
	rt.Handle("GET /api/v1/protect/challenge", httpserver.ClientID, h.challenge)
}

func (h Handler) challenge(w http.ResponseWriter, _ *http.Request) error {
	ch, err := h.PoW.Challenge()
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, http.StatusOK, ch)
	return nil
}

// Gate refuses a request that fills the honeypot, and, when the project checks always or the
// client's IP is risky, one without a valid proof from the project's provider. Addresses in
// protect.allow_cidrs skip the check; calls made with the project secret (the project's own
// server, for all its users from one IP) skip the risk-based one. A proof sent when none is
// required is verified all the same and marks the request proven (protect.WithProven): past a
// destination's send ceiling, a proven request from a new requester still gets its message.
// Errors: bot_check_required, bot_check_failed (403),
// bot_check_unavailable (503).
func (h Handler) Gate(r *http.Request) (*http.Request, error) {
	ctx := r.Context()
	if strings.TrimSpace(r.Header.Get(HoneypotHeader)) != "" {
		return r, failure.New(failure.Forbidden, "bot_check_failed", "the request was refused")
	}
	p := httpserver.ProjectFrom(ctx)
	st, err := h.Settings(p)
	if err != nil {
		return r, err
	}
	ip := httpserver.ClientIP(r)
	if allowed(ip, st.Protect.AllowCIDRs) {
		return r, nil
	}
	required := true
	switch st.Protect.BotCheck {
	case project.BotCheckOff:
		required = false
	case project.BotCheckRisk:
		risky := false
		if !httpserver.ServerSide(ctx) {
			if risky, err = h.Risk.Risky(ctx, p, ip); err != nil {
				return r, err
			}
		}
		required = risky
	}
	proven, err := h.verify(ctx, r, st.Protect.BotProvider, ip, required)
	if err != nil || !proven {
		return r, err
	}
	return r.WithContext(protect.WithProven(ctx)), nil
}

// verify checks the request's proof from provider; without one it is refused when required
// and otherwise let through unproven.
func (h Handler) verify(ctx context.Context, r *http.Request, provider, ip string, required bool) (bool, error) {
	if provider == project.BotProviderAltcha {
		payload := strings.TrimSpace(r.Header.Get(AltchaHeader))
		if payload == "" {
			if !required {
				return false, nil
			}
			return false, failure.New(failure.Forbidden, "bot_check_required",
				"this request needs a proof of work: solve GET /api/v1/protect/challenge and send the payload in %s", AltchaHeader)
		}
		return true, h.PoW.Verify(ctx, payload)
	}
	tok := strings.TrimSpace(r.Header.Get(CaptchaHeader))
	if tok == "" {
		if !required {
			return false, nil
		}
		if h.Captchas[provider] == nil {
			return false, failure.New(failure.Unavailable, "bot_check_unavailable", "the server has no %s secret configured", provider)
		}
		return false, failure.New(failure.Forbidden, "bot_check_required", "this request needs a %s token in %s", provider, CaptchaHeader)
	}
	v := h.Captchas[provider]
	if v == nil {
		return false, failure.New(failure.Unavailable, "bot_check_unavailable", "the server has no %s secret configured", provider)
	}
	return true, v.Verify(ctx, tok, ip)
}

// allowed reports whether ip is in one of the allow-listed CIDRs.
func allowed(ipRaw string, cidrs []string) bool {
	ip, err := netip.ParseAddr(strings.TrimSpace(ipRaw))
	if err != nil {
		return false
	}
	for _, c := range cidrs {
		if p, err := project.ParseCIDR(c); err == nil && p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}
