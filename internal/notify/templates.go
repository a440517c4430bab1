package notify

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"
)

// TemplateName names one of the messages Latchkey sends.
type TemplateName string

// The templates a project can override.
const (
	MagicLink TemplateName = "magic_link" // email with a sign-in link
	EmailOTP  TemplateName = "email_otp"  // email with a one-time code
	SMSOTP    TemplateName = "sms_otp"    // SMS with a one-time code
	// PasswordReset is an email with a link to choose a new password.
	PasswordReset TemplateName = "password_reset"
	// SecurityNotice tells a user that a way of signing in to their account changed.
	SecurityNotice TemplateName = "security_notice"
)

// Template is a message's source: Go templates for the subject and text (text/template) and
// the HTML part (html/template). SMS templates use only Text; an email's HTML may be empty
// for a text-only email.
type Template struct {
	Subject string
	Text    string
	HTML    string
}

// TemplateData is what a template can show. Templates see it as {{.code}}, {{.link}},
// {{.expiry}}, {{.brand}}, {{.email}}, {{.change}}, {{.logo_url}} and {{.color}}: lower-case keys
// of a map, so that a template reads the same as in SSOJet's dashboard and cannot reach Go
// methods.
type TemplateData struct {
	Code   string // the one-time code (email_otp, sms_otp)
	Link   string // the sign-in link (magic_link)
	Expiry string // how long the code or link is valid, e.g. "10 minutes"
	Brand  string // the project's display name
	Email  string // the recipient's address (email templates)
	Change string // what changed, a sentence (security_notice), e.g. "Your password was changed."
	// LogoURL and Color are the project's branding (an https logo, a hex primary colour), so that
	// its emails look like its login page; "" for none.
	LogoURL string
	Color   string
}

func (d TemplateData) values() map[string]string {
	return map[string]string{"code": d.Code, "link": d.Link, "expiry": d.Expiry, "brand": d.Brand, "email": d.Email,
		"change": d.Change, "logo_url": d.LogoURL, "color": d.Color}
}

// Limits on templates and on what they render. The subject limit keeps the header readable and
// within what mail systems accept; the body limit keeps a template from growing the outbox row
// and the message without bound; 1600 characters is the most an SMS provider takes.
const (
	maxSubjectBytes = 255
	maxBodyBytes    = 64 << 10
)

