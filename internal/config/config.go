package config

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/secretbox"
)

// EnvPrefix starts every environment variable the configuration reads.
const EnvPrefix = "LATCHKEY_"

// Config is the bootstrap configuration. Project settings (login methods, token lifetimes, ...)
// live in the database, per project; this is only what a process needs to start.
type Config struct {
	// Addr is the host:port to listen on. Port 0 picks a free port.
	Addr string
	// DatabaseURL selects the database: empty for SQLite at DataDir/latchkey.db, a
	// postgres:// or postgresql:// URL, or sqlite:PATH.
	DatabaseURL string
	// DataDir holds the embedded SQLite database and other local state.
	DataDir string
	// PublicURL is the URL clients reach the server at; empty means http://Addr.
	PublicURL string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text or json.
	LogFormat string
	// ShutdownTimeout is how long in-flight requests may take to finish on shutdown.
	ShutdownTimeout time.Duration
	// MasterKey is one or more base64 master keys for secrets at rest, the first current,
	// separated by commas or whitespace. It has no flag: a key on a command line is visible to
	// every user in the process list and stays in shell history.
	MasterKey string
	// MasterKeyFile is a file with one master key per line, the first current. With neither
	// MasterKey nor MasterKeyFile, SQLite generates master.key next to its database file (in
	// DataDir by default); PostgreSQL refuses to start.
	MasterKeyFile string
	// KeyCacheTTL is how long an instance trusts its cached copy of the signing keys; a
	// rotated-in key is published for twice this before it signs.
	KeyCacheTTL time.Duration

	// Dev enables development conveniences: without a configured sender, messages are kept and
	// shown at /dev/inbox instead of refused. Never for production.
	Dev bool
	// DevAllowRemote lets Dev run on an address other than loopback. /dev/inbox shows every
	// project's codes and links to whoever reaches it, so without this Validate refuses Dev on
	// any other address.
	DevAllowRemote bool

	// AdminAddr is the host:port of the admin listener, which serves /metrics, /healthz,
	// /readyz and (with Pprof) /debug/pprof/; "off" (or empty) serves none of them, and the
	// public listener never serves /metrics or pprof.
	AdminAddr string
	// Pprof serves Go's net/http/pprof on the admin listener, which must then be on loopback:
	// profiles and heap dumps can hold secrets.
	Pprof bool
	// SMTPAddr is the mail server's host:port; empty means no email sender.
	SMTPAddr     string
	SMTPTLS      string // starttls (default, required), tls (implicit, port 465) or none (loopback only)
	SMTPUsername string
	SMTPPassword string
	SMTPFrom     string // the From address, e.g. "Acme <no-reply@acme.example>"
	// SMSProvider is "", "twilio" or "log" (logs that a message was sent, never its text).
	SMSProvider      string
	TwilioBaseURL    string
	TwilioAccountSID string
	TwilioAuthToken  string
	TwilioFrom       string

	// TrustedProxies lists the proxies (IP addresses or CIDR prefixes, comma-separated) whose
	// X-Forwarded-For header is believed: the client's IP, which login logs and throttling key
	// on, is the right-most address in it that is not a trusted proxy. Empty: the peer's address.
	TrustedProxies string

	// TLSCert and TLSKey are PEM files (certificate chain, private key): with both, serve
	// speaks HTTPS itself (TLS 1.2 or later) and the default public URL is https://Addr.
	TLSCert string
	TLSKey  string

	// HIBPURL turns on the Have I Been Pwned range check of new passwords against this API
	// (https://api.pwnedpasswords.com, or a mirror); empty: only the offline list.
	HIBPURL string
	// TurnstileSecret and HCaptchaSecret let projects choose those bot checks; HCaptchaSiteKey
	// is checked against the token when set.
	TurnstileSecret string
	HCaptchaSecret  string
	HCaptchaSiteKey string
	// PrivateWebhooks lets webhooks reach loopback and private addresses (internal receivers);
	// by default only public ones, so that a project cannot probe the server's network.
	PrivateWebhooks bool

	// loadErrs are problems found while reading the environment, reported by Validate with
	// every other problem.
	loadErrs []error
}

