package passwordless

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/notify"
	"github.com/latchkey-dev/latchkey/internal/store"
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

// PutTemplate stores an override after checking that it parses and renders. Errors:
// template_not_found (404), invalid_template (400, with the reason).
func (s *Service) PutTemplate(ctx context.Context, projectID, name string, t notify.Template) (TemplateView, error) {
	n, err := templateNameOf(name)
	if err != nil {
		return TemplateView{}, err
	}
	if err := t.Validate(n); err != nil {
		return TemplateView{}, &failure.Error{Kind: failure.Invalid, Code: "invalid_template", Description: err.Error(), Err: err}
	}
	err = s.d.Store.PutTemplate(ctx, store.MessageTemplate{ProjectID: projectID, Name: string(n),
		Subject: t.Subject, Text: t.Text, HTML: t.HTML, UpdatedAt: s.clock()})
	if err != nil {
		return TemplateView{}, fmt.Errorf("put template %s: %w", n, err)
	}
	return TemplateView{Name: n, Template: t}, nil
}

// ResetTemplate drops the project's override. Errors: template_not_found (404).
func (s *Service) ResetTemplate(ctx context.Context, projectID, name string) (TemplateView, error) {
	n, err := templateNameOf(name)
	if err != nil {
		return TemplateView{}, err
	}
	if err := s.d.Store.DeleteTemplate(ctx, projectID, string(n)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return TemplateView{}, fmt.Errorf("delete template %s: %w", n, err)
	}
	def, _ := notify.DefaultTemplate(n)
	return TemplateView{Name: n, Default: true, Template: def}, nil
}

func templateNameOf(name string) (notify.TemplateName, error) {
	n, err := notify.ParseTemplateName(name)
	if err != nil {
		return "", failure.New(failure.NotFound, "template_not_found", "no template %q (magic_link, email_otp, sms_otp, password_reset)", name)
	}
	return n, nil
}
