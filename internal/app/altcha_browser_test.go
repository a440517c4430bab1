package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/project"
)

// altchaFixture is the npm project that pins the real ALTCHA widget (package.json and
// package-lock.json are committed; node_modules is not).
const altchaFixture = "testdata/altcha"

// TestAltchaWidgetSolvesOurChallenge checks the proof of work against the real ALTCHA widget
// (npm altcha, pinned in testdata/altcha) rather than against our own solver: in headless
// Chromium, a page under a strict nonce-based CSP loads the widget's ES module, the widget
// fetches GET /api/v1/protect/challenge and solves it in its Web Worker, and the page sends
// its payload to sign-up under bot_check "always", which must accept it. The same payload
// altered in any signed or hashed part, or sent again, is refused. Outside CI the test skips
// without Chromium, npm or the registry; under CI=true it fails instead
// (scripts/chromium.sh and scripts/node-deps.sh install what it needs).
func TestAltchaWidgetSolvesOurChallenge(t *testing.T) {
	chromium := chromiumPath(t)
	widget := altchaWidget(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	// The test's page and the widget's files are served beside the API, from the same origin,
	// so that the widget's requests are same-origin as on a page of the project's own. The
	// origin is localhost, not 127.0.0.1: the widget refuses to run outside a secure context,
	// and http://localhost is one.
	a, base, _, reqs := startBrowserApp(t, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /altcha-test/{$}", func(w http.ResponseWriter, r *http.Request) {
			nonce := httpserver.CSPNonce(r.Context())
			csp := httpserver.PagePolicy{Script: []string{httpserver.NonceSource}, Style: []string{httpserver.NonceSource},
				Connect: []string{"'self'"}}.CSP(nonce) + "; worker-src 'self'"
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			page := map[string]string{"Nonce": nonce, "ClientID": r.URL.Query().Get("client_id")}
			if err := altchaPage.Execute(w, page); err != nil {
				t.Errorf("render the test page: %v", err)
			}
		})
		for name, file := range map[string]string{
			"altcha.js":  "dist/external/altcha.js", // the bundle without inline styles or workers, for a strict CSP
			"altcha.css": "dist/external/altcha.css",
			"sha.js":     "dist/workers/sha.js",
		} {
			path := filepath.Join(widget, file)
			mux.HandleFunc("GET /altcha-test/"+name, func(w http.ResponseWriter, r *http.Request) {
				http.ServeFile(w, r, path)
			})
		}
	})
	iss, err := a.Projects().Create(ctx, project.NewProject{Name: "ALTCHA widget test"})
	if err != nil {
		t.Fatal(err)
	}
	clientID := iss.Project.ClientID

	api := func(method, path, body string, header map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		var e struct {
			Code string `json:"error_code"`
		}
		_ = json.NewDecoder(res.Body).Decode(&e)
		return res.StatusCode, e.Code
	}
	if status, code := api("PATCH", "/api/v1/project", `{"settings":{"login_methods":{"password":true},"protect":{"bot_check":"always"}}}`,
		map[string]string{"X-Client-Secret": iss.ClientSecret}); status != 200 {
		t.Fatalf("PATCH the project's settings: %d %s", status, code)
	}
	signup := func(email, payload string) (int, string) {
		t.Helper()
		return api("POST", "/api/v1/auth/password/signup?client_id="+clientID,
			fmt.Sprintf(`{"email":%q,"password":"correct horse battery staple"}`, email), map[string]string{"X-Altcha": payload})
	}

	b := newChromiumTest(t, ctx, chromium, reqs)
	tab := b.ctx

	b.do("open the page", chromedp.Navigate(base+"/altcha-test/?client_id="+clientID))
	b.waitFor("the widget has solved the challenge", `document.body.dataset.payload`)
	payload, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.body.dataset.payload`))
	if err != nil {
		b.fatalf("read the payload: %v", err)
	}
	violations, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`window.violations || []`))
	if err != nil || len(violations) != 0 {
		t.Errorf("the page's CSP blocked %q (%v), want nothing", violations, err)
	}
	if got := reqs.matching("GET", "/api/v1/protect/challenge"); len(got) != 1 || got[0].status != 200 {
		t.Errorf("challenge requests %+v, want one answered 200", got)
	}

	// Each signed or hashed part altered is refused, before the genuine payload is spent.
	var fields map[string]any
	if raw, err := base64.StdEncoding.DecodeString(payload); err != nil || json.Unmarshal(raw, &fields) != nil {
		t.Fatalf("the widget's payload %q is not base64 JSON: %v", payload, err)
	}
	number, ok := fields["number"].(float64)
	salt, _ := fields["salt"].(string)
	if !ok || fields["algorithm"] != "SHA-256" || !strings.Contains(salt, "?expires=") {
		t.Fatalf("the widget's payload %v: want a v1 payload (algorithm SHA-256, a number, our salt)", fields)
	}
	expires := salt[strings.Index(salt, "?expires=")+len("?expires=") : len(salt)-1]
	later, err := strconv.ParseInt(expires, 10, 64)
	if err != nil {
		t.Fatalf("expiry %q of the salt %q: %v", expires, salt, err)
	}
	for what, change := range map[string]func(map[string]any){
		"the next number":        func(f map[string]any) { f["number"] = number + 1 },
		"the number as a string": func(f map[string]any) { f["number"] = strconv.FormatFloat(number, 'f', -1, 64) },
		"a later expiry": func(f map[string]any) {
			f["salt"] = strings.Replace(salt, expires, strconv.FormatInt(later+3600, 10), 1)
		},
		"another signature":        func(f map[string]any) { f["signature"] = flipHex(f["signature"].(string)) },
		"another challenge":        func(f map[string]any) { f["challenge"] = flipHex(f["challenge"].(string)) },
		"the test flag":            func(f map[string]any) { f["test"] = true },
		"another algorithm":        func(f map[string]any) { f["algorithm"] = "SHA-1" },
		"no number":                func(f map[string]any) { delete(f, "number") },
		"the challenge upper-case": func(f map[string]any) { f["challenge"] = strings.ToUpper(f["challenge"].(string)) },
	} {
		altered := map[string]any{}
		for k, v := range fields {
			altered[k] = v
		}
		change(altered)
		raw, err := json.Marshal(altered)
		if err != nil {
			t.Fatal(err)
		}
		if status, code := signup("mallory@example.com", base64.StdEncoding.EncodeToString(raw)); status != 403 || code != "bot_check_failed" {
			t.Errorf("sign-up with the widget's payload and %s = %d %s, want 403 bot_check_failed", what, status, code)
		}
	}

	// The page sends the genuine payload, as a form of the project's would.
	b.do("send the sign-up", chromedp.Evaluate[chromedp.Void](`window.signUp("ada@example.com")`))
	b.waitFor("the sign-up is answered", `document.body.dataset.status`)
	status, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.body.dataset.status`))
	if err != nil {
		b.fatalf("read the sign-up's status: %v", err)
	}
	if status != "200" {
		b.fatalf("sign-up with the widget's payload answered %s, want 200", status)
	}
	// Spent: the same payload does not pass twice.
	if status, code := signup("bob@example.com", payload); status != 403 || code != "bot_check_failed" {
		t.Errorf("sign-up replaying the widget's payload = %d %s, want 403 bot_check_failed", status, code)
	}
	b.screenshot("altcha-widget-verified.png")
}

