package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchkey-dev/latchkey/docs"
	"github.com/latchkey-dev/latchkey/internal/auditlog"
	"github.com/latchkey-dev/latchkey/internal/auditlog/auditloghttp"
	"github.com/latchkey-dev/latchkey/internal/botcheck"
	"github.com/latchkey-dev/latchkey/internal/breach"
	"github.com/latchkey-dev/latchkey/internal/config"
	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/directory/directoryhttp"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/login"
	"github.com/latchkey-dev/latchkey/internal/mfa"
	"github.com/latchkey-dev/latchkey/internal/mfa/mfahttp"
	"github.com/latchkey-dev/latchkey/internal/notice"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/notify/devinbox"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider"
	"github.com/latchkey-dev/latchkey/internal/oidcprovider/oidcproviderhttp"
	"github.com/latchkey-dev/latchkey/internal/outbox"
	"github.com/latchkey-dev/latchkey/internal/passkey"
	"github.com/latchkey-dev/latchkey/internal/passkey/passkeyhttp"
	"github.com/latchkey-dev/latchkey/internal/password"
	"github.com/latchkey-dev/latchkey/internal/passwordauth"
	"github.com/latchkey-dev/latchkey/internal/passwordauth/passwordauthhttp"
	"github.com/latchkey-dev/latchkey/internal/passwordless"
	"github.com/latchkey-dev/latchkey/internal/passwordless/passwordlesshttp"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/project/projecthttp"
	"github.com/latchkey-dev/latchkey/internal/protect"
	"github.com/latchkey-dev/latchkey/internal/protect/protecthttp"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/store/sqlstore"
	"github.com/latchkey-dev/latchkey/internal/token"
	"github.com/latchkey-dev/latchkey/internal/token/tokenhttp"
	weblogin "github.com/latchkey-dev/latchkey/internal/web/login"
	"github.com/latchkey-dev/latchkey/internal/web/widget"
	"github.com/latchkey-dev/latchkey/internal/webhook"
	"github.com/latchkey-dev/latchkey/internal/webhook/webhookhttp"
)

// HTTP server limits. A slow client cannot hold a connection open forever (slowloris) nor send
// unbounded headers; JSON bodies are capped separately at httpserver.MaxBodyBytes.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	// readyTimeout bounds the database ping of /readyz: a load balancer must get an answer
	// quickly, and a database that takes longer than this is not ready for traffic.
	readyTimeout = 2 * time.Second
)

// App is one Latchkey server: its store, services and HTTP handler.
type App struct {
	log             *slog.Logger
	admin           http.Handler
	store           store.Store
	ownsStore       bool
	projects        *project.Service
	directory       *directory.Service
	keys            *token.KeyManager
	sessions        *token.Service
	login           *login.Service
	passwordless    *passwordless.Service
	passkeys        *passkey.Service
	mfa             *mfa.Service
	protect         *protect.Engine
	passwords       *passwordauth.Service
	oidc            *oidcprovider.Provider
	worker          *outbox.Worker
	router          *httpserver.Router
	handler         http.Handler
	publicURL       string
	shutdownTimeout time.Duration
	now             func() time.Time
}

// Option adjusts an App made by NewWithStore.
type Option func(*options)

type options struct {
	log             *slog.Logger
	publicURL       string
	now             func() time.Time
	rand            io.Reader
	shutdownTimeout time.Duration
	sealer          sealer
	keyCacheTTL     time.Duration
	senders         map[notify.Channel]notify.Sender
	dev             bool
	pprof           bool
	trustedProxies  []netip.Prefix
	hibpURL         string
	captchas        map[string]botcheck.Verifier
	privateWebhooks bool
}

