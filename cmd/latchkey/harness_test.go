package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/secretbox"
)

// binary is the latchkey executable built once for this package's tests.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "latchkey-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "latchkey")
	// The test build reads LATCHKEY_TEST_CLOCK_FILE (testclock.go), so that tests move the
	// servers' time instead of sleeping.
	build := exec.Command(goTool(), "build", "-tags", "latchkey_testclock", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build latchkey: %v\n", err)
		return 1
	}
	return m.Run()
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// cleanEnv is the test process's environment without LATCHKEY_* settings, so that a developer's
// own configuration cannot leak into the binary under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCHKEY_") {
			env = append(env, kv)
		}
	}
	return env
}

// runCLI runs the binary to completion and returns its output and exit code.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run latchkey %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// runOK runs the binary and fails the test unless it exits 0.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("latchkey %v exited %d:\n%s", args, code, stderr)
	}
	return stdout
}

// server is a running "latchkey serve" process.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string // http://host:port
	stderr *logBuffer
	exited chan struct{}
	err    error // the result of Wait, once exited is closed
}

var listeningRE = regexp.MustCompile(`msg="latchkey listening" addr=(\S+)`)

// startServer starts "latchkey serve" on a free port with extra args and returns once /healthz
// answers. The process is killed when the test ends if it still runs.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	return startServerEnv(t, nil, args...)
}

// startServerEnv is startServer with extra environment variables (KEY=value) for the process.
func startServerEnv(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	return startServerIn(t, "", env, args...)
}

// startServerIn is startServerEnv with the process's working directory set to dir ("" for
// the test's own).
func startServerIn(t *testing.T, dir string, env []string, args ...string) *server {
	t.Helper()
	s := launchServerIn(t, dir, env, args...)
	s.base = "http://" + s.addr()
	s.waitHealthy(http.DefaultClient)
	return s
}

// launchServer starts "latchkey serve" on a free port and returns once it logs the address it
// listens on; the process is killed when the test ends if it still runs.
func launchServer(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	return launchServerIn(t, "", env, args...)
}

// launchServerIn is launchServer with the process's working directory set to dir.
func launchServerIn(t *testing.T, dir string, env []string, args ...string) *server {
	t.Helper()
	s := &server{t: t, stderr: newLogBuffer(), exited: make(chan struct{})}
	s.cmd = exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, args...)...)
	s.cmd.Dir, s.cmd.Env, s.cmd.Stderr = dir, append(cleanEnv(), env...), s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start latchkey serve: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("latchkey serve stderr:\n%s", s.stderr.String())
		}
	})

	select {
	case <-s.stderr.listening:
	case <-s.exited:
		t.Fatalf("latchkey serve exited before listening (%v):\n%s", s.err, s.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("latchkey serve did not listen within a minute:\n%s", s.stderr.String())
	}
	return s
}

// addr is the host:port the server logged it listens on.
func (s *server) addr() string { return listeningRE.FindStringSubmatch(s.stderr.String())[1] }

// waitHealthy polls /healthz with client until it answers 200.
func (s *server) waitHealthy(client *http.Client) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("/healthz did not answer 200 within 30s (last error %v)", err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// stop sends sig and waits for the process to exit, returning its exit code (-1 when a signal
// killed it).
func (s *server) stop(sig syscall.Signal) int {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal latchkey serve: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		s.t.Fatalf("latchkey serve did not exit within a minute of %v", sig)
	}
	return s.cmd.ProcessState.ExitCode()
}

var (
	bootClientIDRE = regexp.MustCompile(`client_id:\s+(cli_[0-9a-f]{24})`)
	bootSecretRE   = regexp.MustCompile(`client_secret:\s+(sk_[A-Za-z0-9_-]{43})\b`)
)

// credentials returns the Default project's client id and secret printed on first start.
func (s *server) credentials() (clientID, secret string) {
	s.t.Helper()
	out := s.stderr.String()
	id, sec := bootClientIDRE.FindStringSubmatch(out), bootSecretRE.FindStringSubmatch(out)
	if id == nil || sec == nil {
		s.t.Fatalf("first start printed no Default project credentials:\n%s", out)
	}
	return id[1], sec[1]
}

// request sends a request with the client secret and returns the status and body.
func request(t *testing.T, client *http.Client, method, url, secret, body string) (int, string, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("x-client-secret", secret)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// logBuffer collects a process's stderr and tells when the listening line has appeared.
type logBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	listening chan struct{}
	seen      bool
}

func newLogBuffer() *logBuffer { return &logBuffer{listening: make(chan struct{})} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if !b.seen && listeningRE.Match(b.buf.Bytes()) {
		b.seen = true
		close(b.listening)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testClock is the time of the processes a test starts with its env: the system clock plus
// an offset that the test moves forward, through the file the test build reads.
type testClock struct {
	t      *testing.T
	path   string
	offset time.Duration
}

func newTestClock(t *testing.T) *testClock {
	t.Helper()
	c := &testClock{t: t, path: filepath.Join(t.TempDir(), "clock-offset")}
	c.write()
	return c
}

// env is the environment that puts a process on this clock.
func (c *testClock) env() []string { return []string{"LATCHKEY_TEST_CLOCK_FILE=" + c.path} }

// Advance moves every process on this clock forward by d.
func (c *testClock) Advance(d time.Duration) {
	c.offset += d
	c.write()
}

// Now is the time the processes on this clock see.
func (c *testClock) Now() time.Time { return time.Now().Add(c.offset) }

func (c *testClock) write() {
	// Write and rename, so that a process never reads a half-written offset.
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(c.offset.String()), 0o600); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		c.t.Fatal(err)
	}
}

// masterKeyArgs writes a fresh master key file and returns the flag that names it: PostgreSQL
// servers refuse to start without a configured key.
func masterKeyArgs(t *testing.T) []string {
	t.Helper()
	key, err := secretbox.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, []byte(secretbox.EncodeKey(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--master-key-file", path}
}