// Default returns the configuration used when nothing is set: a loopback address (nothing is
// exposed until the operator says so) and SQLite in ./latchkey-data.
func Default() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		AdminAddr:       "127.0.0.1:9090",
		DataDir:         "./latchkey-data",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 15 * time.Second,
		KeyCacheTTL:     30 * time.Second,
		SMTPTLS:         "starttls",
		TwilioBaseURL:   "https://api.twilio.com",
	}
}

// setting describes one setting: its name (the flag; the environment variable is
// LATCHKEY_ + upper-case name with '-' as '_'), its help text and where it lives in Config.
type setting struct {
	name  string
	usage string
	str   func(c *Config) *string
	dur   func(c *Config) *time.Duration
	b     func(c *Config) *bool
	// fileOK settings may also be read from the file named by their variable + _FILE, the way
	// secrets are mounted.
	fileOK bool
	// envOnly settings have no flag, because their value is a secret.
	envOnly bool
}

var settings = []setting{
	{name: "addr", usage: "`host:port` to listen on", str: func(c *Config) *string { return &c.Addr }},
	{name: "database-url", usage: "database `URL`: postgres://... or postgresql://..., sqlite:PATH, or empty for SQLite in the data dir",
		str: func(c *Config) *string { return &c.DatabaseURL }},
	{name: "data-dir", usage: "`directory` for the embedded SQLite database", str: func(c *Config) *string { return &c.DataDir }},
	{name: "public-url", usage: "`URL` clients reach this server at (default http://<addr>)", str: func(c *Config) *string { return &c.PublicURL }},
	{name: "log-level", usage: "log `level`: debug, info, warn or error", str: func(c *Config) *string { return &c.LogLevel }},
	{name: "log-format", usage: "log `format`: text or json", str: func(c *Config) *string { return &c.LogFormat }},
	{name: "shutdown-timeout", usage: "how long in-flight requests may take to finish on shutdown (`duration`)",
		dur: func(c *Config) *time.Duration { return &c.ShutdownTimeout }},
	{name: "key-cache-ttl", usage: "how long an instance trusts its cached signing keys (`duration`, 1s..10m)",
		dur: func(c *Config) *time.Duration { return &c.KeyCacheTTL }},
	{name: "dev", usage: "development mode: keep unsent messages at /dev/inbox (never in production)",
		b: func(c *Config) *bool { return &c.Dev }},
	{name: "dev-allow-remote", usage: "allow --dev on an address other than loopback (anyone who reaches /dev/inbox reads every code)",
		b: func(c *Config) *bool { return &c.DevAllowRemote }},
	{name: "admin-addr", usage: "`host:port` of the admin listener (/metrics, /healthz, /readyz, pprof), or off",
		str: func(c *Config) *string { return &c.AdminAddr }},
	{name: "pprof", usage: "serve Go's pprof at /debug/pprof/ on the admin listener (loopback only)",
		b: func(c *Config) *bool { return &c.Pprof }},
	{name: "smtp-addr", usage: "mail server `host:port` (empty: no email sender)", str: func(c *Config) *string { return &c.SMTPAddr }},
	{name: "smtp-tls", usage: "`mode`: starttls (required), tls (implicit) or none (loopback servers only)",
		str: func(c *Config) *string { return &c.SMTPTLS }},
	{name: "smtp-username", usage: "SMTP `user`", str: func(c *Config) *string { return &c.SMTPUsername }},
	{name: "smtp-password", usage: "SMTP password (environment or _FILE only)",
		str: func(c *Config) *string { return &c.SMTPPassword }, envOnly: true, fileOK: true},
	{name: "smtp-from", usage: "From `address` of emails", str: func(c *Config) *string { return &c.SMTPFrom }},
	{name: "sms-provider", usage: "SMS `provider`: twilio or log (empty: no SMS sender)", str: func(c *Config) *string { return &c.SMSProvider }},
	{name: "twilio-base-url", usage: "Twilio-compatible API `URL`", str: func(c *Config) *string { return &c.TwilioBaseURL }},
	{name: "twilio-account-sid", usage: "Twilio account `SID`", str: func(c *Config) *string { return &c.TwilioAccountSID }},
	{name: "twilio-auth-token", usage: "Twilio auth token (environment or _FILE only)",
		str: func(c *Config) *string { return &c.TwilioAuthToken }, envOnly: true, fileOK: true},
	{name: "twilio-from", usage: "sending phone `number` (E.164) or messaging service", str: func(c *Config) *string { return &c.TwilioFrom }},
	{name: "hibp-url", usage: "Have I Been Pwned range API `URL` to check new passwords against (empty: offline list only)",
		str: func(c *Config) *string { return &c.HIBPURL }},
	{name: "turnstile-secret", usage: "Cloudflare Turnstile secret key (environment or _FILE only)",
		str: func(c *Config) *string { return &c.TurnstileSecret }, envOnly: true, fileOK: true},
	{name: "hcaptcha-secret", usage: "hCaptcha secret key (environment or _FILE only)",
		str: func(c *Config) *string { return &c.HCaptchaSecret }, envOnly: true, fileOK: true},
	{name: "hcaptcha-site-key", usage: "hCaptcha site `key` the tokens must be for", str: func(c *Config) *string { return &c.HCaptchaSiteKey }},
	{name: "private-webhooks", usage: "let webhooks reach loopback and private addresses",
		b: func(c *Config) *bool { return &c.PrivateWebhooks }},
	{name: "trusted-proxies", usage: "`CIDRs` of reverse proxies whose X-Forwarded-For is believed (comma-separated)",
		str: func(c *Config) *string { return &c.TrustedProxies }},
	{name: "tls-cert", usage: "PEM `file` of the certificate chain: serve HTTPS itself (with --tls-key)",
		str: func(c *Config) *string { return &c.TLSCert }},
	{name: "tls-key", usage: "PEM `file` of the certificate's private key (with --tls-cert)",
		str: func(c *Config) *string { return &c.TLSKey }},
	{name: "master-key", usage: "base64 master `keys` for secrets at rest, first current (environment only)",
		str: func(c *Config) *string { return &c.MasterKey }, envOnly: true},
	{name: "master-key-file", usage: "`file` of master keys for secrets at rest, one per line, first current (default: generated next to the SQLite database)",
		str: func(c *Config) *string { return &c.MasterKeyFile }},
}