// sealer seals and opens secrets at rest (secretbox.Keyring).
type sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithPublicURL sets the URL clients reach the server at (default http://localhost).
func WithPublicURL(u string) Option { return func(o *options) { o.publicURL = u } }

// WithClock sets the clock of every service (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithRand sets the source of secrets of every service (default crypto/rand).
func WithRand(r io.Reader) Option { return func(o *options) { o.rand = r } }

// WithShutdownTimeout sets how long Serve lets in-flight requests finish (default 15s).
func WithShutdownTimeout(d time.Duration) Option { return func(o *options) { o.shutdownTimeout = d } }

// WithSealer sets what seals secrets at rest (a secretbox.Keyring). Without it the server
// makes a random key ring that lives only as long as the process: right for tests, never for a
// real server, which New gives the configured ring.
func WithSealer(s sealer) Option { return func(o *options) { o.sealer = s } }

// WithSenders sets the message senders by channel (default: none, and sends are refused with
// 503 unless WithDev).
func WithSenders(s map[notify.Channel]notify.Sender) Option {
	return func(o *options) { o.senders = s }
}

// WithDev turns on development mode: channels without a sender keep their messages in the
// outbox, shown at /dev/inbox.
func WithDev(dev bool) Option { return func(o *options) { o.dev = dev } }

// WithPprof serves Go's net/http/pprof at /debug/pprof/ on the admin handler (never on the
// public one).
func WithPprof(on bool) Option { return func(o *options) { o.pprof = on } }

// WithTrustedProxies sets the reverse proxies whose X-Forwarded-For names the client.
func WithTrustedProxies(p []netip.Prefix) Option { return func(o *options) { o.trustedProxies = p } }

// WithHIBP turns on the Have I Been Pwned range check of new passwords, at baseURL (e.g.
// https://api.pwnedpasswords.com); without it only the offline list is checked.
func WithHIBP(baseURL string) Option { return func(o *options) { o.hibpURL = baseURL } }

// WithCaptcha sets the verifier of a CAPTCHA provider (project.BotProviderTurnstile or
// project.BotProviderHCaptcha) for projects that choose it.
func WithCaptcha(provider string, v botcheck.Verifier) Option {
	return func(o *options) {
		if o.captchas == nil {
			o.captchas = map[string]botcheck.Verifier{}
		}
		o.captchas[provider] = v
	}
}

// WithPrivateWebhooks lets webhooks reach loopback and private addresses (always allowed in
// development mode); by default they reach only public ones.
func WithPrivateWebhooks(allow bool) Option { return func(o *options) { o.privateWebhooks = allow } }

// WithKeyCacheTTL sets how long an instance trusts its cached signing keys (default 30s).
func WithKeyCacheTTL(d time.Duration) Option { return func(o *options) { o.keyCacheTTL = d } }

// New opens the database that cfg names, brings its schema up to date and builds the server.
// cfg must be valid; extra options apply after those cfg implies. Close releases the database.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, extra ...Option) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// zitadel/oidc's op logs only through slog.Default (its WithLogger is a no-op): New builds
	// the process's one server, so its lines go through the server's handler, with request ids.
	slog.SetDefault(log)
	keys, err := LoadMasterKeys(cfg, log)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	if err := CheckMasterKey(ctx, st, keys, time.Now()); err != nil {
		st.Close()
		return nil, err
	}
	senders, err := Senders(cfg, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	proxies, err := cfg.Proxies()
	if err != nil {
		st.Close()
		return nil, err
	}
	opts := []Option{WithLogger(log), WithPublicURL(cfg.EffectivePublicURL()), WithTrustedProxies(proxies),
		WithShutdownTimeout(cfg.ShutdownTimeout), WithSealer(keys.Ring), WithKeyCacheTTL(cfg.KeyCacheTTL),
		WithSenders(senders), WithDev(cfg.Dev), WithPprof(cfg.Pprof), WithHIBP(cfg.HIBPURL), WithPrivateWebhooks(cfg.PrivateWebhooks)}
	captchas, err := Captchas(cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	for provider, v := range captchas {
		opts = append(opts, WithCaptcha(provider, v))
	}
	a, err := NewWithStore(st, append(opts, extra...)...)
	if err != nil {
		st.Close()
		return nil, err
	}
	a.ownsStore = true
	return a, nil
}

// OpenStore opens (without migrating) the database that cfg names.
func OpenStore(ctx context.Context, cfg config.Config) (*sqlstore.Store, error) {
	kind, dsn, err := cfg.Database()
	if err != nil {
		return nil, err
	}
	switch kind {
	case config.Postgres:
		st, err := sqlstore.OpenPostgres(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL database %s: %w", config.RedactURL(dsn), err)
		}
		return st, nil
	default:
		st, err := sqlstore.OpenSQLite(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("open SQLite database %s: %w", dsn, err)
		}
		return st, nil
	}
}

// Migrate opens the database that cfg names and brings its schema up to date.
func Migrate(ctx context.Context, cfg config.Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	return nil
}

// NewWithStore builds the server on an open, migrated store, which the caller keeps and closes.
// Tests use it to run the whole server in process.
func NewWithStore(st store.Store, opts ...Option) (*App, error) {
	o := options{publicURL: "http://localhost", shutdownTimeout: 15 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	pub, err := url.Parse(o.publicURL)
	if err != nil || pub.Hostname() == "" {
		return nil, fmt.Errorf("public URL %q has no host", o.publicURL)
	}

	// The store reports rows it reads around (an unreadable stored document) to the server's log.
	if l, ok := st.(interface{ SetLogger(*slog.Logger) }); ok {
		l.SetLogger(o.log)
	}
	a := &App{log: o.log, store: st, publicURL: o.publicURL, shutdownTimeout: o.shutdownTimeout, now: o.now}
	if a.now == nil {
		a.now = time.Now
	}
	a.directory = directory.New(directory.Deps{Store: st, Now: o.now, IDs: idGenerator(o),
		AllowLookalikes: func(ctx context.Context, projectID string) (bool, error) {
			p, err := st.GetProject(ctx, projectID)
			if err != nil {
				return false, err
			}
			s, err := project.DecodeSettings(p.Settings)
			return s.Emails.AllowLookalikeAddresses, err
		}})
	// Every new project gets the directory's default roles, in the transaction that creates it.
	a.projects = project.New(project.Deps{Store: st, SeedRoles: a.directory.SeedRoles, Now: o.now, Rand: o.rand, Log: o.log})
	if o.sealer == nil {
		ring, err := ephemeralKeyring(o.rand)
		if err != nil {
			return nil, err
		}
		o.sealer = ring
	}
	a.keys = token.NewKeyManager(token.KeyManagerDeps{Store: st, Sealer: o.sealer, IDs: idGenerator(o), Now: o.now,
		CacheTTL: o.keyCacheTTL})
	a.sessions = token.NewService(token.ServiceDeps{
		Store: st, Projects: a.projects, Keys: a.keys, Access: a.directory,
		Policy: a.tokenPolicy, Issuer: o.publicURL, IDs: idGenerator(o), Now: o.now, Rand: o.rand, Log: o.log,
	})
	deviceKey, err := derivedKey(o.sealer, "protect device tokens")
	if err != nil {
		return nil, err
	}
	// The alert is wired once the notifier and the worker exist, below.
	var alerts ownerAlerts
	a.protect = protect.New(protect.Deps{Store: st, Settings: a.projects.Settings, Now: o.now, IDs: idGenerator(o),
		DeviceKey: deviceKey, Alert: alerts.alert, Wake: alerts.wakeWorker})
	mfaTokens := mfa.NewTokens(mfa.TokensDeps{Store: st, Now: o.now, Rand: o.rand, IDs: idGenerator(o)})
	a.login = login.New(login.Deps{Store: st, Sessions: a.sessions, Users: a.directory, Guard: a.protect, IDs: idGenerator(o), Now: o.now,
		MFA: mfa.NewPolicy(mfa.PolicyDeps{Settings: a.projects.Settings, Tokens: mfaTokens})})

	senders := map[notify.Channel]notify.Sender{}
	for ch, s := range o.senders {
		senders[ch] = s
	}
	if o.dev {
		for _, ch := range []notify.Channel{notify.Email, notify.SMS} {
			if senders[ch] == nil {
				senders[ch] = devSender{}
			}
		}
	}
	hooks := webhook.New(webhook.Deps{Store: st, Sealer: o.sealer, IDs: idGenerator(o), Now: o.now, Rand: o.rand,
		AllowPrivate: o.dev || o.privateWebhooks})
	a.worker = outbox.NewWorker(outbox.Worker{Store: st, Opener: o.sealer, Senders: senders, KeepPayload: o.dev,
		Now: o.now, Log: o.log, Webhooks: webhook.NewDispatcher(webhook.Dispatcher{Queue: st, Opener: o.sealer,
			AllowPrivate: o.dev || o.privateWebhooks, Now: o.now, Log: o.log})})
	notices := notice.New(notice.Deps{Settings: a.projects.Settings, Sealer: o.sealer,
		Delivery: func(ch notify.Channel) bool { return senders[ch] != nil }, IDs: idGenerator(o), Now: o.now})
	alerts.notices, alerts.wake = notices, a.worker.Wake
	a.passwordless = passwordless.New(passwordless.Deps{
		Store: st, Login: a.login, Protect: a.protect, Sealer: o.sealer, Settings: a.projects.Settings, PublicURL: o.publicURL,
		Delivery: func(ch notify.Channel) bool { return senders[ch] != nil },
		Wake:     a.worker.Wake, IDs: idGenerator(o), Now: o.now, Rand: o.rand,
	})

	enumKey, err := enumerationKey(o.sealer)
	if err != nil {
		return nil, err
	}
	a.passkeys, err = passkey.New(passkey.Deps{
		Store: st, Login: a.login, Guard: a.protect, Notices: notices, Wake: a.worker.Wake, Settings: a.projects.Settings, PublicURL: o.publicURL, EnumerationKey: enumKey,
		IDs: idGenerator(o), Now: o.now, Rand: o.rand, Log: o.log,
	})
	if err != nil {
		return nil, err
	}

	a.mfa = mfa.New(mfa.Deps{
		Store: st, Login: a.login, Settings: a.projects.Settings, Tokens: mfaTokens,
		TOTP:     mfa.NewTOTP(mfa.TOTPDeps{Store: st, Sealer: o.sealer, Now: o.now, Rand: o.rand, IDs: idGenerator(o)}),
		Codes:    mfa.NewRecoveryCodes(mfa.RecoveryCodesDeps{Store: st, Now: o.now, Rand: o.rand, IDs: idGenerator(o)}),
		Passkeys: a.passkeys, Protect: a.protect, Notices: notices, Sealer: o.sealer, Wake: a.worker.Wake,
		Delivery: func(ch notify.Channel) bool { return senders[ch] != nil },
		Now:      o.now, Rand: o.rand, IDs: idGenerator(o),
	})

	hasher, err := password.New(password.DefaultParams(), o.rand)
	if err != nil {
		return nil, err
	}
	var hibp *breach.HIBP
	if o.hibpURL != "" {
		hibp = &breach.HIBP{BaseURL: o.hibpURL}
	}
	a.passwords = passwordauth.New(passwordauth.Deps{
		Store: st, Login: a.login, Protect: a.protect, Notices: notices, Breached: breach.NewChecker(breach.NewOffline(), hibp),
		Sessions: a.sessions, Hasher: hasher, Settings: a.projects.Settings, Sealer: o.sealer,
		Delivery: func(ch notify.Channel) bool { return senders[ch] != nil }, Wake: a.worker.Wake, Log: o.log,
		IDs: idGenerator(o), Now: o.now, Rand: o.rand, EnumerationKey: enumKey,
	})

	pow, err := newPoW(o, st)
	if err != nil {
		return nil, err
	}
	bots := protecthttp.Handler{PoW: pow, Captchas: o.captchas, Risk: a.protect, Settings: a.projects.Settings}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if c, ok := st.(interface{ Collectors() []prometheus.Collector }); ok {
		reg.MustRegister(c.Collectors()...)
	}
	metrics := httpserver.NewMetrics(reg)

	codeKey, err := derivedKey(o.sealer, "oidc authorization codes")
	if err != nil {
		return nil, err
	}
	a.oidc, err = oidcprovider.New(oidcprovider.Deps{Store: st, Projects: a.projects, Sessions: a.sessions, Refresher: a.login,
		Keys: a.keys, Policy: a.tokenPolicy, Users: a.directory, Access: a.directory, Budget: a.protect, Issuer: o.publicURL, CodeKey: codeKey,
		IDs: idGenerator(o), Now: o.now, Rand: o.rand, Log: o.log})
	if err != nil {
		return nil, err
	}

	secrets := protect.Secrets{Authenticator: a.projects, Engine: a.protect, IP: httpserver.ClientIPFrom}
	a.router = httpserver.NewRouter(secrets, o.log)
	a.router.UseBearer(a.sessions)
	a.router.UseBotCheck(bots.Gate)
	a.router.Handle("GET /healthz", httpserver.Public, a.healthz)
	a.router.Handle("GET /readyz", httpserver.Public, a.readyz)
	a.router.Handle("GET /api/v1/openapi.json", httpserver.Public, openAPI)
	projecthttp.Handler{Projects: a.projects, PublicHost: pub.Hostname()}.Mount(a.router)
	directoryhttp.Handler{Directory: a.directory}.Mount(a.router)
	tokenhttp.Handler{Sessions: a.sessions, Keys: a.keys, Login: a.login, Users: a.directory, Secrets: secrets,
		OIDC: a.oidc, Origins: a.allowedOrigins, Log: o.log}.Mount(a.router)
	// __Host- cookies must be Secure or browsers drop them; browsers also take Secure cookies
	// from http://localhost and loopback addresses (secure contexts), so development works.
	secureCookies := pub.Scheme == "https" || loopbackHost(pub.Hostname())
	oidcproviderhttp.Handler{Provider: a.oidc, SecureCookies: secureCookies}.Mount(a.router)
	loginPage, err := weblogin.New(weblogin.Deps{Authorizations: a.oidc, Projects: a.projects,
		Passwordless: a.passwordless, Flows: st, Passwords: a.passwords, Passkeys: a.passkeys, MFA: a.mfa,
		Directory: a.directory, Sessions: st, Sealer: o.sealer, BotCheck: bots.Gate,
		PublicURL: o.publicURL, SecureCookies: secureCookies, Now: o.now})
	if err != nil {
		return nil, err
	}
	loginPage.Mount(a.router)
	passwordlesshttp.Handler{Flows: a.passwordless}.Mount(a.router)
	passwordlesshttp.TemplateHandler{Templates: a.passwordless}.Mount(a.router)
	passkeyhttp.Handler{Passkeys: a.passkeys, Users: a.directory, Projects: projectLister{a.projects, st}}.Mount(a.router)
	mfahttp.Handler{MFA: a.mfa, Projects: a.projects, Bearer: a.sessions}.Mount(a.router)
	passwordauthhttp.Handler{Passwords: a.passwords}.Mount(a.router)
	auditloghttp.Handler{Log: auditlog.Service{Store: st}}.Mount(a.router)
	webhookhttp.Handler{Webhooks: hooks}.Mount(a.router)
	widget.Handler{}.Mount(a.router)
	bots.Mount(a.router)
	if o.dev {
		devinbox.Handler{Store: st, Opener: o.sealer}.Mount(a.router)
	}

	a.router.UseCORS(a.allowedOrigins)
	a.handler = httpserver.TrustProxies(httpserver.SecureHeaders(httpserver.Wrap(a.router, o.log, metrics), o.publicURL), o.trustedProxies)
	a.admin = a.adminHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}), o.pprof)
	return a, nil
}

