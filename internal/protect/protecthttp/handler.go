// Package protecthttp serves bot detection: the proof-of-work challenge route, and the gate
// that sign-up and send routes pass before their handlers.
package protecthttp

import (
	"context"
	"net/http"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/botcheck"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/project"
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
// client's IP is risky, one without a valid proof from the project's provider. Errors:
// bot_check_required, bot_check_failed (403), bot_check_unavailable (503).
func (h Handler) Gate(r *http.Request) error {
	ctx := r.Context()
	if strings.TrimSpace(r.Header.Get(HoneypotHeader)) != "" {
		return failure.New(failure.Forbidden, "bot_check_failed", "the request was refused")
	}
	p := httpserver.ProjectFrom(ctx)
	st, err := h.Settings(p)
	if err != nil {
		return err
	}
	switch st.Protect.BotCheck {
	case project.BotCheckOff:
		return nil
	case project.BotCheckRisk:
		risky, err := h.Risk.Risky(ctx, p, httpserver.ClientIP(r))
		if err != nil || !risky {
			return err
		}
	}
	if st.Protect.BotProvider == project.BotProviderAltcha {
		payload := strings.TrimSpace(r.Header.Get(AltchaHeader))
		if payload == "" {
			return failure.New(failure.Forbidden, "bot_check_required",
				"this request needs a proof of work: solve GET /api/v1/protect/challenge and send the payload in %s", AltchaHeader)
		}
		return h.PoW.Verify(ctx, payload)
	}
	v := h.Captchas[st.Protect.BotProvider]
	if v == nil {
		return failure.New(failure.Unavailable, "bot_check_unavailable", "the server has no %s secret configured", st.Protect.BotProvider)
	}
	tok := strings.TrimSpace(r.Header.Get(CaptchaHeader))
	if tok == "" {
		return failure.New(failure.Forbidden, "bot_check_required", "this request needs a %s token in %s", st.Protect.BotProvider, CaptchaHeader)
	}
	return v.Verify(ctx, tok, httpserver.ClientIP(r))
}