var defaultTemplates = map[TemplateName]Template{
	MagicLink: {
		Subject: "Sign in to {{.brand}}",
		Text: `Hello,

Use this link to sign in to {{.brand}}{{if .email}} as {{.email}}{{end}}:

{{.link}}

The link works once and expires in {{.expiry}}. If you did not ask to sign in, you can ignore this email.

{{.brand}}
`,
		HTML: `<!DOCTYPE html>
<html lang="en">
<body style="margin:0;padding:24px;background:#f4f5f7;font-family:Helvetica,Arial,sans-serif;color:#1f2328;">
<div style="max-width:480px;margin:0 auto;background:#ffffff;border:1px solid #e1e4e8;border-radius:8px;padding:32px;">
{{if .logo_url}}<img src="{{.logo_url}}" alt="{{.brand}}" height="40" style="display:block;height:40px;margin:0 0 16px;">{{end}}
<h1 style="margin:0 0 16px;font-size:20px;">Sign in to {{.brand}}</h1>
<p style="margin:0 0 24px;font-size:15px;line-height:1.5;">Use the button below to sign in{{if .email}} as <strong>{{.email}}</strong>{{end}}. The link works once and expires in {{.expiry}}.</p>
<p style="margin:0 0 24px;"><a href="{{.link}}" style="display:inline-block;padding:12px 20px;background:{{if .color}}{{.color}}{{else}}#1f6feb{{end}};color:#ffffff;text-decoration:none;border-radius:6px;font-weight:bold;">Sign in</a></p>
<p style="margin:0 0 8px;font-size:13px;color:#57606a;">Or paste this link into your browser:</p>
<p style="margin:0 0 24px;font-size:13px;word-break:break-all;"><a href="{{.link}}" style="color:#1f6feb;">{{.link}}</a></p>
<p style="margin:0;font-size:13px;color:#57606a;">If you did not ask to sign in, you can ignore this email.</p>
</div>
</body>
</html>
`,
	},
	EmailOTP: {
		// The code stays out of the subject, which lock screens and notifications show.
		Subject: "Your {{.brand}} sign-in code",
		Text: `Your {{.brand}} sign-in code is:

{{.code}}

It expires in {{.expiry}}. Do not share it with anyone. If you did not ask for this code, you can ignore this email.

{{.brand}}
`,
		HTML: `<!DOCTYPE html>
<html lang="en">
<body style="margin:0;padding:24px;background:#f4f5f7;font-family:Helvetica,Arial,sans-serif;color:#1f2328;">
<div style="max-width:480px;margin:0 auto;background:#ffffff;border:1px solid #e1e4e8;border-radius:8px;padding:32px;">
{{if .logo_url}}<img src="{{.logo_url}}" alt="{{.brand}}" height="40" style="display:block;height:40px;margin:0 0 16px;">{{end}}
<h1 style="margin:0 0 16px;font-size:20px;">Your {{.brand}} sign-in code</h1>
<p style="margin:0 0 24px;font-size:32px;font-weight:bold;letter-spacing:6px;font-family:Menlo,Consolas,monospace;">{{.code}}</p>
<p style="margin:0 0 24px;font-size:15px;line-height:1.5;">It expires in {{.expiry}}. Do not share it with anyone.</p>
<p style="margin:0;font-size:13px;color:#57606a;">If you did not ask for this code, you can ignore this email.</p>
</div>
</body>
</html>
`,
	},
	SMSOTP: {
		Text: "{{.code}} is your {{.brand}} code. It expires in {{.expiry}}.",
	},
	SecurityNotice: {
		Subject: "A change to your {{.brand}} account",
		Text: `Hello,

{{.change}}

If it was you, there is nothing to do. If it was not, reset your password or contact {{.brand}} at once: someone else may be able to sign in as you{{if .email}} ({{.email}}){{end}}.

{{.brand}}
`,
		HTML: `<!DOCTYPE html>
<html lang="en">
<body style="margin:0;padding:24px;background:#f4f5f7;font-family:Helvetica,Arial,sans-serif;color:#1f2328;">
<div style="max-width:480px;margin:0 auto;background:#ffffff;border:1px solid #e1e4e8;border-radius:8px;padding:32px;">
{{if .logo_url}}<img src="{{.logo_url}}" alt="{{.brand}}" height="40" style="display:block;height:40px;margin:0 0 16px;">{{end}}
<h1 style="margin:0 0 16px;font-size:20px;">A change to your {{.brand}} account</h1>
<p style="margin:0 0 24px;font-size:15px;line-height:1.5;">{{.change}}</p>
<p style="margin:0;font-size:13px;color:#57606a;">If it was you, there is nothing to do. If it was not, reset your password or contact {{.brand}} at once: someone else may be able to sign in as you{{if .email}} ({{.email}}){{end}}.</p>
</div>
</body>
</html>
`,
	},
	PasswordReset: {
		Subject: "Reset your {{.brand}} password",
		Text: `Hello,

Someone asked to reset the {{.brand}} password{{if .email}} of {{.email}}{{end}}. To choose a new one, open this link:

{{.link}}

The link works once and expires in {{.expiry}}. If you did not ask for this, ignore this email: your password stays as it is.

{{.brand}}
`,
		HTML: `<!DOCTYPE html>
<html lang="en">
<body style="margin:0;padding:24px;background:#f4f5f7;font-family:Helvetica,Arial,sans-serif;color:#1f2328;">
<div style="max-width:480px;margin:0 auto;background:#ffffff;border:1px solid #e1e4e8;border-radius:8px;padding:32px;">
{{if .logo_url}}<img src="{{.logo_url}}" alt="{{.brand}}" height="40" style="display:block;height:40px;margin:0 0 16px;">{{end}}
<h1 style="margin:0 0 16px;font-size:20px;">Reset your {{.brand}} password</h1>
<p style="margin:0 0 24px;font-size:15px;line-height:1.5;">Someone asked to reset the password{{if .email}} of <strong>{{.email}}</strong>{{end}}. The link works once and expires in {{.expiry}}.</p>
<p style="margin:0 0 24px;"><a href="{{.link}}" style="display:inline-block;padding:12px 20px;background:{{if .color}}{{.color}}{{else}}#1f6feb{{end}};color:#ffffff;text-decoration:none;border-radius:6px;font-weight:bold;">Choose a new password</a></p>
<p style="margin:0 0 8px;font-size:13px;color:#57606a;">Or paste this link into your browser:</p>
<p style="margin:0 0 24px;font-size:13px;word-break:break-all;"><a href="{{.link}}" style="color:#1f6feb;">{{.link}}</a></p>
<p style="margin:0;font-size:13px;color:#57606a;">If you did not ask for this, ignore this email: your password stays as it is.</p>
</div>
</body>
</html>
`,
	},
}

