package protect

import (
	"context"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// SecretAuthenticator checks project client secrets (project.Service).
type SecretAuthenticator interface {
	// ProjectByClientID returns the project with that client id.
	ProjectByClientID(ctx context.Context, clientID string) (store.Project, error)
	// AuthenticateSecret returns the project that owns secret; with a client id, the secret
	// must be that project's.
	AuthenticateSecret(ctx context.Context, clientID, secret string) (store.Project, error)
}

// Secrets checks client secrets through the engine: a client id's wrong secrets from one IP
// are counted and, past the limits, refused before any lookup. Secrets are 256-bit, so this
// bounds the load of guessing, not its chances. A secret without a client id names no project
// to count against and is checked as is.
type Secrets struct {
	Authenticator SecretAuthenticator
	Engine        *Engine
	// IP returns the client IP of the request ctx belongs to. It is a function so that this
	// package needs no HTTP code: the app passes the HTTP server's.
	IP func(ctx context.Context) string
}

// ProjectByClientID returns the project with that client id, unthrottled: it checks no secret.
func (s Secrets) ProjectByClientID(ctx context.Context, clientID string) (store.Project, error) {
	return s.Authenticator.ProjectByClientID(ctx, clientID)
}

// AuthenticateSecret returns the project that owns secret, counting a wrong one against the
// client id and IP. Errors: invalid_client (401) for an unknown client id or a wrong secret,
// and the engine's refusals (429) past its limits.
func (s Secrets) AuthenticateSecret(ctx context.Context, clientID, secret string) (store.Project, error) {
	if clientID == "" {
		return s.Authenticator.AuthenticateSecret(ctx, clientID, secret)
	}
	p, err := s.Authenticator.ProjectByClientID(ctx, clientID)
	if failure.IsKind(err, failure.NotFound) {
		// As for a wrong secret: an unknown client id is a failed client authentication.
		return store.Project{}, failure.New(failure.Unauthenticated, "invalid_client", "client authentication failed")
	}
	if err != nil {
		return store.Project{}, err
	}
	guard := Guard{Project: p, Kind: "client_secret", Account: clientID, IP: s.IP(ctx)}
	if err := s.Engine.Check(ctx, guard); err != nil {
		return store.Project{}, err
	}
	got, err := s.Authenticator.AuthenticateSecret(ctx, clientID, secret)
	if fe, ok := failure.As(err); ok && fe.Code == "invalid_client" {
		if ferr := s.Engine.Fail(ctx, guard); ferr != nil {
			return store.Project{}, ferr
		}
	}
	return got, err
}
