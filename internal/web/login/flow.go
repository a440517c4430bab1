package login

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	lg "github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/mfa"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/passwordauth"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
	"github.com/latchkey-dev/latchkey/internal/protect/protecthttp"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// deviceCookie keeps the device token a code or password login issues (login.Result.Device),
// so that this browser's later logins count on it and not against the account-wide lock.
const deviceCookie = "lk_device"

// waitRefresh is how often the no-JavaScript magic-link wait screen reloads.
const waitRefresh = 5

// screenError is a client error to show on the current screen rather than as an error page.
type screenError struct {
	status int
	code   string
	field  string
	err    error
}

func (e *screenError) Error() string { return e.code }

// show serves GET /login: the screen the attempt is at.
func (h *Handler) show(w http.ResponseWriter, r *http.Request) error {
	c, err := h.resolve(w, r)
	if err != nil {
		return h.failed(w, r, c, err)
	}
	a := h.loadAttempt(r, c)
	if a == nil {
		a = h.start(c)
	}
	if l := r.URL.Query().Get("lang"); l != "" && h.pages.catalogs[baseLang(l)] != nil {
		a.Lang = baseLang(l)
	}
	if a.Screen == screenWait {
		// A GET that may finish the login: the magic link was clicked. Like the authorization
		// endpoint itself, it only ever ends at the client's registered redirect URI, in the
		// browser whose binding cookie the attempt is sealed to.
		return h.wait(w, r, c, a)
	}
	return h.render(w, r, c, a, http.StatusOK, nil)
}

// start makes a new attempt: at the identifier screen, at the methods with a login_hint, or
// at sign-up when the client asked for it (screen_hint=signup, prompt=create) and the project
// allows it.
func (h *Handler) start(c *pageContext) *attempt {
	a := newAttempt(h.d.Now())
	if hint := strings.TrimSpace(c.pending.LoginHint); hint != "" && len(hint) <= 320 {
		a.Identifier, a.Screen = hint, screenMethods
	}
	if (c.pending.Extensions["screen_hint"] == "signup" || slices.Contains(c.pending.Prompt, "create")) && h.offers(c).Signup {
		a.Screen = screenSignup
	}
	return a
}

// post serves POST /login: every form of every screen, told apart by its action.
func (h *Handler) post(w http.ResponseWriter, r *http.Request) error {
	c, err := h.resolve(w, r)
	if err != nil {
		return h.failed(w, r, c, err)
	}
	a := h.loadAttempt(r, c)
	if !checkCSRF(a, r.PostFormValue("csrf")) {
		// Nothing is done: the form is not this browser's, or the attempt expired.
		return h.fatal(w, r, c, http.StatusForbidden, "csrf")
	}
	err = h.act(w, r, c, a, r.PostFormValue("action"))
	var se *screenError
	if errors.As(err, &se) {
		return h.render(w, r, c, a, se.status, se)
	}
	return h.failed(w, r, c, err)
}

// failed answers err: a fatal error's page, a client error on the current screen is handled by
// the caller, and anything else is the server's, as an HTML page.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, c *pageContext, err error) error {
	if err == nil {
		return nil
	}
	var fe *fatalError
	if errors.As(err, &fe) {
		if c != nil && c.json {
			return failure.New(failure.Invalid, fe.code, "this sign-in cannot continue: reload the page")
		}
		return h.fatal(w, r, c, fe.status, fe.code)
	}
	if c != nil && c.json {
		return err
	}
	brand := ""
	if c != nil {
		brand = c.settings.Brand(c.project.Name)
	}
	return httpserver.AsPage(err, httpserver.ErrorPage{Brand: brand})
}

