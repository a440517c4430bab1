package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key into dir and returns the
// files and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "latchkey e2e"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// startTLSServer is startServer for a server that terminates TLS: it waits until /healthz
// answers over HTTPS with client, and its base URL is https://.
func startTLSServer(t *testing.T, client *http.Client, args ...string) *server {
	t.Helper()
	s := launchServer(t, nil, args...)
	s.base = "https://" + s.addr()
	s.waitHealthy(client)
	return s
}

// TestServeTLS runs "latchkey serve --tls-cert --tls-key" with a self-signed certificate: it
// answers over HTTPS (TLS 1.2 and later only) with HSTS, refuses plain HTTP on its port, and a
// plain-HTTP server sends no HSTS.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}}
	t.Cleanup(client.CloseIdleConnections)

	s := startTLSServer(t, client, "--data-dir", filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.Contains(s.stderr.String(), "public_url=https://127.0.0.1:") {
		t.Errorf("the default public URL is not https:\n%s", s.stderr.String())
	}

	resp, err := client.Get(s.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("/healthz over HTTPS: %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=63072000; includeSubDomains" {
		t.Errorf("HSTS over TLS = %q", got)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2 by ALPN", resp.Proto)
	}

	// An untrusting client is refused the certificate; TLS 1.1 is refused by the server.
	if _, err := http.Get(s.base + "/healthz"); err == nil {
		t.Error("a client without the certificate's pool accepted it")
	}
	old := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
	}}}
	if resp, err := old.Get(s.base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("the server accepted TLS 1.1")
	}

	// Plain HTTP to the TLS port gets no answer from the application.
	plain := "http://" + strings.TrimPrefix(s.base, "https://")
	if resp, err := http.Get(plain + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the TLS port answered %d", resp.StatusCode)
		}
	}

	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}

	// Without TLS (and an http public URL), no HSTS.
	h := startServer(t, "--data-dir", filepath.Join(t.TempDir(), "data"))
	resp, err = http.Get(h.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); got != "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("plain HTTP: HSTS %q, nosniff %q", got, resp.Header.Get("X-Content-Type-Options"))
	}
}

// TestServeTLSRefusesBadFiles: half a TLS configuration, or files that are not a key pair, stop
// the server at startup with an error naming the settings.
func TestServeTLSRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	otherCert, _, _ := selfSigned(t, t.TempDir())
	data := filepath.Join(dir, "data")
	for name, args := range map[string][]string{
		"certificate without key": {"--tls-cert", certFile},
		"key without certificate": {"--tls-key", keyFile},
		"missing file":            {"--tls-cert", filepath.Join(dir, "nope.pem"), "--tls-key", keyFile},
		"mismatched pair":         {"--tls-cert", otherCert, "--tls-key", keyFile},
	} {
		_, stderr, code := runCLI(t, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", data}, args...)...)
		if code == 0 || !strings.Contains(stderr, "tls_cert") {
			t.Errorf("%s: exit %d:\n%s", name, code, stderr)
		}
		if strings.Contains(stderr, "latchkey listening") {
			t.Errorf("%s: the server started", name)
		}
	}
}