// DefaultTemplate returns the built-in template for name.
func DefaultTemplate(name TemplateName) (Template, bool) {
	t, ok := defaultTemplates[name]
	return t, ok
}

// ParseTemplateName returns the template name s, or an error if there is no such template.
func ParseTemplateName(s string) (TemplateName, error) {
	if _, ok := defaultTemplates[TemplateName(s)]; !ok {
		return "", fmt.Errorf("unknown template %q (want magic_link, email_otp, sms_otp, password_reset or security_notice)", s)
	}
	return TemplateName(s), nil
}

func (n TemplateName) channel() Channel {
	if n == SMSOTP {
		return SMS
	}
	return Email
}

// sampleData is what Validate renders with: realistic lengths, so that a template that passes
// also fits its limits with real data.
var sampleData = TemplateData{
	Code:    "123456",
	Link:    "https://auth.example.com/api/v1/auth/passwordless/magic-link/verify?client_id=5f1c2a7e9b3d4c6a8e0f1a2b&magictext=Qm9vdHN0cmFwU2VjcmV0VmFsdWVGb3JTYW1wbGVzMDE&state=65f1c2a7e9b3d4c6a8e0f1a2",
	Expiry:  "10 minutes",
	Brand:   "Example Inc",
	Email:   "jane.doe@example.com",
	Change:  "An authenticator app was added to your account on 29 November 2026 at 10:00 UTC.",
	LogoURL: "https://cdn.example.com/brand/example-inc/logo-dark-2x.png",
	Color:   "#4f46e5",
}

// Validate reports whether t can serve as template name: Subject and Text parse with
// text/template and HTML with html/template, and each executes with sample data. An error names
// the part, e.g. `html: template: html:1: function "x" not defined`.
//
// Limits: the subject renders to at most 255 bytes and holds no line break (a line break would
// let the template write headers of its own); each body renders to at most 64 KiB; an SMS
// renders to at most 1600 characters. An email template needs a Subject and a Text; an SMS
// template has only a Text. Templates may use {{if}} and {{with}} but not {{range}} or
// {{template}}: without loops or calls, rendering takes time in proportion to the template's
// length, so a project's template cannot stall the login flow that renders it.
func (t Template) Validate(name TemplateName) error {
	if _, ok := defaultTemplates[name]; !ok {
		return fmt.Errorf("unknown template %q", name)
	}
	if strings.TrimSpace(t.Text) == "" {
		return errors.New("text: is empty")
	}
	if name.channel() == SMS {
		if t.Subject != "" || t.HTML != "" {
			return errors.New("an sms template has only a text; subject and html must be empty")
		}
	} else if strings.TrimSpace(t.Subject) == "" {
		return errors.New("subject: is empty")
	}
	for _, p := range []struct{ part, src string }{{"subject", t.Subject}, {"text", t.Text}, {"html", t.HTML}} {
		if len(p.src) > maxBodyBytes {
			return fmt.Errorf("%s: template is %d bytes, more than %d", p.part, len(p.src), maxBodyBytes)
		}
	}
	if strings.ContainsAny(t.Subject, "\r\n") {
		return errors.New("subject: contains a line break")
	}
	_, _, _, err := t.render(name, sampleData, true)
	return err
}

// Render executes t with d and returns the message's parts; an SMS has only text. The HTML part
// escapes the data for its context (html/template); the subject and text, which are not HTML,
// show it as it is. Line breaks that data brings into the subject become spaces, so that no
// value can add a header. Render applies Validate's limits and fails if a part exceeds them.
func (t Template) Render(name TemplateName, d TemplateData) (subject, text, html string, err error) {
	if _, ok := defaultTemplates[name]; !ok {
		return "", "", "", fmt.Errorf("unknown template %q", name)
	}
	return t.render(name, d, false)
}

// render does Render's work; strict (Validate) refuses a rendered subject with a line break
// instead of mending it.
func (t Template) render(name TemplateName, d TemplateData, strict bool) (subject, text, html string, err error) {
	data := d.values()
	text, err = executePart(name, "text", t.Text, data, maxBodyBytes)
	if err != nil {
		return "", "", "", err
	}
	if name.channel() == SMS {
		if n := utf8.RuneCountInString(text); n > maxSMSChars {
			return "", "", "", fmt.Errorf("text: renders to %d characters, more than %d for an sms", n, maxSMSChars)
		}
		return "", text, "", nil
	}
	if subject, err = executePart(name, "subject", t.Subject, data, maxSubjectBytes); err != nil {
		return "", "", "", err
	}
	if strings.ContainsAny(subject, "\r\n") {
		if strict {
			return "", "", "", errors.New("subject: renders with a line break")
		}
		subject = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(subject)
	}
	if t.HTML != "" {
		if html, err = executePart(name, "html", t.HTML, data, maxBodyBytes); err != nil {
			return "", "", "", err
		}
	}
	return subject, text, html, nil
}