// act runs one form action and moves the attempt on.
func (h *Handler) act(w http.ResponseWriter, r *http.Request, c *pageContext, a *attempt, action string) error {
	ctx := r.Context()
	f := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	m := h.offers(c)
	switch action {
	case "identify":
		id := f("identifier")
		if id == "" || len(id) > 320 {
			return &screenError{status: http.StatusBadRequest, code: "identifier_required", field: "identifier"}
		}
		a.Identifier, a.Screen = id, screenMethods
		a.Flow, a.Channel = "", ""
	case "continue_as":
		// prompt=select_account: the user picks the account the browser is signed in with.
		si, ok, err := h.signedIn(r, c)
		if err != nil {
			return err
		}
		if !ok {
			return &screenError{status: http.StatusBadRequest, code: "signed_out"}
		}
		a.UserID, a.SessionID, a.Connection = si.UserID, si.SessionID, si.ConnectionType
		a.Offered = true // the account's login is not this page's: no passkey offer
		return h.advance(w, r, c, a, nil)
	case "back":
		keep := a.Lang
		*a = *newAttempt(h.d.Now())
		a.Lang = keep
	case "send":
		ch := passwordless.Channel(f("channel"))
		if !slices.Contains(h.channels(c), ch) {
			return &screenError{status: http.StatusForbidden, code: "login_method_disabled"}
		}
		if a.Identifier == "" {
			return &screenError{status: http.StatusBadRequest, code: "identifier_required", field: "identifier"}
		}
		gated, err := h.botCheck(r, c)
		if err != nil {
			return err
		}
		req := passwordless.SendRequest{Channel: ch, Destination: a.Identifier, IP: httpserver.ClientIP(r)}
		if c.legacy {
			// The link itself returns to the application with ?state=, as SSOJet's widget did.
			req.RedirectURL = c.redirect
		}
		state, err := h.d.Passwordless.Send(gated.Context(), c.project, req)
		if err != nil {
			return clientError(err, "identifier")
		}
		a.Flow, a.Channel, a.Screen = state, string(ch), screenCode
		if ch == passwordless.MagicLink {
			a.Screen = screenWait
		}
	case "resend":
		if a.Flow == "" || a.Channel == "" {
			return fatalf(http.StatusBadRequest, "request_expired")
		}
		gated, err := h.botCheck(r, c)
		if err != nil {
			return err
		}
		if err := h.d.Passwordless.Resend(gated.Context(), c.project, []passwordless.Channel{passwordless.Channel(a.Channel)}, a.Flow, httpserver.ClientIP(r)); err != nil {
			return clientError(err, "")
		}
	case "verify_code":
		if a.Flow == "" || a.Screen != screenCode {
			return fatalf(http.StatusBadRequest, "request_expired")
		}
		res, err := h.d.Passwordless.VerifyCodeDevice(ctx, c.project, []passwordless.Channel{passwordless.Channel(a.Channel)},
			a.Flow, f("code"), h.device(r), httpserver.Meta(r))
		if err != nil {
			return clientError(err, "code")
		}
		a.Flow = ""
		return h.finish(w, r, c, a, res)
	case "password_screen":
		if !m.Password {
			return &screenError{status: http.StatusForbidden, code: "login_method_disabled"}
		}
		a.Screen = screenPassword
	case "signup_screen":
		if !m.Signup {
			return &screenError{status: http.StatusForbidden, code: "signup_disabled"}
		}
		a.Screen = screenSignup
	case "password":
		if !m.Password {
			return &screenError{status: http.StatusForbidden, code: "login_method_disabled"}
		}
		res, err := h.d.Passwords.LoginDevice(ctx, c.project, a.Identifier, r.PostFormValue("password"), h.device(r), httpserver.Meta(r))
		if err != nil {
			return clientError(err, "password")
		}
		return h.finish(w, r, c, a, res)
	case "signup":
		if !m.Signup {
			return &screenError{status: http.StatusForbidden, code: "signup_disabled"}
		}
		gated, err := h.botCheck(r, c)
		if err != nil {
			return err
		}
		email := f("email")
		if email == "" {
			email = a.Identifier
		}
		a.Identifier = email
		res, err := h.d.Passwords.SignUp(gated.Context(), c.project, passwordauth.Signup{Email: email, Password: r.PostFormValue("password"),
			FirstName: f("first_name"), LastName: f("last_name")}, httpserver.Meta(r))
		if err != nil {
			return clientError(err, "password")
		}
		return h.finish(w, r, c, a, res)
	case "reset":
		if !m.Password {
			return &screenError{status: http.StatusForbidden, code: "login_method_disabled"}
		}
		gated, err := h.botCheck(r, c)
		if err != nil {
			return err
		}
		// The reset link goes to the client's registered redirect URI, as the API's reset does.
		if err := h.d.Passwords.SendReset(gated.Context(), c.project, a.Identifier, c.redirectURI(), httpserver.ClientIP(r)); err != nil {
			return clientError(err, "")
		}
		a.Screen = screenResetSent
	case "mfa_send":
		if a.MFAToken == "" || h.d.MFA == nil {
			return fatalf(http.StatusBadRequest, "request_expired")
		}
		in, err := h.d.MFA.Initiate(ctx, c.project, a.MFAToken, mfa.TypeOOB, f("channel"), httpserver.ClientIP(r))
		if err != nil {
			return clientError(err, "")
		}
		a.OOBCode = in.OOBCode
	case "mfa_verify":
		if a.MFAToken == "" || h.d.MFA == nil {
			return fatalf(http.StatusBadRequest, "request_expired")
		}
		ans := mfa.Answer{MFAToken: a.MFAToken}
		switch f("factor") {
		case mfa.TypeRecoveryCode:
			ans.RecoveryCode = f("code")
		case mfa.TypeOOB:
			ans.OOBCode, ans.OTP = a.OOBCode, f("code")
		default:
			ans.OTP = f("code")
		}
		res, err := h.d.MFA.Validate(ctx, c.project, ans, httpserver.Meta(r))
		if err != nil {
			return clientError(err, "code")
		}
		a.MFAToken, a.OOBCode, a.Factor, a.RecoveryCodes, a.OTPSecret = "", "", "", nil, ""
		return h.finish(w, r, c, a, res)
	case "skip_passkey":
		if !a.loggedIn() {
			return fatalf(http.StatusBadRequest, "request_expired")
		}
		a.Offered = true
		return h.advance(w, r, c, a, nil)
	case "organization":
		if !a.loggedIn() || c.legacy {
			return fatalf(http.StatusBadRequest, "request_expired")
		}
		orgs, err := h.d.Directory.ListUserOrganizations(ctx, c.project.ID, a.UserID)
		if err != nil {
			return err
		}
		id := f("organization")
		if !slices.ContainsFunc(orgs, func(o directory.UserOrganization) bool { return o.ID == id }) {
			return &screenError{status: http.StatusBadRequest, code: "organization_required", field: "organization"}
		}
		a.Org, a.OrgChosen = id, true
		return h.advance(w, r, c, a, nil)
	case "consent":
		if !a.loggedIn() || c.legacy {
			return fatalf(http.StatusBadRequest, "request_expired")
		}
		switch f("decision") {
		case "allow":
			return h.approve(w, r, c, a, nil, true)
		case "deny":
			return h.deny(w, r, c)
		}
		return &screenError{status: http.StatusBadRequest, code: "bad_request"}
	default:
		return &screenError{status: http.StatusBadRequest, code: "bad_request"}
	}
	return h.next(w, r, c, a)
}

