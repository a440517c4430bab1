// Package notice tells users by email when a way of signing in to their account changed: a
// password set or changed, an authenticator app or passkey added or removed, MFA reset. If it
// was not them, the email is how they learn someone else can sign in (ASVS 5.0 6.3.7).
package notice

import (
	"context"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/outbox"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Changes a notice can tell of. Each is the sentence the email shows.
const (
	PasswordChanged      = "Your password was changed."
	PasswordReset        = "Your password was reset with a link sent to this address."
	PasswordSet          = "An administrator set a password for your account."
	AuthenticatorAdded   = "An authenticator app was added to your account as a second factor."
	AuthenticatorRemoved = "An authenticator app was removed from your account."
	RecoveryCodesIssued  = "A new set of backup codes was made for your account; the old ones no longer work."
	MFAReset             = "An administrator removed the second factors of your account."
	PasskeyAdded         = "A passkey was added to your account."
	PasskeyRemoved       = "A passkey was removed from your account."
	// UnderAttack is sent when many failed sign-ins lock an account, once per lock.
	UnderAttack = "Someone failed to sign in to your account many times, so sign-ins from new devices are paused for a while. " +
		"Devices you signed in from before are not affected. No wrong attempt got in; if it was not you, nothing needs doing, " +
		"and a long, unique password keeps it that way."
)

// Store is the part of a store (best a transaction's) that a notice is queued through.
type Store interface {
	store.MessageTemplates
	store.Outbox
}

// Deps are the notifier's dependencies.
type Deps struct {
	Settings func(store.Project) (project.Settings, error)
	Sealer   outbox.Sealer
	// Delivery reports whether email has a sender: without one, notices are skipped, not
	// queued for ever.
	Delivery func(notify.Channel) bool
	IDs      *ident.Generator
	Now      func() time.Time
}

// Notifier queues notices in the outbox.
type Notifier struct {
	d Deps
}

// New returns the notifier.
func New(d Deps) *Notifier {
	if d.IDs == nil {
		d.IDs = ident.NewGenerator()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Notifier{d: d}
}

// noticeTTL is how long the outbox tries to deliver a notice: a day late it is still news.
const noticeTTL = 24 * time.Hour

// Notify queues a notice of change to u through tx: best the transaction of the change itself,
// so that the notice goes out exactly when the change committed; where a change commits on its
// own, the store right after it. A user without an email, or a server without an email sender,
// gets none. The caller wakes the outbox worker after commit.
func (n *Notifier) Notify(ctx context.Context, tx Store, p store.Project, u store.User, change string) error {
	if u.Email == "" || (n.d.Delivery != nil && !n.d.Delivery(notify.Email)) {
		return nil
	}
	st, err := n.d.Settings(p)
	if err != nil {
		return err
	}
	now := n.d.Now().UTC().Truncate(time.Microsecond)
	m, err := outbox.Compose(ctx, tx, n.d.Sealer, outbox.Message{ID: n.d.IDs.New(), ProjectID: p.ID, Channel: notify.Email,
		Recipient: u.Email, Template: notify.SecurityNotice, At: now, ExpiresAt: now.Add(noticeTTL),
		Data: notify.TemplateData{Brand: st.Brand(p.Name), LogoURL: st.Branding.LogoURL, Color: st.Branding.PrimaryColor, Email: u.Email,
			Change: change + " (" + now.Format("2 January 2006 at 15:04 UTC") + ")"}})
	if err != nil {
		return fmt.Errorf("compose a notice: %w", err)
	}
	if err := tx.EnqueueMessage(ctx, m); err != nil {
		return fmt.Errorf("enqueue a notice: %w", err)
	}
	return nil
}
