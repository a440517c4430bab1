package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/secretbox"
	"github.com/latchkey-dev/latchkey/internal/token"
)

const keysUsage = `Usage:
  latchkey keys list --client-id ID [--json]
  latchkey keys rotate --client-id ID [--algorithm RS256|ES256|EdDSA] [--activate-in 1m] [--json]
  latchkey keys rotate-master
`

func (c cli) keys(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("keys needs a subcommand\n%s", keysUsage)
	}
	switch args[0] {
	case "list":
		return c.keysList(ctx, args[1:])
	case "rotate":
		return c.keysRotate(ctx, args[1:])
	case "rotate-master":
		return c.keysRotateMaster(ctx, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, keysUsage)
		return nil
	}
	return usageErrorf("unknown keys subcommand %q\n%s", args[0], keysUsage)
}

// openProject opens the server's services and finds the project --client-id names. The
// caller closes the app.
func (c cli) openProject(ctx context.Context, cmd *command, clientID string) (*app.App, project.View, error) {
	if clientID == "" {
		return nil, project.View{}, usageErrorf("%s: --client-id is required", strings.TrimPrefix(cmd.fs.Name(), "latchkey "))
	}
	a, _, err := c.open(ctx, *cmd.cfg)
	if err != nil {
		return nil, project.View{}, err
	}
	v, err := a.Projects().GetByClientID(ctx, clientID)
	if err != nil {
		a.Close()
		return nil, project.View{}, err
	}
	return a, v, nil
}

// keyJSON is one signing key in keys output: never its private half.
type keyJSON struct {
	KID         string     `json:"kid"`
	Algorithm   string     `json:"algorithm"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatesAt time.Time  `json:"activates_at"`
	RetiresAt   *time.Time `json:"retires_at"`
}

func (c cli) keysList(ctx context.Context, args []string) error {
	cmd := c.newCommand("keys list", "keys list --client-id ID [--json] [flags]")
	clientID := cmd.fs.String("client-id", "", "the project's client `id` (required)")
	asJSON := cmd.fs.Bool("json", false, "print JSON")
	if err := cmd.parse(args); err != nil {
		return err
	}
	a, v, err := c.openProject(ctx, cmd, *clientID)
	if err != nil {
		return err
	}
	defer a.Close()
	recs, err := a.Store().ListSigningKeys(ctx, v.Project.ID, time.Now())
	if err != nil {
		return err
	}
	out := make([]keyJSON, len(recs))
	for i, k := range recs {
		out[i] = keyJSON{KID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiresAt: k.RetiresAt}
	}
	if *asJSON {
		return writeJSON(c.stdout, out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALGORITHM\tACTIVATES\tRETIRES")
	for _, k := range out {
		retires := "-"
		if k.RetiresAt != nil {
			retires = k.RetiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.KID, k.Algorithm, k.ActivatesAt.Format(time.RFC3339), retires)
	}
	return tw.Flush()
}

func (c cli) keysRotate(ctx context.Context, args []string) error {
	cmd := c.newCommand("keys rotate", "keys rotate --client-id ID [--algorithm ALG] [--activate-in DURATION] [--json] [flags]")
	clientID := cmd.fs.String("client-id", "", "the project's client `id` (required)")
	algorithm := cmd.fs.String("algorithm", "", "`algorithm` of the new key (default: the project's tokens.signing_algorithm)")
	activateIn := cmd.fs.Duration("activate-in", -1, "how long the new key is published before it signs (default: twice --key-cache-ttl)")
	asJSON := cmd.fs.Bool("json", false, "print JSON")
	if err := cmd.parse(args); err != nil {
		return err
	}
	a, v, err := c.openProject(ctx, cmd, *clientID)
	if err != nil {
		return err
	}
	defer a.Close()
	alg := token.Algorithm(v.Settings.Tokens.SigningAlgorithm)
	if *algorithm != "" {
		if alg, err = token.ParseAlgorithm(*algorithm); err != nil {
			return usageErrorf("keys rotate: %v", err)
		}
	}
	delay := *activateIn
	if delay < 0 {
		delay = a.Keys().DefaultActivationDelay()
	} else if delay < a.Keys().CacheTTL() {
		fmt.Fprintf(c.stderr, "warning: --activate-in %s is shorter than --key-cache-ttl %s: an instance that has not yet "+
			"read the new key may refuse tokens it signs until it does\n", delay, a.Keys().CacheTTL())
	}
	k, err := a.Keys().Rotate(ctx, operator(), v.Project.ID, alg, delay)
	if err != nil {
		return err
	}
	out := keyJSON{KID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt}
	if *asJSON {
		return writeJSON(c.stdout, out)
	}
	fmt.Fprintf(c.stdout, "Published %s key %s; it signs from %s. The previous keys stay in the JWKS until every token they signed has expired.\n",
		k.Algorithm, k.ID, k.ActivatesAt.Format(time.RFC3339))
	return nil
}

// keysRotateMaster re-encrypts every sealed secret under the current master key. With a key
// file (the default, or LATCHKEY_MASTER_KEY_FILE) it also makes the new key: it is added to
// the file, everything is rewrapped, then the old keys are dropped. With LATCHKEY_MASTER_KEY
// the operator puts the new key first in the list, runs this, then removes the old ones.
func (c cli) keysRotateMaster(ctx context.Context, args []string) error {
	cmd := c.newCommand("keys rotate-master", "keys rotate-master [flags]")
	if err := cmd.parse(args); err != nil {
		return err
	}
	log := app.NewLogger(*cmd.cfg, c.stderr)
	mk, err := app.LoadMasterKeys(*cmd.cfg, log)
	if err != nil {
		return err
	}
	st, err := app.OpenStore(ctx, *cmd.cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	// Before the key file changes: a new key added to the wrong ring would seal the database's
	// secrets away from the key that opens them.
	if err := app.CheckMasterKey(ctx, st, mk, time.Now()); err != nil {
		return err
	}
	ring := mk.Ring
	if mk.File != "" {
		if ring, err = secretbox.AddKeyToFile(mk.File, nil); err != nil {
			return err
		}
	}
	n, err := st.RewrapSealed(ctx, ring.Rewrap)
	if err != nil {
		return fmt.Errorf("re-encrypt secrets (nothing is lost: every key is still in the ring): %w", err)
	}
	if mk.File != "" {
		if err := secretbox.DropOldKeysFromFile(mk.File); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "New master key %s written to %s; re-encrypted %d secrets and removed the old key.\n"+
			"Restart running servers so they load the new key.\n", ring.CurrentID(), mk.File, n)
		return nil
	}
	fmt.Fprintf(c.stdout, "Re-encrypted %d secrets under master key %s. Every secret now opens with that key alone:\n"+
		"remove the older keys from LATCHKEY_MASTER_KEY and restart the servers.\n", n, ring.CurrentID())
	return nil
}