// next saves the attempt and sends the browser back to the page (post/redirect/get), or tells
// the script to go there.
func (h *Handler) next(w http.ResponseWriter, r *http.Request, c *pageContext, a *attempt) error {
	if err := h.saveAttempt(w, c, a); err != nil {
		return err
	}
	return h.goTo(w, r, c, c.pageURL())
}

// goTo sends the browser to location: a 303, or for the page's script a JSON answer naming it.
func (h *Handler) goTo(w http.ResponseWriter, r *http.Request, c *pageContext, location string) error {
	w.Header().Set("Cache-Control", "no-store")
	if c.json {
		httpserver.WriteJSON(w, http.StatusOK, map[string]string{"location": location})
		return nil
	}
	http.Redirect(w, r, location, http.StatusSeeOther)
	return nil
}

// finish takes a login's result: the second-factor step when it asks for one, else the
// screens that may follow a login, then the approval.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, c *pageContext, a *attempt, res lg.Result) error {
	if res.Device != "" {
		http.SetCookie(w, &http.Cookie{Name: h.cookieName(deviceCookie), Value: res.Device, Path: "/", HttpOnly: true,
			Secure: h.secure, SameSite: http.SameSiteLaxMode, MaxAge: 400 * 24 * 60 * 60})
	}
	if res.Challenge != nil {
		if h.d.MFA == nil {
			return errors.New("login page: a login needs a second factor and the page has no MFA service")
		}
		a.MFAToken, a.OOBCode, a.Screen = res.Challenge.MFAToken, "", screenMFA
		sub, err := h.d.MFA.TokenSubject(r.Context(), c.project, a.MFAToken)
		if err != nil {
			return clientError(err, "")
		}
		auths, err := h.d.MFA.Authenticators(r.Context(), sub)
		if err != nil {
			return err
		}
		if len(auths) == 0 {
			// The policy requires a second factor the user does not have: enrol an
			// authenticator app now; its first code answers the challenge.
			e, err := h.d.MFA.Enroll(r.Context(), sub, []string{mfa.TypeOTP})
			if err != nil {
				return clientError(err, "")
			}
			a.Factor, a.RecoveryCodes, a.OTPSecret, a.Screen = e.AuthenticatorID, e.RecoveryCodes, e.Secret, screenMFAEnroll
		}
		return h.next(w, r, c, a)
	}
	if !res.Authenticated {
		return errors.New("login page: a login finished neither signed in nor with a challenge")
	}
	a.UserID, a.SessionID = res.User.ID, res.Tokens.Session.ID
	a.Connection = res.Tokens.Session.ConnectionType
	return h.advance(w, r, c, a, &res)
}

