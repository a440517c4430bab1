package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey-dev/latchkey/internal/store"
)

// errOIDCNotBuilt marks the OpenID Provider tables as not written yet (migration 0019).
var errOIDCNotBuilt = errors.New("sqlstore: oidc tables not built yet")

// CreateOIDCAuthRequest stores a new authorization request.
func (s *Store) CreateOIDCAuthRequest(ctx context.Context, r store.OIDCAuthRequest) error {
	return errOIDCNotBuilt
}

// GetOIDCAuthRequest finds an authorization request by id.
func (s *Store) GetOIDCAuthRequest(ctx context.Context, id string) (store.OIDCAuthRequest, error) {
	return store.OIDCAuthRequest{}, errOIDCNotBuilt
}

// ApproveOIDCAuthRequest records the login that answers a request.
func (s *Store) ApproveOIDCAuthRequest(ctx context.Context, projectID, id string, a store.OIDCApproval) error {
	return errOIDCNotBuilt
}

// SaveOIDCCode stores an authorization code's hash.
func (s *Store) SaveOIDCCode(ctx context.Context, c store.OIDCCode) error { return errOIDCNotBuilt }

// GetOIDCCode finds a code by hash.
func (s *Store) GetOIDCCode(ctx context.Context, hash []byte) (store.OIDCCode, error) {
	return store.OIDCCode{}, errOIDCNotBuilt
}

// ConsumeOIDCCode spends a code.
func (s *Store) ConsumeOIDCCode(ctx context.Context, projectID string, hash []byte, sessionID string, at time.Time) (store.OIDCCode, error) {
	return store.OIDCCode{}, errOIDCNotBuilt
}

// CreateBrowserSession stores a browser session.
func (s *Store) CreateBrowserSession(ctx context.Context, b store.BrowserSession) error {
	return errOIDCNotBuilt
}

// GetBrowserSession finds a browser session by its token's hash.
func (s *Store) GetBrowserSession(ctx context.Context, projectID string, tokenHash []byte) (store.BrowserSession, error) {
	return store.BrowserSession{}, errOIDCNotBuilt
}

// TouchBrowserSession records use of a browser session.
func (s *Store) TouchBrowserSession(ctx context.Context, projectID, id string, at time.Time) error {
	return errOIDCNotBuilt
}

// RevokeBrowserSession ends a browser session.
func (s *Store) RevokeBrowserSession(ctx context.Context, projectID, id string, at time.Time) error {
	return errOIDCNotBuilt
}