// allowedOrigins are the browser origins a project's settings allow (CORS).
func (a *App) allowedOrigins(_ context.Context, p store.Project) ([]string, error) {
	s, err := a.projects.Settings(p)
	return s.AllowedOrigins, err
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// adminHandler serves what operators and their tools read, apart from the public port: metrics
// (which name every route and its traffic) and, when asked, pprof (whose heap dumps can hold
// secrets). Health and readiness are here too, for probes that only reach the admin port, and
// stay on the public port for load balancers.
func (a *App) adminHandler(metrics http.Handler, pprofOn bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _ = a.healthz(w, r) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { _ = a.readyz(w, r) })
	if pprofOn {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// AdminHandler is the admin listener's handler: /metrics, /healthz, /readyz and, with
// WithPprof, /debug/pprof/.
func (a *App) AdminHandler() http.Handler { return a.admin }

// Handler is the server's HTTP handler, middleware included.
func (a *App) Handler() http.Handler { return a.handler }

// Router is the server's router; its Patterns are every route the server serves.
func (a *App) Router() *httpserver.Router { return a.router }

// Projects is the project service.
func (a *App) Projects() *project.Service { return a.projects }

// Directory is the directory service.
func (a *App) Directory() *directory.Service { return a.directory }

// Keys is the signing key manager.
func (a *App) Keys() *token.KeyManager { return a.keys }

// Sessions is the session and token service.
func (a *App) Sessions() *token.Service { return a.sessions }

// Login is the login-completion service every login method ends in.
func (a *App) Login() *login.Service { return a.login }

// Passwordless is the magic link and one-time code service.
func (a *App) Passwordless() *passwordless.Service { return a.passwordless }

// Passkeys is the passkey (WebAuthn) service.
func (a *App) Passkeys() *passkey.Service { return a.passkeys }

// MFA is the multi-factor authentication service.
func (a *App) MFA() *mfa.Service { return a.mfa }

// Protect is the attack-protection engine.
func (a *App) Protect() *protect.Engine { return a.protect }

// OIDC is the OpenID Provider; the hosted login page approves its requests.
func (a *App) OIDC() *oidcprovider.Provider { return a.oidc }

// Worker is the outbox worker; Serve runs it, tests may run it themselves.
func (a *App) Worker() *outbox.Worker { return a.worker }

// Store is the store the server runs on.
func (a *App) Store() store.Store { return a.store }

// Listen listens on cfg.Addr. When the port is 0 (pick a free one) it writes the bound address
// back into cfg.Addr, so that the default public URL names the real port.
func Listen(cfg *config.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if _, port, err := net.SplitHostPort(cfg.Addr); err == nil && port == "0" {
		cfg.Addr = ln.Addr().String()
	}
	return ln, nil
}

// ListenAdmin listens on cfg.AdminAddr, or returns nil when the admin listener is off. A port
// of 0 is written back into cfg.AdminAddr, as Listen does.
func ListenAdmin(cfg *config.Config) (net.Listener, error) {
	if !cfg.AdminEnabled() {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (admin_addr; off turns the admin listener off): %w", cfg.AdminAddr, err)
	}
	if _, port, err := net.SplitHostPort(cfg.AdminAddr); err == nil && port == "0" {
		cfg.AdminAddr = ln.Addr().String()
	}
	return ln, nil
}

// Serve serves HTTP on ln until ctx is done, then stops accepting connections and lets
// in-flight requests finish for up to the shutdown timeout. It returns nil after a clean
// shutdown. It logs the address it listens on ("latchkey listening", addr=...), which is how a
// caller learns a port picked by the system.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	return a.ServeWithAdmin(ctx, ln, nil)
}

// ServeWithAdmin is Serve that also serves AdminHandler on admin (nil: no admin listener),
// logging "latchkey admin listening" with its address. Either server failing stops both.
func (a *App) ServeWithAdmin(ctx context.Context, ln, admin net.Listener) error {
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		}
	}
	srv := newServer(a.handler)
	servers := []*http.Server{srv}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if admin != nil {
		adm := newServer(a.admin)
		servers = append(servers, adm)
		go func() { errc <- adm.Serve(admin) }()
		a.log.InfoContext(ctx, "latchkey admin listening", "addr", admin.Addr().String())
	}
	wctx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); a.worker.Run(wctx) }()
	go a.sweep(wctx)
	defer func() { stopWorker(); <-workerDone }()
	a.log.InfoContext(ctx, "latchkey listening", "addr", ln.Addr().String(), "public_url", a.publicURL)

	pending := len(servers)
	var failed error
	select {
	case err := <-errc:
		pending--
		failed = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		a.log.InfoContext(ctx, "shutting down: letting in-flight requests finish", "timeout", a.shutdownTimeout)
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.shutdownTimeout)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			s.Close()
			if failed == nil {
				failed = fmt.Errorf("graceful shutdown: %w", err)
			}
		}
	}
	for ; pending > 0; pending-- {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && failed == nil {
			failed = fmt.Errorf("serve: %w", err)
		}
	}
	if failed != nil {
		return failed
	}
	a.log.InfoContext(ctx, "stopped")
	return nil
}