// advance runs the screens that follow a finished login, each only when it applies: the
// passkey offer, the organization picker and the consent screen; then the approval.
func (h *Handler) advance(w http.ResponseWriter, r *http.Request, c *pageContext, a *attempt, res *lg.Result) error {
	ctx := r.Context()
	if !a.Offered && h.offers(c).Passkey && slices.Contains([]string{lg.EmailOTP, lg.MagicLink, lg.PhoneOTP}, a.Connection) {
		pks, err := h.d.Passkeys.List(ctx, c.project, a.UserID)
		if err != nil {
			return err
		}
		if len(pks) == 0 {
			a.Screen = screenPasskeyOffer
			return h.next(w, r, c, a)
		}
		a.Offered = true
	}
	// The organization the client named (authorize's organization) is the session's when the
	// user belongs to it; otherwise the user picks, as if none was named, when the client asked
	// for the organization scope and there is a choice.
	named := c.pending.Extensions["organization"]
	if !a.OrgChosen && (named != "" || slices.Contains(c.pending.Scopes, "organization")) {
		orgs, err := h.d.Directory.ListUserOrganizations(ctx, c.project.ID, a.UserID)
		if err != nil {
			return err
		}
		switch {
		case named != "" && slices.ContainsFunc(orgs, func(o directory.UserOrganization) bool { return o.ID == named }):
			a.Org = named
		case slices.Contains(c.pending.Scopes, "organization") && len(orgs) > 1:
			a.Screen = screenOrganization
			return h.next(w, r, c, a)
		}
		a.OrgChosen = true
	}
	if !c.settings.OIDC.FirstParty {
		a.Screen = screenConsent
		return h.next(w, r, c, a)
	}
	return h.approve(w, r, c, a, res, false)
}

// approve hands the finished login to the provider, sets the browser session and sends the
// browser to the authorization callback.
func (h *Handler) approve(w http.ResponseWriter, r *http.Request, c *pageContext, a *attempt, res *lg.Result, consented bool) error {
	ctx := r.Context()
	if res == nil {
		// The login finished on an earlier request: its result is rebuilt from the session
		// it started, so the tokens it issued never had to be kept anywhere.
		sess, err := h.d.Sessions.GetSession(ctx, c.project.ID, a.SessionID)
		if err != nil {
			return fmt.Errorf("session of the finished login: %w", err)
		}
		u, err := h.d.Directory.GetUser(ctx, c.project.ID, a.UserID)
		if err != nil {
			return fmt.Errorf("user of the finished login: %w", err)
		}
		res = &lg.Result{Authenticated: true, User: u}
		res.Tokens.Session = sess
	}
	ok, err := h.d.Authorizations.Approve(ctx, c.request, c.binding, oidcprovider.Approval{Result: *res,
		OrganizationID: a.Org, Consented: consented})
	if err != nil {
		if fe, isF := failure.As(err); isF && fe.Kind != failure.Internal && fe.Kind != failure.Unavailable {
			h.dropAttempt(w, c)
			return fatalf(http.StatusBadRequest, "request_expired")
		}
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: oidcprovider.BrowserSessionCookie, Value: ok.BrowserSession, Path: "/", HttpOnly: true,
		Secure: h.secure, SameSite: http.SameSiteLaxMode, Expires: ok.BrowserExpires})
	h.dropAttempt(w, c)
	return h.goTo(w, r, c, ok.RedirectURL)
}

