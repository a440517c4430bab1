package notify_test

import (
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/notify"
)

var allTemplates = []notify.TemplateName{notify.MagicLink, notify.EmailOTP, notify.SMSOTP, notify.PasswordReset, notify.SecurityNotice}

var data = notify.TemplateData{
	Code:   "482913",
	Link:   "https://auth.acme.test/api/v1/auth/passwordless/magic-link/verify?client_id=c1&magictext=AbC-123_xyz&state=f1",
	Expiry: "15 minutes",
	Brand:  "Acme",
	Email:  "jane@example.com",
}

func TestParseTemplateName(t *testing.T) {
	for _, n := range allTemplates {
		got, err := notify.ParseTemplateName(string(n))
		if err != nil || got != n {
			t.Errorf("ParseTemplateName(%q) = %q, %v", n, got, err)
		}
	}
	for _, s := range []string{"", "MAGIC_LINK", "phone_otp", "magic_link "} {
		if _, err := notify.ParseTemplateName(s); err == nil {
			t.Errorf("ParseTemplateName(%q) accepted", s)
		}
	}
	if _, ok := notify.DefaultTemplate("nope"); ok {
		t.Error("DefaultTemplate of an unknown name")
	}
}

func TestDefaultTemplatesValidateAndRender(t *testing.T) {
	for _, n := range allTemplates {
		tmpl, ok := notify.DefaultTemplate(n)
		if !ok {
			t.Fatalf("no default %s", n)
		}
		if err := tmpl.Validate(n); err != nil {
			t.Errorf("%s: default does not validate: %v", n, err)
		}
		subject, text, html, err := tmpl.Render(n, data)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		switch n {
		case notify.MagicLink:
			if subject != "Sign in to Acme" {
				t.Errorf("%s subject %q", n, subject)
			}
			// The text shows the link as it is; the HTML escapes it for the attribute.
			for part, body := range map[string]string{"text": text, "html": html} {
				for _, want := range []string{"15 minutes", "Acme", "jane@example.com"} {
					if !strings.Contains(body, want) {
						t.Errorf("%s %s lacks %q", n, part, want)
					}
				}
			}
			if !strings.Contains(text, data.Link) {
				t.Errorf("%s text lacks the link:\n%s", n, text)
			}
			if !strings.Contains(html, `href="`+strings.ReplaceAll(data.Link, "&", "&amp;")+`"`) {
				t.Errorf("%s html lacks the link:\n%s", n, html)
			}
		case notify.EmailOTP:
			if strings.Contains(subject, data.Code) || !strings.Contains(subject, "Acme") {
				t.Errorf("%s subject %q (the code stays out of the subject)", n, subject)
			}
			for part, body := range map[string]string{"text": text, "html": html} {
				for _, want := range []string{data.Code, "15 minutes", "Acme"} {
					if !strings.Contains(body, want) {
						t.Errorf("%s %s lacks %q", n, part, want)
					}
				}
			}
		case notify.SMSOTP:
			if subject != "" || html != "" {
				t.Errorf("%s renders subject %q html %q", n, subject, html)
			}
			if want := "482913 is your Acme code. It expires in 15 minutes."; text != want {
				t.Errorf("%s text %q, want %q", n, text, want)
			}
		}
	}
}

func TestRenderEscapesHTMLOnly(t *testing.T) {
	tmpl, _ := notify.DefaultTemplate(notify.MagicLink)
	d := data
	d.Brand = `<script>alert("x")</script>`
	subject, text, html, err := tmpl.Render(notify.MagicLink, d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("html does not escape the brand:\n%s", html)
	}
	// Subject and text are not HTML: escaping them would show entities to the reader.
	if !strings.Contains(subject, "<script>") || !strings.Contains(text, "<script>") {
		t.Errorf("subject %q / text escaped", subject)
	}

	d = data
	d.Link = "javascript:alert(1)"
	if _, _, html, err = tmpl.Render(notify.MagicLink, d); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, `href="javascript:`) {
		t.Errorf("html links a javascript: URL:\n%s", html)
	}
}

