package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/secretbox"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestDefaultsAreValid(t *testing.T) {
	c := Load(env(nil))
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	kind, dsn, err := c.Database()
	if err != nil || kind != SQLite || dsn != filepath.Join("latchkey-data", "latchkey.db") {
		t.Fatalf("Database() = %q, %q, %v", kind, dsn, err)
	}
	if got := c.EffectivePublicURL(); got != "http://127.0.0.1:8080" {
		t.Errorf("public URL = %q", got)
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	c := Load(env(map[string]string{
		"LATCHKEY_ADDR":             "127.0.0.1:9000",
		"LATCHKEY_DATA_DIR":         "/from/env",
		"LATCHKEY_SHUTDOWN_TIMEOUT": "5s",
		"LATCHKEY_LOG_FORMAT":       "json",
	}))
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--addr", ":7000", "--public-url", "https://auth.example.com"}); err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":7000" || c.DataDir != "/from/env" || c.ShutdownTimeout != 5*time.Second ||
		c.LogFormat != "json" || c.PublicURL != "https://auth.example.com" {
		t.Fatalf("config = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDatabaseURLFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db-url")
	if err := os.WriteFile(path, []byte("postgres://u:p@db:5432/latchkey\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Load(env(map[string]string{"LATCHKEY_DATABASE_URL_FILE": path}))
	kind, dsn, err := c.Database()
	if err != nil || kind != Postgres || dsn != "postgres://u:p@db:5432/latchkey" {
		t.Fatalf("Database() = %q, %q, %v", kind, dsn, err)
	}

	both := Load(env(map[string]string{"LATCHKEY_DATABASE_URL_FILE": path, "LATCHKEY_DATABASE_URL": "postgres://x/y"}))
	if err := both.Validate(); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("both set: %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Load(env(map[string]string{"LATCHKEY_SHUTDOWN_TIMEOUT": "soon"}))
	c.Addr = "nonsense"
	c.DatabaseURL = "mysql://root:hunter2@db/x"
	c.PublicURL = "ftp://auth.example.com/?x=1"
	c.LogLevel = "loud"
	c.LogFormat = "xml"
	c.KeyCacheTTL = time.Hour
	c.TrustedProxies = "10.0.0.0/8, proxy.internal"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	msg := err.Error()
	for _, name := range []string{"shutdown_timeout", "addr:", "database_url:", "public_url:", "log_level:", "log_format:", "key_cache_ttl:", "trusted_proxies:"} {
		if !strings.Contains(msg, name) {
			t.Errorf("error does not name %s:\n%s", name, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error reveals the database password:\n%s", msg)
	}
}

func TestTrustedProxies(t *testing.T) {
	c := Default()
	c.TrustedProxies = "10.0.0.0/8, 192.0.2.7,::1 fd00::/8"
	got, err := c.Proxies()
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "::1/128", "fd00::/8"}
	if err != nil || len(got) != len(want) {
		t.Fatalf("Proxies() = %v, %v", got, err)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("proxy %d = %s, want %s", i, got[i], want[i])
		}
	}
}

func TestDatabaseKinds(t *testing.T) {
	cases := map[string]string{
		"postgres://h/db":          Postgres,
		"postgresql://h/db":        Postgres,
		"sqlite:/var/lib/l.db":     SQLite,
		"sqlite:///var/lib/l.db":   SQLite,
		"":                         SQLite,
		"mysql://h/db":             "",
		"/just/a/path/latchkey.db": "",
	}
	for url, want := range cases {
		c := Default()
		c.DatabaseURL = url
		kind, _, err := c.Database()
		if want == "" {
			if err == nil {
				t.Errorf("%q accepted", url)
			}
			continue
		}
		if err != nil || kind != want {
			t.Errorf("%q: kind %q, %v; want %q", url, kind, err, want)
		}
	}
}

func TestPublicURLDefaultsToAddr(t *testing.T) {
	for addr, want := range map[string]string{
		":8080":          "http://localhost:8080",
		"0.0.0.0:80":     "http://localhost:80",
		"127.0.0.1:9000": "http://127.0.0.1:9000",
		"[::1]:9000":     "http://[::1]:9000",
	} {
		c := Default()
		c.Addr = addr
		if got := c.EffectivePublicURL(); got != want {
			t.Errorf("addr %q: public URL %q, want %q", addr, got, want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	if got := RedactURL("postgres://user:secret@db/x"); strings.Contains(got, "secret") {
		t.Errorf("RedactURL kept the password: %q", got)
	}
}

func TestMasterKeySettings(t *testing.T) {
	key := secretbox.EncodeKey(bytes.Repeat([]byte{7}, secretbox.KeySize))
	c := Load(env(map[string]string{"LATCHKEY_MASTER_KEY": key}))
	if c.MasterKey != key {
		t.Fatalf("MasterKey not read from LATCHKEY_MASTER_KEY")
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}

	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	// A key on the command line is visible in the process list and shell history.
	if fs.Lookup("master-key") != nil {
		t.Error("there is a --master-key flag")
	}
	if err := fs.Parse([]string{"--master-key", key}); err == nil {
		t.Error("--master-key was accepted")
	}

	fromEnv := Load(env(map[string]string{"LATCHKEY_MASTER_KEY_FILE": "/run/secrets/latchkey-master-key"}))
	if fromEnv.MasterKeyFile != "/run/secrets/latchkey-master-key" {
		t.Errorf("MasterKeyFile = %q from LATCHKEY_MASTER_KEY_FILE", fromEnv.MasterKeyFile)
	}
	fs = flag.NewFlagSet("test", flag.ContinueOnError)
	fromEnv.RegisterFlags(fs)
	if err := fs.Parse([]string{"--master-key-file", "/etc/latchkey/master.key"}); err != nil {
		t.Fatal(err)
	}
	if fromEnv.MasterKeyFile != "/etc/latchkey/master.key" {
		t.Errorf("--master-key-file did not override the environment: %q", fromEnv.MasterKeyFile)
	}
	if err := fromEnv.Validate(); err != nil {
		t.Error(err)
	}
}

func TestMasterKeyProblemsAreReportedWithTheRest(t *testing.T) {
	key := secretbox.EncodeKey(bytes.Repeat([]byte{7}, secretbox.KeySize))
	short := secretbox.EncodeKey(bytes.Repeat([]byte{9}, 16))
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"both", map[string]string{"LATCHKEY_MASTER_KEY": key, "LATCHKEY_MASTER_KEY_FILE": "/k"}, "not both"},
		{"short key", map[string]string{"LATCHKEY_MASTER_KEY": key + "," + short}, "entry 2 decodes to 16 bytes"},
		{"not base64", map[string]string{"LATCHKEY_MASTER_KEY": key + " " + key[:20] + "*"}, "entry 2 is not valid base64"},
		{"duplicate", map[string]string{"LATCHKEY_MASTER_KEY": key + "\n" + key}, "repeats key 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Load(env(tc.env))
			c.LogFormat = "xml"
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			msg := err.Error()
			if !strings.Contains(msg, "master_key:") || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "log_format:") {
				t.Errorf("error does not name master_key (%q) and log_format:\n%s", tc.want, msg)
			}
			if strings.Contains(msg, key[:20]) || strings.Contains(msg, short) {
				t.Errorf("error reveals a key:\n%s", msg)
			}
		})
	}
}

func TestLogValueHidesMasterKey(t *testing.T) {
	key := secretbox.EncodeKey(bytes.Repeat([]byte{7}, secretbox.KeySize))
	c := Load(env(map[string]string{"LATCHKEY_MASTER_KEY": key}))
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
	if strings.Contains(buf.String(), key) || strings.Contains(buf.String(), key[:20]) {
		t.Errorf("log shows the master key: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "master_key_set=true") {
		t.Errorf("log does not say a master key is set: %s", buf.String())
	}
}

func TestDeliverySettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Load(env(map[string]string{"LATCHKEY_DEV": "true", "LATCHKEY_SMTP_ADDR": "mail.example.com:587",
		"LATCHKEY_SMTP_FROM": "Acme <no-reply@acme.example>", "LATCHKEY_SMTP_PASSWORD_FILE": path,
		"LATCHKEY_SMS_PROVIDER": "twilio", "LATCHKEY_TWILIO_ACCOUNT_SID": "AC123", "LATCHKEY_TWILIO_AUTH_TOKEN": "tok-9f8e7d",
		"LATCHKEY_TWILIO_FROM": "+15005550006", "LATCHKEY_TURNSTILE_SECRET": "0x4AAA-turnstile-secret",
		"LATCHKEY_HCAPTCHA_SECRET": "0xhcaptcha-secret", "LATCHKEY_HIBP_URL": "https://api.pwnedpasswords.com"}))
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.TurnstileSecret != "0x4AAA-turnstile-secret" || c.HCaptchaSecret != "0xhcaptcha-secret" || c.HIBPURL == "" {
		t.Errorf("bot-check and HIBP settings = %q %q %q", c.TurnstileSecret, c.HCaptchaSecret, c.HIBPURL)
	}
	for _, secret := range []string{"turnstile-secret", "hcaptcha-secret"} {
		if strings.Contains(fmt.Sprint(c.LogValue()), secret) {
			t.Errorf("LogValue reveals the %s: %v", secret, c.LogValue())
		}
	}
	if !c.Dev || c.SMTPPassword != "s3cret" || c.SMTPTLS != "starttls" || c.TwilioBaseURL != "https://api.twilio.com" {
		t.Errorf("config = %+v", c)
	}
	if strings.Contains(fmt.Sprint(c.LogValue()), "s3cret") || strings.Contains(fmt.Sprint(c.LogValue()), "tok-9f8e7d") {
		t.Errorf("LogValue reveals a secret: %v", c.LogValue())
	}

	bad := Load(env(map[string]string{"LATCHKEY_DEV": "maybe", "LATCHKEY_SMTP_ADDR": "nohostport",
		"LATCHKEY_SMTP_TLS": "ssl", "LATCHKEY_SMS_PROVIDER": "twilio", "LATCHKEY_TWILIO_BASE_URL": "ftp://x",
		"LATCHKEY_HIBP_URL": "http://api.pwnedpasswords.com"}))
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted bad delivery settings")
	}
	for _, name := range []string{"dev", "smtp_addr", "smtp_from", "smtp_tls", "sms_provider", "twilio_base_url", "hibp_url"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

// writeSelfSigned writes a fresh self-signed certificate for 127.0.0.1 and its key as PEM files.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "latchkey test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
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
	return certFile, keyFile
}

func TestTLSSettings(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)

	// Off by default.
	c := Load(env(nil))
	if c.TLSEnabled() {
		t.Fatal("TLS on by default")
	}
	if cfg, err := c.TLSConfig(); cfg != nil || err != nil {
		t.Fatalf("TLSConfig without files = %v, %v", cfg, err)
	}

	// From the environment, overridden by flags; the default public URL becomes https.
	c = Load(env(map[string]string{"LATCHKEY_TLS_CERT": "/from/env.pem", "LATCHKEY_TLS_KEY": keyFile}))
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--tls-cert", certFile, "--addr", "0.0.0.0:8443"}); err != nil {
		t.Fatal(err)
	}
	if c.TLSCert != certFile || c.TLSKey != keyFile || !c.TLSEnabled() {
		t.Fatalf("tls settings = %q, %q", c.TLSCert, c.TLSKey)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.EffectivePublicURL(); got != "https://localhost:8443" {
		t.Errorf("public URL with TLS = %q", got)
	}
	cfg, err := c.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 1 || cfg.Certificates[0].Leaf == nil {
		t.Errorf("TLSConfig = %+v", cfg)
	}
	if !strings.Contains(fmt.Sprint(c.LogValue()), certFile) {
		t.Errorf("LogValue does not name the certificate file: %v", c.LogValue())
	}

	// One without the other is refused, naming both settings.
	for _, m := range []map[string]string{{"LATCHKEY_TLS_CERT": certFile}, {"LATCHKEY_TLS_KEY": keyFile}} {
		err := Load(env(m)).Validate()
		if err == nil || !strings.Contains(err.Error(), "tls_cert") || !strings.Contains(err.Error(), "LATCHKEY_TLS_KEY") {
			t.Errorf("%v: Validate = %v", m, err)
		}
	}

	// Unreadable or mismatched files fail with an error naming the settings and the file.
	other, _ := writeSelfSigned(t, t.TempDir())
	for name, files := range map[string][2]string{
		"missing certificate": {filepath.Join(dir, "nope.pem"), keyFile},
		"key as certificate":  {keyFile, keyFile},
		"another key's cert":  {other, keyFile},
	} {
		c := Default()
		c.TLSCert, c.TLSKey = files[0], files[1]
		_, err := c.TLSConfig()
		if err == nil || !strings.Contains(err.Error(), "tls_cert/tls_key") || !strings.Contains(err.Error(), files[0]) {
			t.Errorf("%s: TLSConfig error %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}
}

// TestDevOnlyOnLoopback: /dev/inbox shows every project's codes, so --dev on an address others
// can reach is refused unless --dev-allow-remote says so, and then it is a logged warning.
func TestDevOnlyOnLoopback(t *testing.T) {
	for _, c := range []struct {
		addr        string
		allowRemote bool
		wantErr     bool
		wantWarning bool
	}{
		{"127.0.0.1:8080", false, false, false},
		{"127.1.2.3:0", false, false, false},
		{"[::1]:8080", false, false, false},
		{"localhost:8080", false, false, false},
		{":8080", false, true, false},
		{"0.0.0.0:8080", false, true, false},
		{"[::]:8080", false, true, false},
		{"192.168.1.10:8080", false, true, false},
		{"auth.internal:8080", false, true, false},
		{"0.0.0.0:8080", true, false, true},
	} {
		cfg := Load(env(nil))
		cfg.Addr, cfg.Dev, cfg.DevAllowRemote = c.addr, true, c.allowRemote
		err := cfg.Validate()
		if (err != nil) != c.wantErr || (err != nil && !strings.Contains(err.Error(), "dev:")) {
			t.Errorf("--dev on %s (allow remote %v): Validate = %v, want error %v", c.addr, c.allowRemote, err, c.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "LATCHKEY_DEV_ALLOW_REMOTE") {
			t.Errorf("the refusal does not say how to accept it: %v", err)
		}
		warned := slices.ContainsFunc(cfg.Warnings(), func(w string) bool { return strings.Contains(w, "/dev/inbox") })
		if !c.wantErr && warned != c.wantWarning {
			t.Errorf("--dev on %s (allow remote %v): warnings %q", c.addr, c.allowRemote, cfg.Warnings())
		}
	}
	// Without --dev the address is the operator's business.
	cfg := Load(env(map[string]string{"LATCHKEY_ADDR": ":8080"}))
	if err := cfg.Validate(); err != nil {
		t.Errorf("public address without --dev: %v", err)
	}
	cfg = Load(env(map[string]string{"LATCHKEY_ADDR": ":8080", "LATCHKEY_DEV": "true", "LATCHKEY_DEV_ALLOW_REMOTE": "true"}))
	if err := cfg.Validate(); err != nil || !cfg.DevAllowRemote {
		t.Errorf("LATCHKEY_DEV_ALLOW_REMOTE: %v (%v)", err, cfg.DevAllowRemote)
	}
}

// TestAdminListenerSettings: the admin listener is on loopback by default, can be turned off,
// needs a port of its own, and pprof needs it on loopback.
func TestAdminListenerSettings(t *testing.T) {
	def := Load(env(nil))
	if def.AdminAddr != "127.0.0.1:9090" || !def.AdminEnabled() || def.Pprof {
		t.Fatalf("defaults: admin %q enabled %v pprof %v", def.AdminAddr, def.AdminEnabled(), def.Pprof)
	}
	for _, c := range []struct {
		env     map[string]string
		wantErr string // "" valid
	}{
		{map[string]string{"LATCHKEY_ADMIN_ADDR": "off"}, ""},
		{map[string]string{"LATCHKEY_ADMIN_ADDR": ""}, ""},
		{map[string]string{"LATCHKEY_ADMIN_ADDR": "127.0.0.1:0", "LATCHKEY_ADDR": "127.0.0.1:0"}, ""},
		{map[string]string{"LATCHKEY_ADMIN_ADDR": "[::1]:9100", "LATCHKEY_PPROF": "true"}, ""},
		{map[string]string{"LATCHKEY_ADMIN_ADDR": "0.0.0.0:9090"}, ""},
		{map[string]string{"LATCHKEY_ADMIN_ADDR": "nonsense"}, "admin_addr:"},
		{map[string]string{"LATCHKEY_ADMIN_ADDR": "127.0.0.1:99999"}, "admin_addr:"},
		{map[string]string{"LATCHKEY_ADMIN_ADDR": "127.0.0.1:8080"}, "admin_addr:"},
		{map[string]string{"LATCHKEY_ADMIN_ADDR": ":8080"}, "admin_addr:"},
		{map[string]string{"LATCHKEY_ADMIN_ADDR": "0.0.0.0:9090", "LATCHKEY_PPROF": "true"}, "pprof:"},
		{map[string]string{"LATCHKEY_ADMIN_ADDR": "off", "LATCHKEY_PPROF": "true"}, "pprof:"},
	} {
		cfg := Load(env(c.env))
		err := cfg.Validate()
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%v: Validate = %v, want %q", c.env, err, c.wantErr)
		}
	}
	remote := Load(env(map[string]string{"LATCHKEY_ADMIN_ADDR": "0.0.0.0:9090"}))
	if !slices.ContainsFunc(remote.Warnings(), func(w string) bool { return strings.Contains(w, "admin listener") }) {
		t.Errorf("no warning for an admin listener on 0.0.0.0: %q", remote.Warnings())
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg := Load(env(nil))
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"--admin-addr", "127.0.0.1:9191", "--pprof"}); err != nil || cfg.AdminAddr != "127.0.0.1:9191" || !cfg.Pprof {
		t.Fatalf("flags: %v %+v", err, cfg)
	}
}