// signedIn is the account the browser is signed in with, offered for prompt=select_account
// only (any other request with a live sign-in never reaches the page, or asked to sign in
// again).
func (h *Handler) signedIn(r *http.Request, c *pageContext) (oidcprovider.SignedIn, bool, error) {
	if c.legacy || !slices.Contains(c.pending.Prompt, "select_account") {
		return oidcprovider.SignedIn{}, false, nil
	}
	ck, err := r.Cookie(oidcprovider.BrowserSessionCookie)
	if err != nil || ck.Value == "" {
		return oidcprovider.SignedIn{}, false, nil
	}
	si, ok, err := h.d.Authorizations.SignedInAs(r.Context(), c.request, c.binding, ck.Value)
	if err != nil {
		if fe, isF := failure.As(err); isF && fe.Kind != failure.Internal && fe.Kind != failure.Unavailable {
			return oidcprovider.SignedIn{}, false, fatalf(http.StatusBadRequest, "request_expired")
		}
		return oidcprovider.SignedIn{}, false, err
	}
	return si, ok, nil
}

// deny answers the request with the user's refusal: the provider marks it answered and the
// browser goes to the callback, which tells the client access_denied (OIDC Core §3.1.2.6).
func (h *Handler) deny(w http.ResponseWriter, r *http.Request, c *pageContext) error {
	to, err := h.d.Authorizations.Deny(r.Context(), c.request, c.binding)
	if err != nil {
		if fe, isF := failure.As(err); isF && fe.Kind != failure.Internal && fe.Kind != failure.Unavailable {
			h.dropAttempt(w, c)
			return fatalf(http.StatusBadRequest, "request_expired")
		}
		return err
	}
	h.dropAttempt(w, c)
	return h.goTo(w, r, c, to)
}

// wait is the magic-link wait screen: it continues once the link was clicked.
func (h *Handler) wait(w http.ResponseWriter, r *http.Request, c *pageContext, a *attempt) error {
	ctx := r.Context()
	verified, err := h.linkClicked(r, c, a)
	if err != nil {
		var se *screenError
		if errors.As(err, &se) {
			a.Screen, a.Flow = screenMethods, ""
			return h.render(w, r, c, a, se.status, se)
		}
		return h.failed(w, r, c, err)
	}
	if !verified {
		return h.render(w, r, c, a, http.StatusOK, nil)
	}
	if c.legacy {
		// The application collects the login itself (magic-link/status?state=), as SSOJet's
		// old guides do.
		h.dropAttempt(w, c)
		return h.goTo(w, r, c, withState(c.redirect, a.Flow))
	}
	res, err := h.d.Passwordless.Status(ctx, c.project, a.Flow, httpserver.Meta(r))
	if err != nil {
		a.Screen, a.Flow = screenMethods, ""
		return h.render(w, r, c, a, http.StatusBadRequest, asScreenError(err, ""))
	}
	if !res.Authenticated && res.Challenge == nil {
		return h.render(w, r, c, a, http.StatusOK, nil)
	}
	a.Flow = ""
	err = h.finish(w, r, c, a, res)
	var se *screenError
	if errors.As(err, &se) {
		return h.render(w, r, c, a, se.status, se)
	}
	return h.failed(w, r, c, err)
}

// linkClicked reports whether the attempt's magic link was used, without collecting its login.
func (h *Handler) linkClicked(r *http.Request, c *pageContext, a *attempt) (bool, error) {
	if a.Flow == "" {
		return false, &screenError{status: http.StatusBadRequest, code: "flow_not_found"}
	}
	fl, err := h.d.Flows.GetFlow(r.Context(), c.project.ID, a.Flow)
	if errors.Is(err, store.ErrNotFound) {
		return false, &screenError{status: http.StatusBadRequest, code: "flow_not_found"}
	}
	if err != nil {
		return false, err
	}
	switch {
	case fl.Status == store.FlowVerified:
		return true, nil
	case fl.Status == store.FlowPending && h.d.Now().Before(fl.ExpiresAt):
		return false, nil
	}
	return false, &screenError{status: http.StatusBadRequest, code: "flow_not_found"}
}

