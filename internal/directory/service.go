package directory

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// Store is the part of the store the directory uses; its transactions use tx only through
// Store (see store.Store.InTx).
type Store interface {
	store.Users
	store.Organizations
	store.Roles
	store.Permissions
	store.Sessions
	store.LoginLogs
	store.AuditEvents
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Deps are what a Service needs.
type Deps struct {
	Store Store
	IDs   *ident.Generator // nil: the system clock and CSPRNG
	Now   func() time.Time // nil: time.Now
	// AllowLookalikes reports whether the project accepts, for users' new addresses, the
	// look-alike addresses that CheckNewEmail refuses (emails.allow_lookalike_addresses).
	// nil: never.
	AllowLookalikes func(ctx context.Context, projectID string) (bool, error)
}

// Service manages the directory of every project. Each method takes the project id of the
// caller and never reads or writes another project's records. Errors are *failure.Error with
// the codes documented on each method, or an internal error.
type Service struct {
	store           Store
	ids             *ident.Generator
	now             func() time.Time
	allowLookalikes func(ctx context.Context, projectID string) (bool, error)
}

// New returns a Service over d.Store.
func New(d Deps) *Service {
	s := &Service{store: d.Store, ids: d.IDs, now: d.Now, allowLookalikes: d.AllowLookalikes}
	if s.ids == nil {
		s.ids = ident.NewGenerator()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.allowLookalikes == nil {
		s.allowLookalikes = func(context.Context, string) (bool, error) { return false, nil }
	}
	return s
}

// clock returns the current time as the store keeps it (UTC, microseconds), so that a record
// returned right after a write equals the same record read back later.
func (s *Service) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// PageQuery is a page request as the client sent it: Limit is a decimal number from 1 to 100
// (empty means 20) and Cursor is the NextCursor of the previous page (empty means the first).
type PageQuery struct {
	Limit  string
	Cursor string
}

// parsePage checks q and returns the store page to fetch (one row more than the client asked
// for, to learn whether another page follows) and the client's limit.
func parsePage(q PageQuery) (store.Page, int, error) {
	limit := defaultLimit
	if l := strings.TrimSpace(q.Limit); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			return store.Page{}, 0, failure.InvalidField("invalid_limit", "limit", fmt.Sprintf("must be a whole number from 1 to %d", maxLimit))
		}
		limit = n
	}
	after, err := decodeCursor(q.Cursor)
	if err != nil {
		return store.Page{}, 0, err
	}
	return store.Page{Limit: limit + 1, After: after}, limit, nil
}

// Cursors are opaque to clients: base64url of the last id of a page. Being opaque leaves room
// to change what they hold; decoding checks the id so that garbage never reaches a query.
func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

func decodeCursor(c string) (string, error) {
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

// trimPage cuts rows (fetched with limit+1) to limit and returns the cursor of the next page,
// or "" when rows was the last page.
func trimPage[T any](rows []T, limit int, id func(T) string) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, encodeCursor(id(rows[limit-1]))
}

// notFound translates store.ErrNotFound into a 404 failure with code; other errors are
// wrapped with what failed, for the log.
func notFound(err error, code, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return &failure.Error{Kind: failure.NotFound, Code: code, Description: what + " not found", Err: err}
	}
	return fmt.Errorf("directory: %s: %w", what, err)
}

// missing returns the 404 failure for an id that cannot exist (not of the id form).
func missing(code, what string) error {
	return failure.New(failure.NotFound, code, "%s not found", what)
}

// Codes of the errors this package returns.
const (
	codeUserNotFound       = "user_not_found"
	codeOrgNotFound        = "organization_not_found"
	codeRoleNotFound       = "role_not_found"
	codePermissionNotFound = "permission_not_found"
)
