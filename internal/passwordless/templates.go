package passwordless

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Audit event types of template changes, each written in the transaction of its change (so a
// refused change, such as a template that does not render, writes none). Detail holds "actor"
// (see audit.Actor) and "template", the template's name; never the template's text.
//
//   - template.updated: an override was stored.
//   - template.reset: the override was dropped (also when there was none).
const (
	EventTemplateUpdated = "template.updated"
	EventTemplateReset   = "template.reset"
)

// TemplateView is a project's template and whether it is the built-in default.
type TemplateView struct {
	Name    notify.TemplateName
	Default bool
	notify.Template
}

// Template returns the project's template name: its override, or the default. Errors:
// template_not_found (404) for an unknown name.
func (s *Service) Template(ctx context.Context, projectID, name string) (TemplateView, error) {
	n, err := templateNameOf(name)
	if err != nil {
		return TemplateView{}, err
	}
	t, err := s.d.Store.GetTemplate(ctx, projectID, string(n))
	if errors.Is(err, store.ErrNotFound) {
		def, _ := notify.DefaultTemplate(n)
		return TemplateView{Name: n, Default: true, Template: def}, nil
	}
	if err != nil {
		return TemplateView{}, fmt.Errorf("get template %s: %w", n, err)
	}
	return TemplateView{Name: n, Template: notify.Template{Subject: t.Subject, Text: t.Text, HTML: t.HTML}}, nil
}

// PutTemplate stores an override after checking that it parses and renders, recorded as
// template.updated. Errors: template_not_found (404), invalid_template (400, with the reason).
func (s *Service) PutTemplate(ctx context.Context, by audit.Actor, projectID, name string, t notify.Template) (TemplateView, error) {
	n, err := templateNameOf(name)
	if err != nil {
		return TemplateView{}, err
	}
	if err := t.Validate(n); err != nil {
		return TemplateView{}, &failure.Error{Kind: failure.Invalid, Code: "invalid_template", Description: err.Error(), Err: err}
	}
	err = s.d.Store.InTx(ctx, func(tx store.Store) error {
		if err := tx.PutTemplate(ctx, store.MessageTemplate{ProjectID: projectID, Name: string(n),
			Subject: t.Subject, Text: t.Text, HTML: t.HTML, UpdatedAt: s.clock()}); err != nil {
			return err
		}
		return s.auditTemplate(ctx, tx, by, projectID, EventTemplateUpdated, n)
	})
	if err != nil {
		return TemplateView{}, fmt.Errorf("put template %s: %w", n, err)
	}
	return TemplateView{Name: n, Template: t}, nil
}

// ResetTemplate drops the project's override, recorded as template.reset.
// Errors: template_not_found (404).
func (s *Service) ResetTemplate(ctx context.Context, by audit.Actor, projectID, name string) (TemplateView, error) {
	n, err := templateNameOf(name)
	if err != nil {
		return TemplateView{}, err
	}
	err = s.d.Store.InTx(ctx, func(tx store.Store) error {
		if err := tx.DeleteTemplate(ctx, projectID, string(n)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete template %s: %w", n, err)
		}
		return s.auditTemplate(ctx, tx, by, projectID, EventTemplateReset, n)
	})
	if err != nil {
		return TemplateView{}, err
	}
	def, _ := notify.DefaultTemplate(n)
	return TemplateView{Name: n, Default: true, Template: def}, nil
}

// auditTemplate writes the event typ of a change to template n through tx, the change's
// transaction.
func (s *Service) auditTemplate(ctx context.Context, tx store.AuditEvents, by audit.Actor, projectID, typ string, n notify.TemplateName) error {
	e := store.AuditEvent{ID: s.d.IDs.New(), ProjectID: projectID, Type: typ, CreatedAt: s.clock(),
		Detail: map[string]any{"template": string(n)}}
	if err := tx.AddAuditEvent(ctx, by.Stamp(e)); err != nil {
		return fmt.Errorf("write audit event %s: %w", typ, err)
	}
	return nil
}

func templateNameOf(name string) (notify.TemplateName, error) {
	n, err := notify.ParseTemplateName(name)
	if err != nil {
		return "", failure.New(failure.NotFound, "template_not_found", "no template %q (magic_link, email_otp, sms_otp, password_reset, security_notice)", name)
	}
	return n, nil
}