// status serves GET /login/status, the wait screen's poll: whether to reload the page.
func (h *Handler) status(w http.ResponseWriter, r *http.Request) error {
	c, err := h.resolve(w, r)
	if err != nil {
		return failure.New(failure.Invalid, "request_expired", "this sign-in cannot continue: reload the page")
	}
	c.json = true
	a := h.loadAttempt(r, c)
	if a == nil || a.Screen != screenWait {
		httpserver.WriteJSON(w, http.StatusOK, map[string]any{"reload": true})
		return nil
	}
	done, err := h.linkClicked(r, c, a)
	var se *screenError
	if errors.As(err, &se) {
		done, err = true, nil // the page explains it
	}
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"reload": done})
	return nil
}

// withState adds ?state= to a registered redirect URI.
func withState(redirect, state string) string {
	u, err := url.Parse(redirect)
	if err != nil {
		return redirect
	}
	q := u.Query()
	q.Set("state", state)
	u.RawQuery = q.Encode()
	return u.String()
}

// device is this browser's device token, if it has one.
func (h *Handler) device(r *http.Request) string {
	if ck, err := r.Cookie(h.cookieName(deviceCookie)); err == nil && len(ck.Value) < 1024 {
		return ck.Value
	}
	return ""
}

// botCheck runs the project's bot check on a form post: the page's script puts the proof of
// work in the altcha field and the honeypot is the website field; the gate reads both as the
// API's headers. It returns the request whose context says whether the check was passed.
func (h *Handler) botCheck(r *http.Request, c *pageContext) (*http.Request, error) {
	if h.d.BotCheck == nil {
		return r, nil
	}
	g := r.Clone(httpserver.WithProject(r.Context(), c.project))
	g.Header.Del(protecthttp.AltchaHeader)
	g.Header.Del(protecthttp.CaptchaHeader)
	g.Header.Del(protecthttp.HoneypotHeader)
	if v := strings.TrimSpace(r.PostFormValue("altcha")); v != "" {
		g.Header.Set(protecthttp.AltchaHeader, v)
	}
	if v := strings.TrimSpace(r.PostFormValue("website")); v != "" {
		g.Header.Set(protecthttp.HoneypotHeader, v)
	}
	out, err := h.d.BotCheck(g)
	if err != nil {
		return r, clientError(err, "")
	}
	return out, nil
}

// offers is what the project offers, as far as the page has the services for it.
func (h *Handler) offers(c *pageContext) methods {
	lm := c.settings.LoginMethods
	m := methods{EmailOTP: lm.EmailOTP, MagicLink: lm.MagicLink, PhoneOTP: lm.PhoneOTP,
		Passkey: lm.Passkey && h.d.Passkeys != nil, Password: lm.Password && h.d.Passwords != nil}
	m.Signup = m.Password && c.settings.AllowSignup
	if c.legacy {
		// Legacy mode ends with the application collecting a magic link's login itself.
		return methods{MagicLink: lm.MagicLink}
	}
	return m
}

// channels are the passwordless channels the page may send on.
func (h *Handler) channels(c *pageContext) []passwordless.Channel {
	m := h.offers(c)
	var out []passwordless.Channel
	if m.EmailOTP {
		out = append(out, passwordless.EmailOTP)
	}
	if m.MagicLink {
		out = append(out, passwordless.MagicLink)
	}
	if m.PhoneOTP {
		out = append(out, passwordless.PhoneOTP)
	}
	return out
}

// clientError shows a service's client error on the screen; server errors stay errors.
func clientError(err error, field string) error {
	if err == nil {
		return nil
	}
	if se := asScreenError(err, field); se != nil {
		return se
	}
	return err
}

func asScreenError(err error, field string) *screenError {
	fe, ok := failure.As(err)
	if !ok || fe.Kind == failure.Internal {
		return nil
	}
	status := map[failure.Kind]int{failure.Invalid: 400, failure.Unauthenticated: 401, failure.Forbidden: 403,
		failure.NotFound: 404, failure.Conflict: 409, failure.TooLarge: 413, failure.TooMany: 429, failure.Unavailable: 503}[fe.Kind]
	if fe.Field != "" && field == "" {
		field = fe.Field
	}
	return &screenError{status: status, code: fe.Code, field: field, err: err}
}

// decodeCredential reads a WebAuthn response the script sent, as the JSON the service parses.
func decodeCredential(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, failure.InvalidField("invalid_request", "credential", "is required")
	}
	return raw, nil
}

// qrDataURL is the enrolment's QR code as a data: URL for an <img>.
func qrDataURL(png []byte) string {
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
}
