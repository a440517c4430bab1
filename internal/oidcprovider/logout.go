package oidcprovider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// EndSession is RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). op verifies the
// id_token_hint against the keys of the project it names and matches post_logout_redirect_uri
// exactly against oidc.post_logout_redirect_uris; then the browser's session of that project
// (browserSession, the value of BrowserSessionCookie) ends with its token session, and so does
// the session the hint's sid names together with its parent, the login session it came from
// (store.Session.ParentID). The parent is what ends single sign-on when the request carries no
// cookie (an application's server calling end_session): every browser session is valid only
// while its login session is active.
//
// Other sessions started from the same single sign-on (other code exchanges, other tabs) are
// not revoked: the specification ends the OP's session and the requesting RP's, and tells the
// other RPs through front- or back-channel logout, which we do not implement (discovery says
// so). They keep their tokens until their own sessions end; what they lose is single sign-on,
// so their next authorization asks the user to log in again.
//
// It returns where to send the browser: the registered URI with state, or "" for the
// signed-out page. An unregistered URI is an error, never a redirect.
func (p *Provider) EndSession(ctx context.Context, req *oidc.EndSessionRequest, browserSession string, meta audit.Meta) (string, error) {
	ctx = p.WithIssuer(ctx)
	if len(req.IdTokenHint) > 16<<10 || len(req.PostLogoutRedirectURI) > 2048 || len(req.State) > maxParam {
		return "", invalidRequest("a logout parameter is too long")
	}
	if req.PostLogoutRedirectURI != "" && req.ClientID == "" && req.IdTokenHint == "" {
		return "", invalidRequest("post_logout_redirect_uri needs id_token_hint or client_id")
	}
	es, err := op.ValidateEndSessionRequest(ctx, req, p.Provider)
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.ServerError {
			return "", failure.New(failure.Invalid, "invalid_request", "the application (client_id) is not known")
		}
		return "", fromOIDC(err)
	}
	if es.ClientID == "" {
		return "", nil // no client named: nothing this request may end
	}
	c, err := p.storage.client(ctx, es.ClientID)
	if err != nil {
		return "", err
	}
	now := p.clock()
	var ends []string
	if bs, ok, err := p.browserSession(ctx, c.Project.ID, browserSession, now); err != nil {
		return "", err
	} else if ok {
		if err := p.storage.store.RevokeBrowserSession(ctx, c.Project.ID, bs.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("revoke browser session: %w", err)
		}
		ends = append(ends, bs.SessionID)
	}
	var hinted string
	if es.IDTokenHintClaims != nil && es.IDTokenHintClaims.SessionID != "" {
		hinted = es.IDTokenHintClaims.SessionID
		ends = append(ends, hinted)
	}
	if err := p.endSessions(ctx, c.Project.ID, ends, hinted, meta, now); err != nil {
		return "", err
	}
	if req.PostLogoutRedirectURI == "" {
		return "", nil
	}
	return es.RedirectURI, nil
}

// endSessions revokes the token sessions ids of the project, with an audit event each. When
// hinted (one of ids, the id_token_hint's sid) has a parent of the same user, the parent is
// revoked too, even when hinted itself had already ended: the logout still asks to end the
// single sign-on it came from.
func (p *Provider) endSessions(ctx context.Context, projectID string, ids []string, hinted string, meta audit.Meta, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	return p.storage.store.InTx(ctx, func(tx store.Store) error {
		done := make(map[string]bool, len(ids)+1)
		for i := 0; i < len(ids); i++ {
			id := ids[i]
			if done[id] {
				continue
			}
			done[id] = true
			sess, err := tx.GetSession(ctx, projectID, id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("get session %s: %w", id, err)
			}
			if id == hinted && sess.ParentID != "" {
				parent, err := tx.GetSession(ctx, projectID, sess.ParentID)
				switch {
				case errors.Is(err, store.ErrNotFound):
					// swept already: its single sign-on is long over
				case err != nil:
					return fmt.Errorf("get parent session %s: %w", sess.ParentID, err)
				case parent.UserID == sess.UserID:
					// The same user, always, by construction; the check keeps a corrupt link
					// from signing someone else out.
					ids = append(ids, parent.ID)
				}
			}
			if sess.RevokedAt != nil {
				continue
			}
			if err := tx.RevokeSession(ctx, projectID, id, now, "oidc_logout"); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("revoke session %s: %w", id, err)
			}
			if err := tx.AddAuditEvent(ctx, store.AuditEvent{ID: p.ids.New(), ProjectID: projectID, Type: "session.revoked",
				UserID: sess.UserID, SessionID: id, IPAddress: meta.IPAddress, UserAgent: meta.UserAgent,
				Detail: map[string]any{"reason": "oidc_logout"}, CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
}