// Data cannot add a header: a line break in the subject becomes a space.
func TestRenderMendsLineBreaksInSubject(t *testing.T) {
	tmpl, _ := notify.DefaultTemplate(notify.EmailOTP)
	d := data
	d.Brand = "Acme\r\nBcc: evil@example.com"
	subject, _, _, err := tmpl.Render(notify.EmailOTP, d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(subject, "\r\n") {
		t.Fatalf("subject %q", subject)
	}
}

func TestValidateRefuses(t *testing.T) {
	email := notify.Template{Subject: "Your {{.brand}} code", Text: "Use {{.code}} within {{.expiry}}.", HTML: "<p>Use <b>{{.code}}</b></p>"}
	if err := email.Validate(notify.EmailOTP); err != nil {
		t.Fatalf("a good template: %v", err)
	}
	for _, tc := range []struct {
		name string
		tn   notify.TemplateName
		mod  func(*notify.Template)
		want string // the error starts with the part's name
	}{
		{"unknown function in html", notify.EmailOTP, func(t *notify.Template) { t.HTML = `<p>{{x .code}}</p>` }, `html: template: html:1: function "x" not defined`},
		{"unknown function in text", notify.EmailOTP, func(t *notify.Template) { t.Text = "{{.code | nosuchfunc}}" }, `text: template: text:1: function "nosuchfunc" not defined`},
		{"unclosed action", notify.EmailOTP, func(t *notify.Template) { t.Text = "{{.code" }, "text: template: text:1:"},
		{"field syntax", notify.EmailOTP, func(t *notify.Template) { t.Subject = "{{.brand.}}" }, "subject: template: subject:1:"},
		{"unknown key", notify.EmailOTP, func(t *notify.Template) { t.Text = "{{.codee}}" }, `text: template: text:1:2: executing "text" at <.codee>: map has no entry for key "codee"`},
		{"method on data", notify.EmailOTP, func(t *notify.Template) { t.HTML = "{{.code.Len}}" }, "html: "},
		{"html unclosed tag context", notify.EmailOTP, func(t *notify.Template) { t.HTML = `<a href="{{.link}}` }, "html: "},
		{"subject with newline", notify.EmailOTP, func(t *notify.Template) { t.Subject = "Code\nBcc: evil@example.com" }, "subject: contains a line break"},
		{"subject rendering a newline", notify.EmailOTP, func(t *notify.Template) { t.Subject = `Code{{"\n"}}Bcc: x@example.com` }, "subject: renders with a line break"},
		{"subject over 255 bytes", notify.EmailOTP, func(t *notify.Template) { t.Subject = strings.Repeat("x", 250) + "{{.brand}}" }, "subject: renders to more than 255 bytes"},
		{"text over 64 KiB", notify.EmailOTP, func(t *notify.Template) { t.Text = strings.Repeat("x", 64<<10+1) }, "text: template is 65537 bytes"},
		{"html rendering over 64 KiB", notify.EmailOTP, func(t *notify.Template) {
			t.HTML = strings.Repeat(`{{printf "%060000d" 1}}`, 2)
		}, "html: renders to more than 65536 bytes"},
		{"range loop", notify.EmailOTP, func(t *notify.Template) { t.Text = "{{range 1000000000}}{{end}}" }, "text: template: text:1:8: {{range}} is not allowed"},
		{"range in a redefined root", notify.EmailOTP, func(t *notify.Template) { t.Text = `{{define "text"}}{{range 1000000000}}{{end}}{{end}}` }, "text: template: text:1:"},
		{"template call", notify.EmailOTP, func(t *notify.Template) { t.HTML = `{{define "a"}}{{template "a"}}{{end}}{{template "a"}}` }, "html: template: "},
		{"empty subject", notify.EmailOTP, func(t *notify.Template) { t.Subject = " " }, "subject: is empty"},
		{"empty text", notify.MagicLink, func(t *notify.Template) { t.Text = "" }, "text: is empty"},
		{"sms with a subject", notify.SMSOTP, func(t *notify.Template) {}, "an sms template has only a text"},
		{"sms over 1600 characters", notify.SMSOTP, func(t *notify.Template) {
			t.Subject, t.HTML = "", ""
			t.Text = "{{.code}} " + strings.Repeat("é", 1600)
		}, "text: renders to 1607 characters, more than 1600 for an sms"},
		{"unknown template", "phone_otp", func(t *notify.Template) {}, `unknown template "phone_otp"`},
	} {
		bad := email
		tc.mod(&bad)
		err := bad.Validate(tc.tn)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %q, want it to start with %q", tc.name, err, tc.want)
		}
	}
}

