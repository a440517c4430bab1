// Package browsertest holds what the headless-Chromium tests of several packages share: finding
// the browser (required under CI=true), reading a page's CSP violations, and keeping
// screenshots where CI collects them.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// Tab is one tab of a headless Chromium started for a test, and what its console said.
type Tab struct {
	// Ctx is the tab's chromedp context.
	Ctx     context.Context
	mu      sync.Mutex
	console []string
}

// Open starts Chromium (chromium is its path) with a fresh profile and a window of width×height
// and opens one tab, collecting its console; both end with the test. The allocator's cancel
// waits for Chromium to exit, so its profile directory (a t.TempDir) is no longer in use by then.
func Open(t testing.TB, ctx context.Context, chromium string, width, height int) *Tab {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height))
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil { // starts Chromium and opens the tab
		t.Fatalf("start %s: %v", chromium, err)
	}
	b := &Tab{Ctx: tab}
	messages := chromedp.Console(tab)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, fmt.Sprintf("%s: %s", m.Type, m))
			b.mu.Unlock()
		}
	}()
	return b
}

// Console returns what the console has said since it was last cleared.
func (b *Tab) Console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.console)
}

// Unexpected returns the console lines that contain none of allowed (all of them when none is
// given) and clears the console, so that each step of a test is judged on its own lines.
func (b *Tab) Unexpected(allowed ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, line := range b.console {
		if !slices.ContainsFunc(allowed, func(a string) bool { return strings.Contains(line, a) }) {
			out = append(out, line)
		}
	}
	b.console = nil
	return out
}