// sweepEvery is how often an instance deletes what no longer counts. Several instances
// sweeping is harmless: deleting a row twice deletes it once.
const sweepEvery = 10 * time.Minute

// gcBatch bounds each deleting statement of a sweep: a backlog of millions goes in thousands of
// short commits, between which requests get the database (SQLite's one writer) back.
const gcBatch = 1000

// sweep runs Sweep every sweepEvery until ctx ends.
func (a *App) sweep(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := a.Sweep(ctx); err != nil && ctx.Err() == nil {
			a.log.WarnContext(ctx, "sweep expired rows", "err", err)
		}
	}
}

// Sweep deletes, at the server's clock, what no longer counts: idle attack-protection
// counters (their windows are the protect package's to know), then everything
// store.DefaultRetention says has ended, batch by batch until a batch comes back short. It
// returns what the garbage collection deleted.
func (a *App) Sweep(ctx context.Context) (store.GCResult, error) {
	if _, err := a.protect.Sweep(ctx); err != nil {
		return store.GCResult{}, fmt.Errorf("sweep attack-protection counters: %w", err)
	}
	var total store.GCResult
	for {
		r, err := a.store.GarbageCollect(ctx, a.now().UTC(), store.DefaultRetention, gcBatch)
		total = total.Add(r)
		if err != nil {
			return total, err
		}
		if !r.Full(gcBatch) || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}

// Close releases the database when New opened it.
func (a *App) Close() error {
	if !a.ownsStore {
		return nil
	}
	if err := a.store.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

type status struct {
	Status string `json:"status"`
}

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) error {
	httpserver.WriteJSON(w, http.StatusOK, status{Status: "ok"})
	return nil
}

// readyz reports whether this instance can serve traffic, that is whether its database answers.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := a.store.Ping(ctx); err != nil {
		a.log.WarnContext(ctx, "not ready: database does not answer", "request_id", httpserver.RequestID(ctx), "err", err)
		httpserver.WriteJSON(w, http.StatusServiceUnavailable, status{Status: "unavailable"})
		return nil
	}
	httpserver.WriteJSON(w, http.StatusOK, status{Status: "ok"})
	return nil
}

func openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(docs.OpenAPI) // the status is sent; a failed write means the client went away
	return nil
}