// executor is a parsed text/template or html/template.
type executor interface {
	Execute(w io.Writer, data any) error
}

func parseText(part, src string) (executor, error) {
	tmpl, err := template.New(part).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", part, err)
	}
	if err := checkTree(tmpl.Tree); err != nil {
		return nil, fmt.Errorf("%s: %w", part, err)
	}
	return tmpl, nil
}

func parseHTML(part, src string) (executor, error) {
	tmpl, err := htmltemplate.New(part).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", part, err)
	}
	if err := checkTree(tmpl.Tree); err != nil {
		return nil, fmt.Errorf("%s: %w", part, err)
	}
	return tmpl, nil
}

// parsedDefaults holds the built-in templates parsed once: parsing (and html/template's
// escaping pass, done at the first Execute) is about 90% of a render's cost, and most projects
// keep the defaults. The parsed templates are never changed after init and are safe for
// concurrent use.
var parsedDefaults = func() map[TemplateName][3]executor {
	out := map[TemplateName][3]executor{}
	for name, t := range defaultTemplates {
		var p [3]executor
		var err error
		if t.Subject != "" {
			if p[0], err = parseText("subject", t.Subject); err != nil {
				panic(err)
			}
		}
		if p[1], err = parseText("text", t.Text); err != nil {
			panic(err)
		}
		if t.HTML != "" {
			if p[2], err = parseHTML("html", t.HTML); err != nil {
				panic(err)
			}
		}
		out[name] = p
	}
	return out
}()

// executePart renders one part of template name from src, using the parsed default when src
// is the default's source.
func executePart(name TemplateName, part, src string, data map[string]string, limit int) (string, error) {
	def, parsed := defaultTemplates[name], parsedDefaults[name]
	var tmpl executor
	switch {
	case part == "subject" && src == def.Subject:
		tmpl = parsed[0]
	case part == "text" && src == def.Text:
		tmpl = parsed[1]
	case part == "html" && src == def.HTML:
		tmpl = parsed[2]
	}
	if tmpl == nil {
		var err error
		if part == "html" {
			tmpl, err = parseHTML(part, src)
		} else {
			tmpl, err = parseText(part, src)
		}
		if err != nil {
			return "", err
		}
	}
	return execute(part, tmpl.Execute, data, limit)
}

var errTooLong = errors.New("output limit reached")

func execute(part string, exec func(w io.Writer, data any) error, data map[string]string, limit int) (string, error) {
	w := &limitedBuffer{limit: limit}
	if err := exec(w, data); err != nil {
		if errors.Is(err, errTooLong) {
			return "", fmt.Errorf("%s: renders to more than %d bytes", part, limit)
		}
		return "", fmt.Errorf("%s: %w", part, err)
	}
	return w.buf.String(), nil
}

// limitedBuffer fails a write that would take it past limit, which stops the template at once
// instead of after it has built a huge string.
type limitedBuffer struct {
	buf   bytes.Buffer
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.limit {
		return 0, errTooLong
	}
	return b.buf.Write(p)
}

// checkTree refuses the actions that could make rendering slow: {{range}} loops (a template
// can range over an integer) and {{template}} calls (which can recurse).
func checkTree(tree *parse.Tree) error {
	if tree == nil || tree.Root == nil {
		return nil
	}
	var walk func(n parse.Node) error
	walk = func(n parse.Node) error {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Nodes {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *parse.IfNode:
			return walkBranch(walk, &n.BranchNode)
		case *parse.WithNode:
			return walkBranch(walk, &n.BranchNode)
		case *parse.RangeNode:
			loc, _ := tree.ErrorContext(n)
			return fmt.Errorf("template: %s: {{range}} is not allowed", loc)
		case *parse.TemplateNode:
			loc, _ := tree.ErrorContext(n)
			return fmt.Errorf("template: %s: {{template}} is not allowed", loc)
		}
		return nil
	}
	return walk(tree.Root)
}

func walkBranch(walk func(parse.Node) error, b *parse.BranchNode) error {
	if err := walk(b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return walk(b.ElseList)
	}
	return nil
}
