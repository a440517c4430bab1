package project

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// DefaultProjectName is the name of the project created on first start.
const DefaultProjectName = "Default"

// MaxRotationGrace is the longest an old secret may stay valid after a rotation: long enough to
// roll a deployment, short enough that a leaked secret does not live on.
const MaxRotationGrace = 30 * 24 * time.Hour

// RoleSeeder creates a new project's default roles. It runs inside the transaction that creates
// the project, on the transaction's store.
type RoleSeeder func(ctx context.Context, tx store.Store, projectID string) error

// Store is the part of the store the project service uses; its transactions use tx only through
// Store (see store.Store.InTx).
type Store interface {
	store.Projects
	store.AuditEvents
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// Deps are what the service needs.
type Deps struct {
	Store Store
	// SeedRoles seeds the roles of every new project; nil seeds none.
	SeedRoles RoleSeeder
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Rand is the source of client ids and secrets; nil is crypto/rand.
	Rand io.Reader
	// Log receives security-relevant events (never a secret); nil discards them.
	Log *slog.Logger
}

// Service manages projects and authenticates their clients. It implements
// httpserver.ProjectAuthenticator.
type Service struct {
	store     Store
	seedRoles RoleSeeder
	now       func() time.Time
	rand      io.Reader
	ids       *ident.Generator
	log       *slog.Logger
}

// New returns a Service.
func New(d Deps) *Service {
	s := &Service{store: d.Store, seedRoles: d.SeedRoles, now: d.Now, rand: d.Rand, log: d.Log}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ids = &ident.Generator{Now: s.now, Rand: s.rand}
	return s
}

// SecretInfo describes a client secret without revealing it.
type SecretInfo struct {
	ID        string
	Hint      string // the secret's last characters
	CreatedAt time.Time
	ExpiresAt *time.Time // nil: valid until a rotation retires it
}

// Issued is a secret that was just made, with the project it belongs to. ClientSecret is the
// secret in clear: it exists only here, is shown to the operator once, and is never stored.
type Issued struct {
	Project      store.Project
	ClientSecret string
	Secret       SecretInfo
}

// View is a project as its owner may see it: settings decoded, secrets described (the ones that
// still authenticate), never revealed.
type View struct {
	Project  store.Project
	Settings Settings
	Secrets  []SecretInfo
}

// NewProject is what Create needs.
type NewProject struct {
	Name           string
	AllowedOrigins []string
	RedirectURIs   []string
}

// Update changes a project. Nil fields are left as they are; Settings is a partial settings
// document merged onto the current one (see Settings.Apply).
type Update struct {
	Name     *string
	Settings []byte
}

// Create makes a project with the default settings (plus the given origins and redirect URIs),
// its first secret and its seeded roles, in one transaction.
func (s *Service) Create(ctx context.Context, np NewProject) (Issued, error) {
	name, err := cleanName(np.Name)
	if err != nil {
		return Issued{}, err
	}
	settings := DefaultSettings()
	settings.AllowedOrigins = append(settings.AllowedOrigins, np.AllowedOrigins...)
	settings.RedirectURIs = append(settings.RedirectURIs, np.RedirectURIs...)
	settings.normalize()
	if err := settings.Validate(); err != nil {
		return Issued{}, settingError(err)
	}
	var out Issued
	err = s.store.InTx(ctx, func(tx store.Store) error {
		out, err = s.create(ctx, tx, name, settings)
		return err
	})
	if err != nil {
		return Issued{}, err
	}
	s.log.InfoContext(ctx, "project created", "project_id", out.Project.ID,
		"client_id", out.Project.ClientID, "secret_id", out.Secret.ID)
	return out, nil
}

// Bootstrap creates the Default project on the first start of a database. It reports true, with
// the new secret, only to the one call (across all processes sharing the database) that created
// it; every later or concurrent call reports false. When projects already exist (made with the
// CLI before the first start) it claims the bootstrap and creates nothing.
func (s *Service) Bootstrap(ctx context.Context) (Issued, bool, error) {
	var (
		out     Issued
		created bool
	)
	err := s.store.InTx(ctx, func(tx store.Store) error {
		claimed, err := tx.ClaimBootstrap(ctx, s.clock())
		if err != nil {
			return fmt.Errorf("claim bootstrap: %w", err)
		}
		if !claimed {
			return nil
		}
		existing, err := tx.ListProjects(ctx)
		if err != nil {
			return fmt.Errorf("list projects: %w", err)
		}
		if len(existing) > 0 {
			return nil
		}
		out, err = s.create(ctx, tx, DefaultProjectName, DefaultSettings())
		created = err == nil
		return err
	})
	if err != nil {
		return Issued{}, false, fmt.Errorf("bootstrap: %w", err)
	}
	if created {
		s.log.InfoContext(ctx, "default project created", "project_id", out.Project.ID,
			"client_id", out.Project.ClientID, "secret_id", out.Secret.ID)
	}
	return out, created, nil
}

func (s *Service) create(ctx context.Context, tx store.Store, name string, settings Settings) (Issued, error) {
	doc, err := settings.Encode()
	if err != nil {
		return Issued{}, err
	}
	clientID, err := newClientID(s.rand)
	if err != nil {
		return Issued{}, err
	}
	now := s.clock()
	p := store.Project{ID: s.ids.New(), ClientID: clientID, Name: name, Settings: doc, CreatedAt: now, UpdatedAt: now}
	if err := tx.CreateProject(ctx, p); err != nil {
		return Issued{}, fmt.Errorf("create project: %w", err)
	}
	secret, info, err := s.addSecret(ctx, tx, p.ID, now)
	if err != nil {
		return Issued{}, err
	}
	if s.seedRoles != nil {
		if err := s.seedRoles(ctx, tx, p.ID); err != nil {
			return Issued{}, fmt.Errorf("seed roles of project %s: %w", p.ID, err)
		}
	}
	return Issued{Project: p, ClientSecret: secret, Secret: info}, nil
}

func (s *Service) addSecret(ctx context.Context, tx Store, projectID string, now time.Time) (string, SecretInfo, error) {
	secret, err := newSecret(s.rand)
	if err != nil {
		return "", SecretInfo{}, err
	}
	rec := store.ProjectSecret{ID: s.ids.New(), ProjectID: projectID, Hash: hashSecret(secret),
		Hint: secretHint(secret), CreatedAt: now}
	if err := tx.CreateProjectSecret(ctx, rec); err != nil {
		return "", SecretInfo{}, fmt.Errorf("store secret of project %s: %w", projectID, err)
	}
	return secret, secretInfo(rec), nil
}

// RotateSecret issues a new secret for the project with clientID. Every older secret stays
// valid for grace more (0: it stops working now) so that deployments can roll over. The
// rotation is recorded as project.secret_rotated.
func (s *Service) RotateSecret(ctx context.Context, by audit.Actor, clientID string, grace time.Duration) (Issued, error) {
	if grace < 0 || grace > MaxRotationGrace {
		return Issued{}, failure.InvalidField("invalid_request", "grace",
			fmt.Sprintf("must be between 0 and %s", MaxRotationGrace))
	}
	var out Issued
	err := s.store.InTx(ctx, func(tx store.Store) error {
		p, err := s.projectByClientID(ctx, tx, clientID)
		if err != nil {
			return err
		}
		now := s.clock()
		old, err := tx.ListProjectSecrets(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("list secrets of project %s: %w", p.ID, err)
		}
		secret, info, err := s.addSecret(ctx, tx, p.ID, now)
		if err != nil {
			return err
		}
		until := now.Add(grace)
		if err := tx.RetireProjectSecrets(ctx, p.ID, info.ID, until); err != nil {
			return fmt.Errorf("retire old secrets of project %s: %w", p.ID, err)
		}
		retired := []string{}
		for _, r := range old {
			if r.ExpiresAt == nil || r.ExpiresAt.After(until) {
				retired = append(retired, r.ID)
			}
		}
		out = Issued{Project: p, ClientSecret: secret, Secret: info}
		return s.audit(ctx, tx, by, store.AuditEvent{ProjectID: p.ID, Type: EventSecretRotated, Detail: map[string]any{
			"secret_id": info.ID, "retired_secret_ids": retired, "grace_seconds": int64(grace / time.Second)}})
	})
	if err != nil {
		return Issued{}, err
	}
	s.log.InfoContext(ctx, "project secret rotated", "project_id", out.Project.ID,
		"secret_id", out.Secret.ID, "grace", grace)
	return out, nil
}

// List returns every project, by id.
func (s *Service) List(ctx context.Context) ([]View, error) {
	ps, err := s.store.ListProjects(ctx)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	out := make([]View, 0, len(ps))
	for _, p := range ps {
		v, err := s.view(ctx, s.store, p)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Get returns the project with that id.
func (s *Service) Get(ctx context.Context, projectID string) (View, error) {
	p, err := s.store.GetProject(ctx, projectID)
	if err != nil {
		return View{}, notFound(err, "project_not_found", "no such project")
	}
	return s.view(ctx, s.store, p)
}

// GetByClientID returns the project with that client id.
func (s *Service) GetByClientID(ctx context.Context, clientID string) (View, error) {
	p, err := s.projectByClientID(ctx, s.store, clientID)
	if err != nil {
		return View{}, err
	}
	return s.view(ctx, s.store, p)
}

// Settings decodes the project's settings document.
func (s *Service) Settings(p store.Project) (Settings, error) {
	return DecodeSettings(p.Settings)
}

// Update applies u to the project. Either all of it is applied, with its
// project.settings_updated event, or, when a setting is invalid, nothing: the error (400
// invalid_setting) names the first bad field.
func (s *Service) Update(ctx context.Context, by audit.Actor, projectID string, u Update) (View, error) {
	var out View
	err := s.store.InTx(ctx, func(tx store.Store) error {
		// Settings are merged onto what is stored: locking the row keeps two concurrent PATCHes
		// from each writing back a document without the other's change.
		p, err := tx.LockProject(ctx, projectID)
		if err != nil {
			return notFound(err, "project_not_found", "no such project")
		}
		oldName := p.Name
		if u.Name != nil {
			if p.Name, err = cleanName(*u.Name); err != nil {
				return err
			}
		}
		settings, err := DecodeSettings(p.Settings)
		if err != nil {
			return err
		}
		oldSettings := settings.clone()
		if u.Settings != nil {
			if settings, err = settings.Apply(u.Settings); err != nil {
				return settingError(err)
			}
			if err := settings.Validate(); err != nil {
				return settingError(err)
			}
		}
		if p.Settings, err = settings.Encode(); err != nil {
			return err
		}
		p.UpdatedAt = s.clock()
		if err := tx.UpdateProject(ctx, p); err != nil {
			return fmt.Errorf("update project %s: %w", p.ID, err)
		}
		changed, err := changedSettings(oldSettings, settings)
		if err != nil {
			return err
		}
		if p.Name != oldName {
			changed = append([]string{"name"}, changed...)
		}
		if err := s.audit(ctx, tx, by, store.AuditEvent{ProjectID: p.ID, Type: EventSettingsUpdated,
			Detail: map[string]any{"changed": changed}}); err != nil {
			return err
		}
		out, err = s.view(ctx, tx, p)
		return err
	})
	if err != nil {
		return View{}, err
	}
	s.log.InfoContext(ctx, "project updated", "project_id", projectID)
	return out, nil
}

// ProjectByClientID returns the project with that client id; an unknown one is 401
// invalid_client.
func (s *Service) ProjectByClientID(ctx context.Context, clientID string) (store.Project, error) {
	if !wellFormedClientID(clientID) {
		return store.Project{}, errInvalidClient()
	}
	p, err := s.store.GetProjectByClientID(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Project{}, errInvalidClient()
	}
	if err != nil {
		return store.Project{}, fmt.Errorf("get project by client id: %w", err)
	}
	return p, nil
}

// AuthenticateSecret returns the project that owns secret. An unknown or expired secret is 401
// invalid_client (the two are not told apart: that would help an attacker); a valid secret of a
// project other than clientID's (when clientID is given) is 403 client_secret_mismatch.
func (s *Service) AuthenticateSecret(ctx context.Context, clientID, secret string) (store.Project, error) {
	if !wellFormedSecret(secret) {
		return store.Project{}, errInvalidClient()
	}
	hash := hashSecret(secret)
	rec, err := s.store.FindProjectSecret(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.Project{}, errInvalidClient()
	}
	if err != nil {
		return store.Project{}, fmt.Errorf("find project secret: %w", err)
	}
	// The index lookup already matched the hash; comparing again in constant time keeps the
	// decision itself free of timing differences whatever the database does.
	if subtle.ConstantTimeCompare(rec.Hash, hash) != 1 {
		return store.Project{}, errInvalidClient()
	}
	if rec.ExpiresAt != nil && !s.now().Before(*rec.ExpiresAt) {
		return store.Project{}, errInvalidClient()
	}
	p, err := s.store.GetProject(ctx, rec.ProjectID)
	if err != nil {
		return store.Project{}, fmt.Errorf("get project of secret %s: %w", rec.ID, err)
	}
	if clientID != "" && subtle.ConstantTimeCompare([]byte(clientID), []byte(p.ClientID)) != 1 {
		return store.Project{}, failure.New(failure.Forbidden, "client_secret_mismatch",
			"the client secret does not belong to this client_id")
	}
	return p, nil
}

func (s *Service) projectByClientID(ctx context.Context, st Store, clientID string) (store.Project, error) {
	if !wellFormedClientID(clientID) {
		return store.Project{}, failure.New(failure.NotFound, "project_not_found", "no project has client id %q", clientID)
	}
	p, err := st.GetProjectByClientID(ctx, clientID)
	if err != nil {
		return store.Project{}, notFound(err, "project_not_found", fmt.Sprintf("no project has client id %q", clientID))
	}
	return p, nil
}

func (s *Service) view(ctx context.Context, st Store, p store.Project) (View, error) {
	settings, err := DecodeSettings(p.Settings)
	if err != nil {
		return View{}, fmt.Errorf("project %s: %w", p.ID, err)
	}
	recs, err := st.ListProjectSecrets(ctx, p.ID)
	if err != nil {
		return View{}, fmt.Errorf("list secrets of project %s: %w", p.ID, err)
	}
	now := s.now()
	secrets := make([]SecretInfo, 0, len(recs))
	for _, r := range recs {
		if r.ExpiresAt == nil || now.Before(*r.ExpiresAt) {
			secrets = append(secrets, secretInfo(r))
		}
	}
	return View{Project: p, Settings: settings, Secrets: secrets}, nil
}

// clock returns now as the store keeps it (UTC, microseconds), so that what a method returns
// equals what a later read returns.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func secretInfo(r store.ProjectSecret) SecretInfo {
	return SecretInfo{ID: r.ID, Hint: r.Hint, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}
}

func cleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", failure.InvalidField("invalid_request", "name", "must not be empty")
	case utf8.RuneCountInString(name) > 100:
		return "", failure.InvalidField("invalid_request", "name", "must be at most 100 characters")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", failure.InvalidField("invalid_request", "name", "must not contain control characters")
	}
	return name, nil
}

func errInvalidClient() error {
	return failure.New(failure.Unauthenticated, "invalid_client", "client authentication failed")
}

func notFound(err error, code, description string) error {
	if errors.Is(err, store.ErrNotFound) {
		return &failure.Error{Kind: failure.NotFound, Code: code, Description: description, Err: err}
	}
	return err
}

// settingError turns a settings problem into the API's 400 invalid_setting: Field names the
// first bad setting, the description lists them all.
func settingError(err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &failure.Error{Kind: failure.Invalid, Code: "invalid_setting", Field: fe.Field, Description: fe.Error()}
	}
	var ve ValidationError
	if errors.As(err, &ve) && len(ve) > 0 {
		return &failure.Error{Kind: failure.Invalid, Code: "invalid_setting", Field: ve[0].Field, Description: ve.Error()}
	}
	return err
}
