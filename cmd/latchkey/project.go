package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/project"
)

const projectUsage = `Usage:
  latchkey project create --name NAME [--origin URL]... [--redirect-uri URL]... [--json]
  latchkey project list [--json]
  latchkey project update --client-id ID [--name NAME] [--origin URL]... [--redirect-uri URL]... [--settings JSON]
  latchkey project rotate-secret --client-id ID [--grace 24h] [--json]
`

func (c cli) project(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("project needs a subcommand\n%s", projectUsage)
	}
	switch args[0] {
	case "create":
		return c.projectCreate(ctx, args[1:])
	case "list":
		return c.projectList(ctx, args[1:])
	case "update":
		return c.projectUpdate(ctx, args[1:])
	case "rotate-secret":
		return c.projectRotate(ctx, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, projectUsage)
		return nil
	}
	return usageErrorf("unknown project subcommand %q\n%s", args[0], projectUsage)
}

// issuedJSON is what create and rotate-secret print with --json.
type issuedJSON struct {
	ProjectID    string `json:"project_id"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func (c cli) projectCreate(ctx context.Context, args []string) error {
	cmd := c.newCommand("project create", "project create --name NAME [--origin URL]... [--redirect-uri URL]... [--json] [flags]")
	name := cmd.fs.String("name", "", "project `name` (required)")
	var origins, redirects stringList
	cmd.fs.Var(&origins, "origin", "allowed browser `origin`, e.g. https://app.example.com (repeatable)")
	cmd.fs.Var(&redirects, "redirect-uri", "allowed redirect `URL` (repeatable)")
	asJSON := cmd.fs.Bool("json", false, "print JSON")
	if err := cmd.parse(args); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return usageErrorf("project create: --name is required")
	}
	a, _, err := c.open(ctx, *cmd.cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	issued, err := a.Projects().Create(ctx, project.NewProject{Name: *name, AllowedOrigins: origins, RedirectURIs: redirects})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, issuedJSON{ProjectID: issued.Project.ID, ClientID: issued.Project.ClientID, ClientSecret: issued.ClientSecret})
	}
	fmt.Fprintf(c.stdout, "Created project %q.\n  project_id:    %s\n  client_id:     %s\n  client_secret: %s\n\n"+
		"The client secret is shown only this once; store it now.\n",
		issued.Project.Name, issued.Project.ID, issued.Project.ClientID, issued.ClientSecret)
	return nil
}

// projectJSON is one project in list and update output: never a secret.
type projectJSON struct {
	ProjectID  string           `json:"project_id"`
	ClientID   string           `json:"client_id"`
	Name       string           `json:"name"`
	Settings   project.Settings `json:"settings"`
	Secrets    []secretJSON     `json:"secrets"`
	CreatedAt  time.Time        `json:"created_at"`
	ModifiedAt time.Time        `json:"modified_at"`
}

type secretJSON struct {
	ID        string     `json:"id"`
	Hint      string     `json:"hint"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

func toProjectJSON(v project.View) projectJSON {
	secrets := make([]secretJSON, len(v.Secrets))
	for i, s := range v.Secrets {
		secrets[i] = secretJSON{ID: s.ID, Hint: s.Hint, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt}
	}
	return projectJSON{ProjectID: v.Project.ID, ClientID: v.Project.ClientID, Name: v.Project.Name,
		Settings: v.Settings, Secrets: secrets, CreatedAt: v.Project.CreatedAt, ModifiedAt: v.Project.UpdatedAt}
}

func (c cli) projectList(ctx context.Context, args []string) error {
	cmd := c.newCommand("project list", "project list [--json] [flags]")
	asJSON := cmd.fs.Bool("json", false, "print JSON")
	if err := cmd.parse(args); err != nil {
		return err
	}
	a, _, err := c.open(ctx, *cmd.cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	views, err := a.Projects().List(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]projectJSON, len(views))
		for i, v := range views {
			out[i] = toProjectJSON(v)
		}
		return writeJSON(c.stdout, out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tNAME\tPROJECT ID\tSECRETS\tCREATED")
	for _, v := range views {
		hints := make([]string, len(v.Secrets))
		for i, s := range v.Secrets {
			hints[i] = "…" + s.Hint
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Project.ClientID, v.Project.Name, v.Project.ID,
			strings.Join(hints, " "), v.Project.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func (c cli) projectUpdate(ctx context.Context, args []string) error {
	cmd := c.newCommand("project update", "project update --client-id ID [--name NAME] [--origin URL]... [--redirect-uri URL]... [--settings JSON] [flags]")
	clientID := cmd.fs.String("client-id", "", "the project's client `id` (required)")
	name := cmd.fs.String("name", "", "new project `name`")
	var origins, redirects stringList
	cmd.fs.Var(&origins, "origin", "allowed browser `origin`; replaces the list (repeatable)")
	cmd.fs.Var(&redirects, "redirect-uri", "allowed redirect `URL`; replaces the list (repeatable)")
	settings := cmd.fs.String("settings", "", "partial settings document (`JSON`) merged onto the current one, e.g. '{\"codes\":{\"length\":8}}'")
	if err := cmd.parse(args); err != nil {
		return err
	}
	if *clientID == "" {
		return usageErrorf("project update: --client-id is required")
	}
	var u project.Update
	cmd.fs.Visit(func(f *flag.Flag) {
		if f.Name == "name" {
			u.Name = name
		}
	})
	patch, err := settingsPatch(*settings, origins, redirects)
	if err != nil {
		return err
	}
	u.Settings = patch
	if u.Name == nil && u.Settings == nil {
		return usageErrorf("project update: nothing to change (give --name, --origin, --redirect-uri or --settings)")
	}

	a, _, err := c.open(ctx, *cmd.cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	current, err := a.Projects().GetByClientID(ctx, *clientID)
	if err != nil {
		return err
	}
	v, err := a.Projects().Update(ctx, operator(), current.Project.ID, u)
	if err != nil {
		return err
	}
	return writeJSON(c.stdout, toProjectJSON(v))
}

// settingsPatch combines --settings with the list flags into one partial settings document.
func settingsPatch(settings string, origins, redirects []string) ([]byte, error) {
	patch := map[string]any{}
	if strings.TrimSpace(settings) != "" {
		if err := json.Unmarshal([]byte(settings), &patch); err != nil {
			return nil, usageErrorf("--settings: not a JSON object: %v", err)
		}
	}
	for key, list := range map[string][]string{"allowed_origins": origins, "redirect_uris": redirects} {
		if list == nil {
			continue
		}
		if _, both := patch[key]; both {
			return nil, usageErrorf("give %s either in --settings or with its flag, not both", key)
		}
		patch[key] = list
	}
	if len(patch) == 0 {
		return nil, nil
	}
	return json.Marshal(patch)
}

func (c cli) projectRotate(ctx context.Context, args []string) error {
	cmd := c.newCommand("project rotate-secret", "project rotate-secret --client-id ID [--grace 24h] [--json] [flags]")
	clientID := cmd.fs.String("client-id", "", "the project's client `id` (required)")
	grace := cmd.fs.Duration("grace", 24*time.Hour, "how long the old secrets keep working (0: stop now; at most 720h)")
	asJSON := cmd.fs.Bool("json", false, "print JSON")
	if err := cmd.parse(args); err != nil {
		return err
	}
	if *clientID == "" {
		return usageErrorf("project rotate-secret: --client-id is required")
	}
	if *grace < 0 || *grace > project.MaxRotationGrace {
		return usageErrorf("project rotate-secret: --grace must be between 0 and %s", project.MaxRotationGrace)
	}
	a, _, err := c.open(ctx, *cmd.cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	issued, err := a.Projects().RotateSecret(ctx, operator(), *clientID, *grace)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, issuedJSON{ProjectID: issued.Project.ID, ClientID: issued.Project.ClientID, ClientSecret: issued.ClientSecret})
	}
	when := "now"
	if *grace > 0 {
		when = "in " + grace.String()
	}
	fmt.Fprintf(c.stdout, "New client secret for %s (%q):\n  client_secret: %s\n\n"+
		"It is shown only this once; store it now. The previous secrets stop working %s.\n",
		issued.Project.ClientID, issued.Project.Name, issued.ClientSecret, when)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// operator is the actor of the changes a command makes, for their audit events: the CLI, named
// by the OS user running it ("" when the system cannot say).
func operator() audit.Actor {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return audit.Actor{Kind: audit.ActorCLI, ID: name}
}