func TestEmailTemplateWithoutHTML(t *testing.T) {
	tmpl := notify.Template{Subject: "Sign in to {{.brand}}", Text: "{{.link}}"}
	if err := tmpl.Validate(notify.MagicLink); err != nil {
		t.Fatal(err)
	}
	_, text, html, err := tmpl.Render(notify.MagicLink, data)
	if err != nil || text != data.Link || html != "" {
		t.Fatalf("text %q html %q err %v", text, html, err)
	}
}

// The parsed defaults are shared; rendering them at once must be safe (run with -race).
func TestRenderConcurrently(t *testing.T) {
	done := make(chan error)
	for range 8 {
		go func() {
			var err error
			for _, n := range allTemplates {
				tmpl, _ := notify.DefaultTemplate(n)
				if _, _, _, e := tmpl.Render(n, data); e != nil {
					err = e
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func BenchmarkRenderEmailOTP(b *testing.B) {
	tmpl, _ := notify.DefaultTemplate(notify.EmailOTP)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := tmpl.Render(notify.EmailOTP, data); err != nil {
			b.Fatal(err)
		}
	}
}

// A project's own template is parsed at every render; this is the cost of an override.
func BenchmarkRenderCustomEmailOTP(b *testing.B) {
	def, _ := notify.DefaultTemplate(notify.EmailOTP)
	tmpl := notify.Template{Subject: def.Subject + " ", Text: def.Text + " ", HTML: def.HTML + " "}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := tmpl.Render(notify.EmailOTP, data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEmailsCarryTheProjectsBranding: the HTML emails show the project's logo and use its
// primary colour for their button, as the hosted login page does; without branding they keep
// the neutral look. A value that is no colour cannot leave the style attribute.
func TestEmailsCarryTheProjectsBranding(t *testing.T) {
	d := data
	d.LogoURL, d.Color = "https://cdn.acme.test/logo.png", "#c0ffee"
	for _, n := range []notify.TemplateName{notify.MagicLink, notify.EmailOTP, notify.PasswordReset, notify.SecurityNotice} {
		tmpl, _ := notify.DefaultTemplate(n)
		_, _, html, err := tmpl.Render(n, d)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if !strings.Contains(html, `<img src="https://cdn.acme.test/logo.png" alt="Acme"`) {
			t.Errorf("%s: no logo in\n%s", n, html)
		}
		_, _, plain, _ := tmpl.Render(n, data)
		if strings.Contains(plain, "<img") {
			t.Errorf("%s: a logo without branding", n)
		}
		if n == notify.MagicLink || n == notify.PasswordReset {
			if !strings.Contains(html, "background:#c0ffee;") {
				t.Errorf("%s: button not in the brand colour:\n%s", n, html)
			}
			if !strings.Contains(plain, "background:#1f6feb;") {
				t.Errorf("%s: default button colour lost", n)
			}
		}
	}
	tmpl, _ := notify.DefaultTemplate(notify.MagicLink)
	d.Color = `red;}</style><script>alert(1)</script>`
	_, _, html, err := tmpl.Render(notify.MagicLink, d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "<script>") || strings.Contains(html, "alert(1)") {
		t.Errorf("a hostile colour escaped its attribute:\n%s", html)
	}
}
