package httpserver

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
	"github.com/latchkey-dev/latchkey/internal/token"
)

// HandlerFunc is a route handler. It writes a response on success and returns an error
// otherwise; the router writes the error.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Access says which credentials a route requires.
type Access int

const (
	// Public routes need no project (health, metrics, the OpenAPI document).
	Public Access = iota
	// ClientID routes need the project's client id (query client_id or header x-client-id).
	ClientID
	// Secret routes need a project secret (x-client-secret, or Authorization: Bearer sk_...)
	// or a machine access token of the project (client_credentials).
	Secret
	// User routes need a user's access token (Authorization: Bearer <JWT>) whose session is
	// still active.
	User
	// OptionalClientID routes serve everyone; when the request names a client id it is checked
	// as on ClientID routes and the project is in the context (see ProjectIfAny).
	OptionalClientID
)

// ProjectAuthenticator resolves the project behind a request's credentials.
type ProjectAuthenticator interface {
	// ProjectByClientID returns the project with that client id.
	ProjectByClientID(ctx context.Context, clientID string) (store.Project, error)
	// AuthenticateSecret returns the project that owns secret. When clientID is not empty the
	// secret must belong to that project.
	AuthenticateSecret(ctx context.Context, clientID, secret string) (store.Project, error)
}

// BearerAuthenticator checks access tokens. clientID, when not empty, is the client the
// request names; the token must be that client's.
type BearerAuthenticator interface {
	AuthenticateBearer(ctx context.Context, clientID, raw string) (token.Caller, error)
}

// Router registers routes on a ServeMux, wrapping each with the access check its Access asks
// for, and remembers every pattern so that the OpenAPI document can be checked against it.
type Router struct {
	mux      *http.ServeMux
	auth     ProjectAuthenticator
	bearer   BearerAuthenticator
	log      *slog.Logger
	patterns []string
	// botCheck is the gate of the routes mounted with BotChecked; gated lists those routes.
	botCheck Gate
	gated    map[string]bool
	// origins, when set (UseCORS), are the browser origins of a project; corsRoutes are the
	// patterns that answer CORS (every route but Secret ones).
	origins    OriginsFunc
	corsRoutes map[string]bool
	// bearerPreflight lists the BearerPreflight routes.
	bearerPreflight map[string]bool
}

// Gate is a check some routes make after their access check and before their handler, such
// as a bot check on sign-up and send routes. It sees the request with its project resolved
// and returns the request the handler gets: r, or r with what the check learned in its context.
type Gate func(r *http.Request) (*http.Request, error)

// RouteOption states a protection a route needs besides its Access, where the route is mounted.
type RouteOption int

const (
	// BotChecked routes pass the router's bot check (UseBotCheck) after their access check:
	// sign-up and every route that sends a message, the routes bots abuse to create accounts
	// and run up SMS bills.
	BotChecked RouteOption = iota + 1
	// BearerPreflight routes take a browser's bearer token and nothing else that names a
	// project (OpenID Connect's userinfo, whose URL a client reads from the discovery document
	// and cannot add client_id to). Their CORS preflight, which carries neither the token nor
	// a client id, is allowed from any origin, for the Authorization and Content-Type headers
	// only; the answer itself is still exposed only to an origin the token's project allows.
	BearerPreflight
)

// NewRouter returns an empty router.
func NewRouter(auth ProjectAuthenticator, log *slog.Logger) *Router {
	return &Router{mux: http.NewServeMux(), auth: auth, log: log, corsRoutes: map[string]bool{}, gated: map[string]bool{},
		bearerPreflight: map[string]bool{}}
}

// UseBotCheck sets the gate of BotChecked routes. Call it before serving: it is read without a
// lock. A BotChecked route on a router without one refuses every request (500) rather than
// let bots through.
func (rt *Router) UseBotCheck(g Gate) { rt.botCheck = g }

// UseBearer sets how access tokens are checked; without it, routes refuse them.
func (rt *Router) UseBearer(b BearerAuthenticator) { rt.bearer = b }

// Handle registers h at pattern (a Go ServeMux pattern with a method, e.g.
// "GET /api/v1/users/{id}"), with the protections opts state.
func (rt *Router) Handle(pattern string, access Access, h HandlerFunc, opts ...RouteOption) {
	rt.patterns = append(rt.patterns, pattern)
	cors := access != Secret // a browser must never hold the secret: no CORS on management routes
	rt.corsRoutes[pattern] = cors
	gated := slices.Contains(opts, BotChecked)
	if gated {
		rt.gated[pattern] = true
	}
	if cors && slices.Contains(opts, BearerPreflight) {
		rt.bearerPreflight[pattern] = true
	}
	rt.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, err := rt.authorize(r, access)
		if cors {
			rt.corsResponse(ctx, w, r)
		}
		if err == nil {
			if p, ok := ctx.Value(projectKey{}).(store.Project); ok {
				noteProject(ctx, p.ID)
			}
			r = r.WithContext(ctx)
			if gated {
				r, err = rt.checkBots(r)
			}
		}
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			WriteError(w, r, rt.log, err)
		}
	}))
}