// altchaPage loads the widget's CSP build (its styles as a stylesheet, its SHA-256 worker as
// a file of this origin) and records the payload the widget posts in its "verified" event.
var altchaPage = template.Must(template.New("altcha").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ALTCHA widget test</title>
<script nonce="{{.Nonce}}">
// Whatever the policy blocks is recorded: the widget must work without loosening it.
document.addEventListener("securitypolicyviolation", (e) => {
	window.violations = (window.violations || []).concat(e.violatedDirective + " " + e.blockedURI);
});
</script>
<link rel="stylesheet" href="/altcha-test/altcha.css" nonce="{{.Nonce}}">
<script type="module" nonce="{{.Nonce}}" src="/altcha-test/altcha.js"></script>
<script type="module" nonce="{{.Nonce}}">
// The CSP build bundles no worker: each algorithm is registered with one.
globalThis.$altcha.algorithms.set("SHA-256", () => new Worker("/altcha-test/sha.js"));
const form = document.getElementById("signup");
const widget = document.createElement("altcha-widget");
widget.setAttribute("challenge", "/api/v1/protect/challenge?client_id={{.ClientID}}");
widget.setAttribute("auto", "onload");
widget.addEventListener("verified", (e) => { document.body.dataset.payload = e.detail.payload; });
// The harness's waitFor stops at once on an error message, rather than at its deadline.
widget.addEventListener("statechange", (e) => {
	if (e.detail.state !== "error") return;
	const m = document.getElementById("message");
	m.className = "error";
	m.textContent = "the widget failed to fetch or solve the challenge";
});
form.prepend(widget);
window.signUp = async (email) => {
	const res = await fetch("/api/v1/auth/password/signup?client_id={{.ClientID}}", {
		method: "POST",
		headers: {"Content-Type": "application/json", "X-Altcha": new FormData(form).get("altcha")},
		body: JSON.stringify({email, password: "correct horse battery staple"}),
	});
	document.body.dataset.status = String(res.status);
};
</script>
</head>
<body>
<form id="signup"></form>
<p id="message"></p>
</body>
</html>
`))

// flipHex changes the first hex digit of s.
func flipHex(s string) string {
	if s == "" {
		return "0"
	}
	c := byte('0')
	if s[0] == '0' {
		c = '1'
	}
	return string(c) + s[1:]
}

// altchaWidget returns the directory of the installed altcha package, running npm ci in the
// fixture when node_modules is missing or holds another version than package.json pins.
// Without npm, or when npm ci fails (no registry), the test is skipped, and under CI=true
// failed.
func altchaWidget(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(altchaFixture, "node_modules", "altcha")
	var pinned struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	var installed struct {
		Version string `json:"version"`
	}
	if b, err := os.ReadFile(filepath.Join(altchaFixture, "package.json")); err != nil || json.Unmarshal(b, &pinned) != nil ||
		pinned.Dependencies["altcha"] == "" {
		t.Fatalf("read the pinned altcha version from %s/package.json: %v", altchaFixture, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "package.json")); err == nil && json.Unmarshal(b, &installed) == nil &&
		installed.Version == pinned.Dependencies["altcha"] {
		return dir
	}
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format+"; CI=true requires the widget test: run scripts/node-deps.sh", args...)
		}
		t.Skipf(format+" (scripts/node-deps.sh installs it); skipping the widget test", args...)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		unavailable("npm is not installed")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = altchaFixture
	if out, err := cmd.CombinedOutput(); err != nil {
		unavailable("npm ci in %s: %v\n%s", altchaFixture, err, out)
	}
	return dir
}
