package project

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Audit event types of project changes. Each is written in the transaction of its change, so
// an event exists exactly when its change was committed: a refused change (an invalid
// setting, an unknown project) writes none, and the outcome of every event is success. Every
// event's Detail holds "actor" ({"kind", "id"}, see audit.Actor), and its IPAddress and
// UserAgent columns say where the request came from.
//
//   - project.settings_updated: Detail "changed", the names of the settings whose values
//     changed, as dotted paths of the settings document ("settings.tokens.access_token_ttl_seconds")
//     or "name". Never the values: a setting may one day hold something secret. Written for
//     every update, also one that changes nothing.
//   - project.secret_rotated: Detail "secret_id" of the new secret, "retired_secret_ids" of the
//     secrets the rotation set to expire, and "grace_seconds" they stay valid. Never a secret,
//     its hash or its hint.
const (
	EventSettingsUpdated = "project.settings_updated"
	EventSecretRotated   = "project.secret_rotated"
)

// audit writes e, made by `by`, through tx: the transaction of the change it records.
func (s *Service) audit(ctx context.Context, tx store.AuditEvents, by audit.Actor, e store.AuditEvent) error {
	e.ID, e.CreatedAt = s.ids.New(), s.clock()
	if err := tx.AddAuditEvent(ctx, by.Stamp(e)); err != nil {
		return fmt.Errorf("write audit event %s: %w", e.Type, err)
	}
	return nil
}

// changedSettings returns the dotted paths, under "settings.", of the settings whose values
// differ between a and b, sorted. Lists compare whole.
func changedSettings(a, b Settings) ([]string, error) {
	ta, err := settingsTree(a)
	if err != nil {
		return nil, err
	}
	tb, err := settingsTree(b)
	if err != nil {
		return nil, err
	}
	out := []string{}
	diffTrees(ta, tb, "settings.", &out)
	slices.Sort(out)
	return out, nil
}

func settingsTree(s Settings) (map[string]any, error) {
	doc, err := s.Encode()
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("decode project settings: %w", err)
	}
	return tree, nil
}

func diffTrees(a, b map[string]any, prefix string, out *[]string) {
	for k, va := range a {
		oa, aObj := va.(map[string]any)
		ob, bObj := b[k].(map[string]any)
		switch {
		case aObj && bObj:
			diffTrees(oa, ob, prefix+k+".", out)
		case !reflect.DeepEqual(va, b[k]):
			*out = append(*out, prefix+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			*out = append(*out, prefix+k)
		}
	}
}
