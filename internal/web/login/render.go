package login

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/text/language"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
)

// pages are the parsed templates and the translation catalogs.
type pages struct {
	tmpl     *template.Template
	catalogs map[string]map[string]string
}

// defaultLang is the language every catalog key exists in, and the fallback for a missing one.
const defaultLang = "en"

func loadPages() (*pages, error) {
	t, err := template.New("").ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("login page templates: %w", err)
	}
	p := &pages{tmpl: t, catalogs: map[string]map[string]string{}}
	names, err := fs.Glob(files, "catalog/*.json")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		raw, err := fs.ReadFile(files, n)
		if err != nil {
			return nil, err
		}
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("login page catalog %s: %w", n, err)
		}
		p.catalogs[strings.TrimSuffix(path.Base(n), ".json")] = m
	}
	if p.catalogs[defaultLang] == nil {
		return nil, fmt.Errorf("login page: no %s catalog", defaultLang)
	}
	return p, nil
}

// translate returns the catalog's text for key in lang, else in English, else the key itself
// (a missing key shows up in the page instead of an empty string, and the catalog test fails).
func (p *pages) translate(lang, key string, args ...any) string {
	s, ok := p.catalogs[lang][key]
	if !ok {
		if s, ok = p.catalogs[defaultLang][key]; !ok {
			return key
		}
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// has reports whether key is in the English catalog: error codes the page has no words for
// fall back to a generic message.
func (p *pages) has(key string) bool {
	_, ok := p.catalogs[defaultLang][key]
	return ok
}

// language picks the page's language: the ui_locales of the request (or the lang parameter the
// page was opened with), then Accept-Language, among the project's locales that have a catalog;
// else the first of those.
func (h *Handler) language(r *http.Request, c *pageContext, a *attempt) string {
	var allowed []string
	locales := c.settings.OIDC.Locales
	if c.project.ID == "" {
		// No project (an unknown request): every language the page has, English first.
		locales = append([]string{defaultLang}, slices.Sorted(maps.Keys(h.pages.catalogs))...)
	}
	for _, l := range locales {
		l = baseLang(l)
		if h.pages.catalogs[l] != nil && !slices.Contains(allowed, l) {
			allowed = append(allowed, l)
		}
	}
	if len(allowed) == 0 {
		allowed = []string{defaultLang}
	}
	var want []string
	if l := r.URL.Query().Get("lang"); l != "" {
		want = append(want, l)
	}
	if a != nil && a.Lang != "" {
		want = append(want, a.Lang)
	}
	want = append(want, c.pending.UILocales...)
	if tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language")); err == nil {
		for _, t := range tags {
			want = append(want, t.String())
		}
	}
	for _, w := range want {
		if l := baseLang(w); slices.Contains(allowed, l) {
			return l
		}
	}
	return allowed[0]
}

func baseLang(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	if i := strings.IndexAny(tag, "-_"); i >= 0 {
		tag = tag[:i]
	}
	return tag
}

// colorRE is a CSS hex colour; settings validation allows only these, and the page checks again
// because the value goes into a stylesheet.
var colorRE = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// view is what a screen's template sees.
type view struct {
	p    *pages
	Lang string

	Nonce    string
	Brand    string
	LogoURL  string
	Primary  string
	Screen   string
	CSRF     string
	Legacy   bool
	Request  string
	ClientID string
	Redirect string
	PageURL  string

	Error     string
	ErrorCode string
	Field     string

	Identifier string
	Methods    methods
	BotAlways  bool
	// ContinueAs names the account the browser is signed in with, offered on the identifier
	// screen for prompt=select_account.
	ContinueAs string

	Channel     string
	Destination string
	TriesLeft   int
	ResendIn    int
	Refresh     int

	Factors       []factorView
	OOBSent       bool
	QR            template.URL
	Secret        string
	RecoveryCodes []string

	Orgs   []orgView
	Scopes []string

	// Fatal pages (an unknown or expired request): no form, no script.
	Fatal bool
}

type methods struct {
	Passkey, EmailOTP, MagicLink, PhoneOTP, Password, Signup bool
}

type factorView struct {
	Type, Channel, Name string
}

type orgView struct {
	ID, Name string
}

// T translates key in the page's language.
func (v *view) T(key string, args ...any) string { return v.p.translate(v.Lang, key, args...) }

// policy is the page's Content-Security-Policy: its own script and stylesheet, a nonce'd style
// block for the project's colour, its own origin for fetches, the worker and the logo, and,
// for forms, its own origin plus the origin of the application the login ends at: browsers
// check form-action against every redirect a form post leads through, and the last 303 goes to
// the application's callback.
func (h *Handler) policy(c *pageContext, logo string) httpserver.PagePolicy {
	img := []string{"'self'", "data:"}
	if o := origin(logo); o != "" {
		img = append(img, o)
	}
	forms := []string{"'self'"}
	if c != nil {
		if o := origin(c.redirectURI()); o != "" {
			forms = append(forms, o)
		}
	}
	return httpserver.PagePolicy{
		Script:     []string{"'self'"},
		Style:      []string{"'self'", httpserver.NonceSource},
		Connect:    []string{"'self'"},
		Img:        img,
		FormAction: forms,
	}
}

// origin returns scheme://host of an http(s) URL, "" for anything else.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// write renders v with status.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, c *pageContext, v *view, status int) error {
	v.p = h.pages
	v.Nonce = httpserver.SetPageHeaders(w, r, h.policy(c, v.LogoURL))
	w.Header().Set("Cache-Control", "no-store")
	var buf bytes.Buffer
	if err := h.pages.tmpl.ExecuteTemplate(&buf, "page", v); err != nil {
		return httpserver.AsPage(fmt.Errorf("render login page %s: %w", v.Screen, err), httpserver.ErrorPage{Brand: v.Brand})
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the status is sent; a failed write means the client went away
	return nil
}

// brand fills v's branding from the project's settings.
func (v *view) brand(c *pageContext) {
	if c == nil || c.project.ID == "" {
		return
	}
	v.Brand = c.settings.Brand(c.project.Name)
	if logo := c.settings.Branding.LogoURL; origin(logo) != "" {
		v.LogoURL = logo
	}
	if colorRE.MatchString(c.settings.Branding.PrimaryColor) {
		v.Primary = c.settings.Branding.PrimaryColor
	}
}

// fatal renders the error page of a request the page cannot go on with. It never redirects:
// the redirect_uri may be unregistered, or the request unknown.
func (h *Handler) fatal(w http.ResponseWriter, r *http.Request, c *pageContext, status int, code string) error {
	v := &view{Screen: "error", Fatal: true, ErrorCode: code}
	var a *attempt
	if c == nil {
		c = &pageContext{}
	}
	v.brand(c)
	v.Lang = h.language(r, c, a)
	if c.project.ID == "" {
		c = nil
	} else {
		// An error page allows no form to go anywhere but here: its redirect URI may be
		// the unregistered one it is refusing.
		bare := *c
		bare.redirect, bare.pending.RedirectURI = "", ""
		c = &bare
	}
	key := "error." + code
	if !h.pages.has(key) {
		key = "error.generic"
	}
	v.Error = h.pages.translate(v.Lang, key)
	return h.write(w, r, c, v, status)
}

// asset serves the page's script, worker and stylesheet.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("file")
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	ct, ok := types[path.Ext(name)]
	body, err := fs.ReadFile(h.assets, name)
	if !ok || err != nil || strings.Contains(name, "/") {
		return failure.New(failure.NotFound, "route_not_found", "no such endpoint")
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Revalidated every time: the binary's assets change with each release, and the files are
	// small.
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}