func (rt *Router) checkBots(r *http.Request) (*http.Request, error) {
	if rt.botCheck == nil {
		return r, failure.New(failure.Internal, "internal_error", "route %s is bot-checked but the router has no bot check", r.Pattern)
	}
	return rt.botCheck(r)
}

// BotCheckedPatterns returns the patterns of the BotChecked routes, sorted.
func (rt *Router) BotCheckedPatterns() []string {
	var p []string
	for pattern := range rt.gated {
		p = append(p, pattern)
	}
	slices.Sort(p)
	return p
}

// HandleHTTP registers a plain http.Handler (for handlers owned by libraries, such as metrics).
func (rt *Router) HandleHTTP(pattern string, h http.Handler) {
	rt.patterns = append(rt.patterns, pattern)
	rt.mux.Handle(pattern, h)
}

// Patterns returns every registered pattern, sorted.
func (rt *Router) Patterns() []string {
	p := slices.Clone(rt.patterns)
	slices.Sort(p)
	return p
}

// ServeHTTP serves the registered routes; unknown paths and methods answer in the documented
// error shape rather than ServeMux's plain text. OPTIONS on a known path answers 204 with its
// methods (and CORS headers for a preflight that may have them).
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := rt.mux.Handler(r)
	if pattern == "" {
		// No route matched; let the mux decide between 404 and 405 and only reshape its answer.
		rec := &statusOnly{header: http.Header{}}
		rt.mux.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed && r.Method == http.MethodOptions {
			rt.options(w, r, rec.header.Get("Allow"))
			return
		}
		if rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.header.Get("Allow"))
			WriteError(w, r, rt.log, failure.New(failure.Invalid, "method_not_allowed", "method %s is not allowed here", r.Method))
			return
		}
		WriteError(w, r, rt.log, failure.New(failure.NotFound, "route_not_found", "no such endpoint"))
		return
	}
	rt.mux.ServeHTTP(w, r)
}

// statusOnly captures the status that ServeMux would send for an unmatched request.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(status int)      { s.status = status }

func (rt *Router) authorize(r *http.Request, access Access) (context.Context, error) {
	ctx := r.Context()
	if access == Public {
		return ctx, nil
	}
	clientID, err := clientIDFrom(r)
	if err != nil {
		return ctx, err
	}
	if access == OptionalClientID {
		if clientID == "" {
			return ctx, nil
		}
		access = ClientID
	}
	switch access {
	case ClientID:
		if clientID == "" {
			return ctx, failure.New(failure.Invalid, "missing_client_id", "client_id is required (query parameter client_id or header x-client-id)")
		}
		if secret := secretFrom(r); secret != "" {
			return rt.serverSide(ctx, r, clientID, secret)
		}
		p, err := rt.auth.ProjectByClientID(ctx, clientID)
		if err != nil {
			return ctx, err
		}
		return WithProject(ctx, p), nil
	case Secret:
		if raw := bearerFrom(r); raw != "" {
			c, err := rt.authenticateBearer(ctx, clientID, raw)
			if err != nil {
				return ctx, err
			}
			if !c.Machine() {
				return ctx, failure.New(failure.Forbidden, "machine_token_required",
					"this endpoint takes the project secret or a client_credentials token, not a user's token")
			}
			return WithCaller(WithProject(ctx, c.Project), c), nil
		}
		secret := secretFrom(r)
		if secret == "" {
			return ctx, failure.New(failure.Unauthenticated, "missing_credentials", "a client secret is required (header x-client-secret or Authorization: Bearer sk_...)")
		}
		p, err := rt.auth.AuthenticateSecret(ctx, clientID, secret)
		if err != nil {
			return ctx, err
		}
		return WithProject(ctx, p), nil
	case User:
		raw := bearerFrom(r)
		if raw == "" {
			return ctx, failure.New(failure.Unauthenticated, "missing_token", "an access token is required (Authorization: Bearer <token>)")
		}
		c, err := rt.authenticateBearer(ctx, clientID, raw)
		if err != nil {
			return ctx, err
		}
		if c.Machine() {
			return ctx, failure.New(failure.Forbidden, "user_token_required", "this endpoint takes a user's access token")
		}
		return WithCaller(WithProject(ctx, c.Project), c), nil
	}
	return ctx, failure.New(failure.Internal, "internal_error", "route has unknown access %d", access)
}

