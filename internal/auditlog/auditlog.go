package auditlog

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Page sizes of a listing.
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// Event is an audit event as clients see it. It holds what the event recorded and nothing of
// the project's secrets: events never carry any, and Detail is passed through as written.
type Event struct {
	ID             string         `json:"id"`
	Type           string         `json:"type"`
	UserID         string         `json:"user_id"`
	SessionID      string         `json:"session_id"`
	OrganizationID string         `json:"organization_id"`
	IPAddress      string         `json:"ip_address"`
	UserAgent      string         `json:"user_agent"`
	Detail         map[string]any `json:"detail"`
	CreatedAt      string         `json:"created_at"`
}

// View is the public form of e.
func View(e store.AuditEvent) Event {
	detail := e.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	return Event{ID: e.ID, Type: e.Type, UserID: e.UserID, SessionID: e.SessionID, OrganizationID: e.OrganizationID,
		IPAddress: e.IPAddress, UserAgent: e.UserAgent, Detail: detail, CreatedAt: Time(e.CreatedAt)}
}

// Time is the wire form of an event time: RFC 3339 in UTC, with the fraction of a second.
func Time(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// typePattern is an event type ("mfa.reset") or a prefix of types ending in "." ("mfa.").
var typePattern = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$`)

// ValidPattern reports whether p is an event type or a prefix of types ending in ".".
func ValidPattern(p string) bool { return len(p) <= 100 && typePattern.MatchString(p) }

// Query is a listing request as the client sent it. Empty fields do not filter.
type Query struct {
	// Type is an exact event type ("session.revoked_all") or, ending in ".", a prefix ("mfa.").
	Type           string
	UserID         string
	OrganizationID string
	From, To       string // RFC 3339: events created at or after From, and before To
	Limit          string // 1 to MaxLimit; empty means DefaultLimit
	Cursor         string // the NextCursor of the previous page
}

// Page is one page of events, newest first.
type Page struct {
	Events     []store.AuditEvent
	NextCursor string // "" on the last page
}

// Service lists audit events.
type Service struct {
	Store store.AuditEvents
}

// List returns one page of the project's events matching q, newest first.
// Errors: invalid_limit, invalid_cursor, invalid_request naming the field (400).
func (s Service) List(ctx context.Context, projectID string, q Query) (Page, error) {
	f, err := filter(q)
	if err != nil {
		return Page{}, err
	}
	limit, err := ParseLimit(q.Limit, DefaultLimit)
	if err != nil {
		return Page{}, err
	}
	before, err := DecodeCursor(q.Cursor)
	if err != nil {
		return Page{}, err
	}
	rows, err := s.Store.ListAuditEvents(ctx, projectID, f, limit+1, before)
	if err != nil {
		return Page{}, fmt.Errorf("auditlog: list events: %w", err)
	}
	p := Page{Events: rows}
	if len(rows) > limit {
		p.Events = rows[:limit]
		p.NextCursor = EncodeCursor(rows[limit-1].ID)
	}
	return p, nil
}

func filter(q Query) (store.AuditFilter, error) {
	var f store.AuditFilter
	if t := strings.TrimSpace(q.Type); t != "" {
		if !ValidPattern(t) {
			return f, failure.InvalidField("invalid_request", "type",
				`must be an event type such as "mfa.reset" or a prefix ending in "." such as "mfa."`)
		}
		if strings.HasSuffix(t, ".") {
			f.TypePrefix = t
		} else {
			f.Type = t
		}
	}
	for _, id := range []struct {
		name string
		in   string
		out  *string
	}{{"user_id", q.UserID, &f.UserID}, {"organization_id", q.OrganizationID, &f.OrganizationID}} {
		if v := strings.TrimSpace(id.in); v != "" {
			if !ident.Valid(v) {
				return f, failure.InvalidField("invalid_request", id.name, "is not an id")
			}
			*id.out = v
		}
	}
	var err error
	if f.From, err = parseTime("from", q.From); err != nil {
		return f, err
	}
	if f.To, err = parseTime("to", q.To); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, failure.InvalidField("invalid_request", "to", "must be later than from")
	}
	return f, nil
}

func parseTime(name, v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, failure.InvalidField("invalid_request", name, "must be an RFC 3339 time such as 2025-01-31T09:00:00Z")
	}
	return t.UTC(), nil
}

// ParseLimit reads a page size from 1 to MaxLimit; "" gives def.
func ParseLimit(v string, def int) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, failure.InvalidField("invalid_limit", "limit", fmt.Sprintf("must be a whole number from 1 to %d", MaxLimit))
	}
	return n, nil
}

// Cursors are opaque to clients (base64url of the last id of a page), as elsewhere in the API;
// decoding checks the id so that garbage never reaches a query.

// EncodeCursor is the cursor of the page after the row with id.
func EncodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// DecodeCursor returns the id a cursor holds; "" for none.
func DecodeCursor(c string) (string, error) {
	c = strings.TrimSpace(c)
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(c, "="))
	if err != nil || !ident.Valid(string(b)) {
		return "", failure.InvalidField("invalid_cursor", "cursor", "is not a cursor this server issued")
	}
	return string(b), nil
}