// EnvName returns the environment variable of a setting named like its flag.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Load returns the defaults overridden by the environment (lookup is os.LookupEnv in
// production). Problems are kept and reported by Validate, together with any others.
func Load(lookup func(string) (string, bool)) Config {
	c := Default()
	for _, s := range settings {
		v, ok := lookup(EnvName(s.name))
		if !ok {
			continue
		}
		if s.str != nil {
			*s.str(&c) = v
			continue
		}
		if s.b != nil {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				c.loadErrs = append(c.loadErrs, fmt.Errorf("%s (%s): %q is not true or false",
					strings.ReplaceAll(s.name, "-", "_"), EnvName(s.name), v))
			}
			*s.b(&c) = b
			continue
		}
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			c.loadErrs = append(c.loadErrs, fmt.Errorf("%s (%s): %q is not a duration such as 15s",
				strings.ReplaceAll(s.name, "-", "_"), EnvName(s.name), v))
			continue
		}
		*s.dur(&c) = d
	}
	for _, s := range settings {
		if !s.fileOK {
			continue
		}
		path, ok := lookup(EnvName(s.name) + "_FILE")
		if !ok || path == "" {
			continue
		}
		name := strings.ReplaceAll(s.name, "-", "_")
		if _, both := lookup(EnvName(s.name)); both {
			c.loadErrs = append(c.loadErrs, fmt.Errorf("%s: set %s or %s_FILE, not both", name, EnvName(s.name), EnvName(s.name)))
		} else if b, err := os.ReadFile(path); err != nil {
			c.loadErrs = append(c.loadErrs, fmt.Errorf("%s: read %s_FILE: %w", name, EnvName(s.name), err))
		} else {
			*s.str(&c) = strings.TrimSpace(string(b))
		}
	}
	// The database URL usually carries a password; deployments mount it as a file.
	if path, ok := lookup(EnvName("database-url") + "_FILE"); ok && path != "" {
		if _, both := lookup(EnvName("database-url")); both {
			c.loadErrs = append(c.loadErrs, fmt.Errorf("database_url: set %s or %s_FILE, not both",
				EnvName("database-url"), EnvName("database-url")))
		} else if b, err := os.ReadFile(path); err != nil {
			c.loadErrs = append(c.loadErrs, fmt.Errorf("database_url: read %s_FILE: %w", EnvName("database-url"), err))
		} else {
			c.DatabaseURL = strings.TrimSpace(string(b))
		}
	}
	return c
}

