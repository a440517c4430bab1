// Package browsertest holds what the headless-Chromium tests of several packages share: finding
// the browser (required under CI=true), reading a page's CSP violations, and keeping
// screenshots where CI collects them.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// CSPReports is evaluated in a page: the CSP violations it has seen (a buffered
// ReportingObserver hands over those from before it was made), as "directive blocked-url".
const CSPReports = `(() => {
	const o = new ReportingObserver(() => {}, {types: ["csp-violation"], buffered: true});
	o.observe();
	const out = o.takeRecords().map((r) => r.body.effectiveDirective + " " + r.body.blockedURL);
	o.disconnect();
	return out;
})()`

// ChromiumPath finds Chromium: the test is skipped when it is missing, and failed instead under
// CI=true, where every browser test must run.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is not installed and CI=true requires the browser test: run scripts/chromium.sh")
	}
	t.Skip("Chromium is not installed (scripts/chromium.sh installs it); skipping the browser test")
	return ""
}

// Screenshot saves the page of the chromedp context ctx as a PNG named name under
// $TEST_ARTIFACTS, or the test's temporary directory. A failure is reported, not fatal: the
// page's own checks matter more than its picture.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", path)
}