// Headers in which a server calling a client route with the project secret names the end
// user it calls for. They are honoured only with a valid secret: anyone else could set them to
// spend someone else's limits or escape their own.
const (
	// ForwardedForHeader is Latchkey's: one IP address, the end user's.
	ForwardedForHeader = "Latchkey-Forwarded-For"
	// Auth0ForwardedForHeader is Auth0's name for the same, accepted so that a backend written
	// for Auth0 works unchanged.
	Auth0ForwardedForHeader = "Auth0-Forwarded-For"
)

// serverSide authorizes a client route called with the project secret: the caller is the
// project's own server, so the request is marked server-side (ServerSide) and, when it names
// the end user's IP, that IP becomes the request's client IP for limits, logs and sessions.
// A wrong secret is refused (401 invalid_client), never ignored.
func (rt *Router) serverSide(ctx context.Context, r *http.Request, clientID, secret string) (context.Context, error) {
	p, err := rt.auth.AuthenticateSecret(ctx, clientID, secret)
	if err != nil {
		return ctx, err
	}
	ctx = context.WithValue(WithProject(ctx, p), serverSideKey{}, true)
	name := ForwardedForHeader
	raw := strings.TrimSpace(r.Header.Get(name))
	if raw == "" {
		name = Auth0ForwardedForHeader
		raw = strings.TrimSpace(r.Header.Get(name))
	}
	if raw == "" {
		return ctx, nil
	}
	ip, err := netip.ParseAddr(raw)
	if err != nil {
		return ctx, failure.New(failure.Invalid, "invalid_request", "%s must be one IP address, the end user's", name)
	}
	return context.WithValue(ctx, clientIPKey{}, ip.Unmap().String()), nil
}

type serverSideKey struct{}

// ServerSide reports whether the request of ctx came from the project's own server: a client
// route called with the project secret.
func ServerSide(ctx context.Context) bool {
	ok, _ := ctx.Value(serverSideKey{}).(bool)
	return ok
}

// clientIDFrom reads the client id from the query or the x-client-id header; both may be given
// only when they agree.
func clientIDFrom(r *http.Request) (string, error) {
	q := strings.TrimSpace(r.URL.Query().Get("client_id"))
	h := strings.TrimSpace(r.Header.Get("X-Client-Id"))
	if q != "" && h != "" && q != h {
		return "", failure.New(failure.Invalid, "client_id_mismatch", "client_id query parameter and x-client-id header differ")
	}
	if q != "" {
		return q, nil
	}
	return h, nil
}

func secretFrom(r *http.Request) string {
	if s := strings.TrimSpace(r.Header.Get("X-Client-Secret")); s != "" {
		return s
	}
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		if tok := strings.TrimSpace(auth[7:]); strings.HasPrefix(tok, "sk_") {
			return tok
		}
	}
	return ""
}

func (rt *Router) authenticateBearer(ctx context.Context, clientID, raw string) (token.Caller, error) {
	if rt.bearer == nil {
		return token.Caller{}, failure.New(failure.Unauthenticated, "invalid_token", "access tokens are not accepted here")
	}
	return rt.bearer.AuthenticateBearer(ctx, clientID, raw)
}

// bearerFrom returns an access token from the Authorization header: a Bearer credential that
// is not a client secret.
func bearerFrom(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if len(auth) <= 7 || !strings.EqualFold(auth[:7], "bearer ") {
		return ""
	}
	tok := strings.TrimSpace(auth[7:])
	if strings.HasPrefix(tok, "sk_") {
		return ""
	}
	return tok
}

// ClientIDOf returns the client id a request names (query client_id or header x-client-id),
// for handlers of Public routes that check a credential of their own.
func ClientIDOf(r *http.Request) (string, error) { return clientIDFrom(r) }

// BearerOf returns the request's Bearer credential, unless it is a client secret, for
// handlers of Public routes that check a credential of their own.
func BearerOf(r *http.Request) string { return bearerFrom(r) }

type callerKey struct{}

// WithCaller returns ctx carrying the access token's caller.
func WithCaller(ctx context.Context, c token.Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller of a request authenticated with an access token, and whether
// there is one.
func CallerFrom(ctx context.Context) (token.Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(token.Caller)
	return c, ok
}

type projectKey struct{}

// WithProject returns ctx carrying the request's project.
func WithProject(ctx context.Context, p store.Project) context.Context {
	return context.WithValue(ctx, projectKey{}, p)
}

// ProjectIfAny returns the project that the router resolved for this request, if any: on an
// OptionalClientID route, there is one only when the request named a client id.
func ProjectIfAny(ctx context.Context) (store.Project, bool) {
	p, ok := ctx.Value(projectKey{}).(store.Project)
	return p, ok
}

// ProjectFrom returns the project that the router resolved for this request. It panics on a
// Public route, where there is none: that is a programming error, not a client's.
func ProjectFrom(ctx context.Context) store.Project {
	p, ok := ctx.Value(projectKey{}).(store.Project)
	if !ok {
		panic("httpserver: ProjectFrom on a route without a project")
	}
	return p
}
