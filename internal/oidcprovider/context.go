package oidcprovider

import (
	"context"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// op's Storage methods take only a context and op's own types, so what Latchkey knows about a
// request travels in the context: the project being served (whose key signs), the client the
// token endpoint already authenticated, and the authorization request's extras.

type projectKey struct{}

func withProject(ctx context.Context, p store.Project) context.Context {
	return context.WithValue(ctx, projectKey{}, p)
}

func projectFrom(ctx context.Context) (store.Project, bool) {
	p, ok := ctx.Value(projectKey{}).(store.Project)
	return p, ok
}

type authenticatedKey struct{}

// withAuthenticated marks clientID as authenticated by the token endpoint (through the
// throttled secret check), so that op's own secret check does not run a second time.
func withAuthenticated(ctx context.Context, clientID string) context.Context {
	return context.WithValue(ctx, authenticatedKey{}, clientID)
}

func authenticated(ctx context.Context) string {
	id, _ := ctx.Value(authenticatedKey{}).(string)
	return id
}

// extras are what the authorize route learned before op parsed the request.
type extras struct {
	// requestID is the id the request is to be stored under (128 random bits, hex).
	requestID string
	// binding is the SHA-256 of the binding cookie set with this response.
	binding []byte
	// requestURI is set when the request carried request_uri, which op's parser drops.
	requestURI bool
	// extensions are Latchkey's own parameters (organization, connection, provider,
	// screen_hint).
	extensions map[string]string
}

type extrasKey struct{}

func extrasFrom(ctx context.Context) extras {
	x, _ := ctx.Value(extrasKey{}).(extras)
	return x
}
