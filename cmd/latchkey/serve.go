package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/project"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; otherwise the module
// version from the build info is used.
var version = ""

func (c cli) serve(ctx context.Context, args []string) error {
	cmd := c.newCommand("serve", "serve [flags]")
	if err := cmd.parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal starts the graceful shutdown, restore the default handling so
		// that a second one stops the process at once.
		<-ctx.Done()
		stop()
	}()

	// Load the certificate first: a missing or mismatched file is a configuration error,
	// reported before anything else happens.
	tlsConfig, err := cmd.cfg.TLSConfig()
	if err != nil {
		return err
	}
	// Listen next: a taken port fails before any database work, and a picked port is known
	// before the public URL is derived from it.
	ln, err := app.Listen(cmd.cfg)
	if err != nil {
		return err
	}
	defer ln.Close()
	a, log, err := c.open(ctx, *cmd.cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	// The admin port after the configuration has proved usable: a refused start (no master
	// key, say) never holds it.
	admin, err := app.ListenAdmin(cmd.cfg)
	if err != nil {
		return err
	}
	if admin != nil {
		defer admin.Close()
	}
	log.Info("starting latchkey", "version", versionString(), "config", *cmd.cfg)
	for _, w := range cmd.cfg.Warnings() {
		log.Warn(w)
	}
	if tlsConfig != nil {
		// http.Server serves HTTPS (and HTTP/2, by ALPN) on a TLS listener; requests then carry
		// r.TLS, which turns on HSTS.
		ln = tls.NewListener(ln, tlsConfig)
		logCertificate(log, tlsConfig.Certificates[0])
	}

	issued, created, err := a.Projects().Bootstrap(ctx)
	if err != nil {
		return err
	}
	if created {
		printBootstrap(c.stderr, issued)
	}
	return a.ServeWithAdmin(ctx, ln, admin)
}

// logCertificate says which certificate the server presents, and warns when it has expired or
// is about to: a renewed certificate takes effect on restart.
func logCertificate(log *slog.Logger, cert tls.Certificate) {
	leaf := cert.Leaf
	if leaf == nil {
		return
	}
	left := time.Until(leaf.NotAfter)
	attrs := []any{"subject", leaf.Subject.String(), "dns_names", leaf.DNSNames, "not_after", leaf.NotAfter}
	switch {
	case left <= 0:
		log.Warn("serving HTTPS with an expired certificate", attrs...)
	case left < 14*24*time.Hour:
		log.Warn("serving HTTPS with a certificate that expires soon", attrs...)
	default:
		log.Info("serving HTTPS", attrs...)
	}
}

// printBootstrap shows the Default project's credentials, framed so that they stand out of the
// log. This is the only time the secret exists in clear.
func printBootstrap(w io.Writer, issued project.Issued) {
	const rule = "=========================================================================="
	fmt.Fprintf(w, "\n%s\n", rule)
	fmt.Fprintf(w, "  Latchkey created the %q project on its first start.\n", issued.Project.Name)
	fmt.Fprintf(w, "  Save the client secret now: it is shown only this once and is stored\n")
	fmt.Fprintf(w, "  only as a hash. (Lost it? latchkey project rotate-secret --client-id ...)\n\n")
	fmt.Fprintf(w, "    client_id:     %s\n", issued.Project.ClientID)
	fmt.Fprintf(w, "    client_secret: %s\n", issued.ClientSecret)
	fmt.Fprintf(w, "%s\n\n", rule)
}

func (c cli) migrate(ctx context.Context, args []string) error {
	cmd := c.newCommand("migrate", "migrate [flags]")
	if err := cmd.parse(args); err != nil {
		return err
	}
	if err := app.Migrate(ctx, *cmd.cfg); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "database schema is up to date")
	return nil
}

func (c cli) version(args []string) error {
	if len(args) > 0 {
		return usageErrorf("version takes no arguments")
	}
	fmt.Fprintf(c.stdout, "latchkey %s\n", versionString())
	return nil
}

// versionString is the ldflags version, else the module version and VCS revision from the
// build info, else "devel".
func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v + " " + info.GoVersion
}
