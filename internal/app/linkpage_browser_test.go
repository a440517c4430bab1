package app_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey-dev/latchkey/internal/browsertest"
	"github.com/latchkey-dev/latchkey/internal/project"
)

// magicLinkRE finds the magic link in an email of the browser test's server.
var magicLinkRE = regexp.MustCompile(`http://localhost:\d+/api/v1/auth/passwordless/magic-link/verify\?[^\s"<]+`)

// cspReports reads a page's CSP violations (browsertest.CSPReports).
const cspReports = browsertest.CSPReports

// TestMagicLinkPagesInChromium opens the pages an emailed magic link leads to in headless
// Chromium: the confirmation page of a good link and the error page of a used one. Each
// renders its message with no CSP violation and no console error, and is kept as a screenshot.
func TestMagicLinkPagesInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	a, base, mail, reqs := startBrowserApp(t)
	iss, err := a.Projects().Create(ctx, project.NewProject{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	b := newChromiumTest(t, ctx, chromium, reqs)

	// The detector itself: an inline script on a page under a strict CSP is one violation.
	b.do("open a page", chromedp.Navigate(base+"/healthz"))
	violations, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`(() => {
		const s = document.createElement("script"); s.textContent = "1"; document.head.append(s);
		return true;
	})() && `+cspReports))
	if err != nil || len(violations) == 0 {
		t.Fatalf("the CSP check saw %q (%v) after a blocked inline script, want a violation", violations, err)
	}

	status, body := call(t, "POST", base+"/api/v1/auth/passwordless/magic-link/send?client_id="+iss.Project.ClientID,
		`{"email":"ada@example.com"}`, map[string]string{"Content-Type": "application/json"})
	if status != http.StatusOK {
		t.Fatalf("send a magic link: %d %s", status, body)
	}
	var link string
	select {
	case m := <-mail.ch:
		link = magicLinkRE.FindString(m.Text)
	case <-ctx.Done():
		t.Fatal("no magic link was sent")
	}
	if link == "" {
		t.Fatal("no magic link in the email")
	}

	for _, c := range []struct {
		name, want, shot string
		status           int
	}{
		{"a good link", "You are signed in", "magic-link-signed-in.png", http.StatusOK},
		{"the same link again", "This link cannot be used", "magic-link-error.png", http.StatusNotFound},
	} {
		b.tab.Unexpected() // forget what the previous page said
		b.do("open "+c.name, chromedp.Navigate(link))
		if got := b.text("the page's heading", chromedp.CSS("h1")); got != c.want {
			t.Errorf("%s: heading %q, want %q", c.name, got, c.want)
		}
		opened := reqs.matching("GET", "/api/v1/auth/passwordless/magic-link/verify")
		if len(opened) == 0 || opened[len(opened)-1].status != c.status {
			t.Errorf("%s: the page answered %+v, want status %d", c.name, opened, c.status)
		}
		violations, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](cspReports))
		if err != nil || len(violations) != 0 {
			t.Errorf("%s: CSP violations %q (%v), want none", c.name, violations, err)
		}
		// Chromium reports an error page's own status on the console; nothing else may appear.
		ownStatus := fmt.Sprintf("Failed to load resource: the server responded with a status of %d", c.status)
		console := b.tab.Unexpected(ownStatus)
		if len(console) != 0 {
			t.Errorf("%s: console messages, want none:\n%s", c.name, strings.Join(console, "\n"))
		}
		b.screenshot(c.shot)
	}
}