// RegisterFlags adds a flag per setting to fs, each defaulting to c's current value, so that
// parsing fs overrides the environment with the command line.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	for _, s := range settings {
		if s.envOnly {
			continue
		}
		usage := s.usage + " [$" + EnvName(s.name) + "]"
		if s.str != nil {
			p := s.str(c)
			fs.StringVar(p, s.name, *p, usage)
			continue
		}
		if s.b != nil {
			p := s.b(c)
			fs.BoolVar(p, s.name, *p, usage)
			continue
		}
		p := s.dur(c)
		fs.DurationVar(p, s.name, *p, usage)
	}
}

// Validate reports every problem of the configuration at once, each naming the setting and why;
// nil means the server may start.
func (c Config) Validate() error {
	errs := append([]error(nil), c.loadErrs...)
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}

	if host, port, err := net.SplitHostPort(c.Addr); err != nil {
		add("addr", "%q is not host:port (e.g. 127.0.0.1:8080 or :8080)", c.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		add("addr", "port %q is not a number between 0 and 65535", port)
	} else if strings.ContainsAny(host, " /") {
		add("addr", "host %q is not a host name or IP address", host)
	}

	if c.Dev && !c.DevAllowRemote && !IsLoopback(c.Addr) {
		add("dev", "--dev on %s would show every project's codes and links at /dev/inbox to anyone who reaches it: "+
			"listen on a loopback address (e.g. --addr 127.0.0.1:8080), or accept that with %s (--dev-allow-remote)",
			c.Addr, EnvName("dev-allow-remote"))
	}
	if c.AdminEnabled() {
		if host, port, err := net.SplitHostPort(c.AdminAddr); err != nil {
			add("admin_addr", "%q is not host:port (e.g. 127.0.0.1:9090) or off", c.AdminAddr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			add("admin_addr", "port %q is not a number between 0 and 65535", port)
		} else if strings.ContainsAny(host, " /") {
			add("admin_addr", "host %q is not a host name or IP address", host)
		} else if port != "0" && sameListenAddr(c.AdminAddr, c.Addr) {
			add("admin_addr", "%s is also addr: the admin listener needs a port of its own", c.AdminAddr)
		} else if c.Pprof && !IsLoopback(c.AdminAddr) {
			add("pprof", "serves heap and goroutine dumps, which can hold secrets: the admin listener must be on loopback, not %s", c.AdminAddr)
		}
	} else if c.Pprof {
		add("pprof", "needs the admin listener (%s is off)", EnvName("admin-addr"))
	}

	if _, _, err := c.Database(); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(c.DataDir) == "" && c.DatabaseURL == "" {
		add("data_dir", "must not be empty when database_url is empty (the SQLite database lives there)")
	}

	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			add("public_url", "%q must be an absolute http:// or https:// URL", c.PublicURL)
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(c.PublicURL, "#"):
			add("public_url", "must not have a query or fragment")
		case u.User != nil:
			add("public_url", "must not contain a user name or password")
		}
	}

	if _, err := c.Level(); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("log_format", "%q must be text or json", c.LogFormat)
	}
	if c.ShutdownTimeout <= 0 || c.ShutdownTimeout > 10*time.Minute {
		add("shutdown_timeout", "%s must be more than 0 and at most 10m", c.ShutdownTimeout)
	}
	if c.KeyCacheTTL < time.Second || c.KeyCacheTTL > 10*time.Minute {
		add("key_cache_ttl", "%s must be from 1s to 10m", c.KeyCacheTTL)
	}
	if c.SMTPAddr != "" {
		if _, port, err := net.SplitHostPort(c.SMTPAddr); err != nil || port == "" {
			add("smtp_addr", "%q is not host:port", c.SMTPAddr)
		}
		if strings.TrimSpace(c.SMTPFrom) == "" {
			add("smtp_from", "is required with smtp_addr")
		}
	}
	if c.SMTPTLS != "starttls" && c.SMTPTLS != "tls" && c.SMTPTLS != "none" {
		add("smtp_tls", "%q must be starttls, tls or none", c.SMTPTLS)
	}
	if _, err := c.Proxies(); err != nil {
		add("trusted_proxies", "%v", err)
	}
	if c.HIBPURL != "" {
		if u, err := url.Parse(c.HIBPURL); err != nil || u.Scheme != "https" || u.Host == "" {
			add("hibp_url", "%q must be an https URL", c.HIBPURL)
		}
	}
	// The files are read when serve starts (TLSConfig), not here: migrate and the project
	// commands share this configuration and need no certificate.
	if (strings.TrimSpace(c.TLSCert) == "") != (strings.TrimSpace(c.TLSKey) == "") {
		add("tls_cert", "%s (--tls-cert) and %s (--tls-key) must be set together", EnvName("tls-cert"), EnvName("tls-key"))
	}
	switch c.SMSProvider {
	case "", "log":
	case "twilio":
		if c.TwilioAccountSID == "" || c.TwilioAuthToken == "" || c.TwilioFrom == "" {
			add("sms_provider", "twilio needs twilio_account_sid, %s and twilio_from", EnvName("twilio-auth-token"))
		}
		if u, err := url.Parse(c.TwilioBaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("twilio_base_url", "%q is not an http(s) URL", c.TwilioBaseURL)
		}
	default:
		add("sms_provider", "%q must be twilio, log or empty", c.SMSProvider)
	}

	// The key file is read (and its mode checked) when the server loads the keys; the keys in
	// the environment can be checked here, with everything else. secretbox's errors never
	// quote a key.
	if c.MasterKey != "" && c.MasterKeyFile != "" {
		add("master_key", "set %s or %s (--master-key-file), not both", EnvName("master-key"), EnvName("master-key-file"))
	} else if c.MasterKey != "" {
		keys, err := secretbox.ParseKeys(c.MasterKey)
		if err == nil {
			_, err = secretbox.NewKeyring(keys...)
		}
		if err != nil {
			add("master_key", "%s: %v", EnvName("master-key"), err)
		}
	}
	return errors.Join(errs...)
}

