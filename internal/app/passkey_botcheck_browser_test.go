package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey-dev/latchkey/internal/project"
)

// TestPasskeyPageSolvesTheBotCheck forces bot_check "always" and signs in with an email code on
// the server's own page in headless Chromium: the page must solve the proof of work itself (in
// the page, under its strict CSP) rather than show the server's bot_check_required message.
func TestPasskeyPageSolvesTheBotCheck(t *testing.T) {
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	a, base, mail, reqs := startBrowserApp(t)

	iss, err := a.Projects().Create(ctx, project.NewProject{Name: "Bot check browser test"})
	if err != nil {
		t.Fatal(err)
	}
	patch, err := http.NewRequestWithContext(ctx, "PATCH", base+"/api/v1/project",
		strings.NewReader(`{"settings":{"protect":{"bot_check":"always"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	patch.Header.Set("X-Client-Secret", iss.ClientSecret)
	patch.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(patch)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("PATCH bot_check always: %v %v", res, err)
	}
	res.Body.Close()

	b := newChromiumTest(t, ctx, chromium, reqs)

	const email = "ada@example.com"
	b.do("open the page", chromedp.Navigate(base+"/login/passkey?client_id="+iss.Project.ClientID))
	b.do("wait for the sign-in form", chromedp.WaitVisible(chromedp.ID("email")))
	b.do("ask for a code", chromedp.SendKeys(chromedp.ID("email"), email), chromedp.Click(chromedp.ID("send-code")))
	code := b.codeFrom(mail, email)
	b.do("enter the code",
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.ID("verify-code")),
	)
	b.waitFor("signed in by email code", signedInAs(email))
	sends := reqs.matching("POST", "/api/v1/auth/passwordless/email-otp/send")
	challenges := reqs.matching("GET", "/api/v1/protect/challenge")
	if len(sends) != 2 || sends[0].status != 403 || sends[1].status != 200 || len(challenges) != 1 {
		t.Errorf("sends %+v, challenges %+v: want a refused send, one challenge, then an accepted send", sends, challenges)
	}
	b.screenshot("passkey-page-bot-check")
}