// AdminEnabled reports whether the admin listener is on.
func (c Config) AdminEnabled() bool {
	a := strings.TrimSpace(c.AdminAddr)
	return a != "" && !strings.EqualFold(a, "off")
}

// Warnings are settings that are allowed but weaken the server; serve logs each at start.
func (c Config) Warnings() []string {
	var out []string
	if c.Dev && !IsLoopback(c.Addr) {
		out = append(out, fmt.Sprintf("--dev on %s (--dev-allow-remote): anyone who reaches /dev/inbox reads every project's codes and links", c.Addr))
	}
	if c.AdminEnabled() && !IsLoopback(c.AdminAddr) {
		out = append(out, fmt.Sprintf("the admin listener (/metrics) is on %s, not loopback: keep it off the public network", c.AdminAddr))
	}
	return out
}

// IsLoopback reports whether the host of addr (host:port) is only reachable from this
// machine: "localhost" or a loopback IP. An empty host, 0.0.0.0 and :: listen everywhere; a
// host name other than localhost may resolve to anything, so it does not count.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// sameListenAddr reports whether two listen addresses would take the same port on the same
// host; a wildcard host takes the port on every address.
func sameListenAddr(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

// Database kinds.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Database returns which database to open: SQLite with a file path, or PostgreSQL with a URL.
func (c Config) Database() (kind, dsn string, err error) {
	u := strings.TrimSpace(c.DatabaseURL)
	switch {
	case u == "":
		return SQLite, filepath.Join(c.DataDir, "latchkey.db"), nil
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		if _, err := url.Parse(u); err != nil {
			// url's error quotes the URL, password and all; say only what is wrong.
			return "", "", errors.New("database_url: is not a valid URL")
		}
		return Postgres, u, nil
	case strings.HasPrefix(u, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(u, "sqlite:"), "//")
		if path == "" {
			return "", "", errors.New("database_url: sqlite: needs a file path, e.g. sqlite:/var/lib/latchkey/latchkey.db")
		}
		return SQLite, path, nil
	}
	return "", "", errors.New("database_url: must start with postgres://, postgresql:// or sqlite:, or be empty for SQLite in data_dir")
}

// EffectivePublicURL returns the public URL, defaulting to the listen address (with localhost
// for an unspecified host), over https:// when the server terminates TLS and http:// otherwise.
func (c Config) EffectivePublicURL() string {
	if c.PublicURL != "" {
		return strings.TrimSuffix(c.PublicURL, "/")
	}
	scheme := "http://"
	if c.TLSEnabled() {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return scheme + c.Addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return scheme + net.JoinHostPort(host, port)
}

// TLSEnabled reports whether serve terminates TLS itself (TLSCert and TLSKey are set).
func (c Config) TLSEnabled() bool {
	return strings.TrimSpace(c.TLSCert) != "" && strings.TrimSpace(c.TLSKey) != ""
}

// TLSConfig loads the certificate and key and returns the server's TLS configuration (TLS 1.2
// or later, Go's default cipher suites), or nil when TLS is off. The error names the settings
// and the files; it never quotes a key.
func (c Config) TLSConfig() (*tls.Config, error) {
	if !c.TLSEnabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(strings.TrimSpace(c.TLSCert), strings.TrimSpace(c.TLSKey))
	if err != nil {
		return nil, fmt.Errorf("tls_cert/tls_key: cannot use certificate %s with key %s: %w", c.TLSCert, c.TLSKey, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// HTTP/2 first; http.Server serves it on a TLS listener whose ALPN offers it.
		NextProtos: []string{"h2", "http/1.1"},
	}, nil
}

// Level returns the log level.
func (c Config) Level() (slog.Level, error) {
	switch strings.ToLower(c.LogLevel) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log_level: %q must be debug, info, warn or error", c.LogLevel)
}

// LogValue describes the configuration for logs, without the database URL's password or the
// master keys.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("database_url", RedactURL(c.DatabaseURL)),
		slog.String("data_dir", c.DataDir),
		slog.String("public_url", c.EffectivePublicURL()),
		slog.String("log_level", c.LogLevel),
		slog.String("log_format", c.LogFormat),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.Duration("key_cache_ttl", c.KeyCacheTTL),
		slog.Bool("dev", c.Dev),
		slog.Bool("dev_allow_remote", c.DevAllowRemote),
		slog.String("admin_addr", c.AdminAddr),
		slog.Bool("pprof", c.Pprof),
		slog.String("smtp_addr", c.SMTPAddr),
		slog.String("smtp_tls", c.SMTPTLS),
		slog.Bool("smtp_password_set", c.SMTPPassword != ""),
		slog.String("sms_provider", c.SMSProvider),
		slog.String("trusted_proxies", c.TrustedProxies),
		slog.String("hibp_url", c.HIBPURL),
		slog.Bool("turnstile", c.TurnstileSecret != ""),
		slog.Bool("hcaptcha", c.HCaptchaSecret != ""),
		slog.Bool("private_webhooks", c.PrivateWebhooks),
		slog.Bool("twilio_auth_token_set", c.TwilioAuthToken != ""),
		slog.Bool("master_key_set", c.MasterKey != ""),
		slog.String("master_key_file", c.MasterKeyFile),
		slog.String("tls_cert", c.TLSCert),
		slog.String("tls_key", c.TLSKey),
	)
}

// RedactURL returns u with any password replaced, for logs and messages.
func RedactURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		if strings.Contains(u, "@") {
			return "(unparsable URL, hidden)"
		}
		return u
	}
	return parsed.Redacted()
}

// Proxies parses TrustedProxies: IP addresses (a single-address prefix) or CIDR prefixes.
func (c Config) Proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(c.TrustedProxies, func(r rune) bool { return r == ',' || r == ' ' }) {
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
