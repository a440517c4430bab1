package token

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/ident"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// MaxAccessTokenTTL is the longest access token lifetime a project may set. A replaced key
// stays published this long after its successor starts signing, so that every token it
// signed can still be verified until it expires.
const MaxAccessTokenTTL = 24 * time.Hour

// Sealer encrypts private keys at rest (secretbox.Keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// KeyStore is the part of the store the key manager uses.
type KeyStore interface {
	store.SigningKeys
	LockProject(ctx context.Context, id string) (store.Project, error)
	InTx(ctx context.Context, fn func(tx store.Store) error) error
}

// KeyManagerDeps are the key manager's dependencies.
type KeyManagerDeps struct {
	Store  KeyStore
	Sealer Sealer
	IDs    *ident.Generator // nil = ident.NewGenerator()
	Now    func() time.Time // nil = time.Now
	// CacheTTL is how long an instance trusts its copy of a project's keys before reading them
	// again (default 30s). Every instance reads the same table, so a key created anywhere is
	// published everywhere within CacheTTL.
	CacheTTL time.Duration
}

// KeyManager creates, caches, publishes and rotates the projects' signing keys. Private keys
// are parsed once per instance and kept in memory; they are stored only sealed.
//
// Rotation never breaks a token: a new key is published (in the table, hence in every
// instance's JWKS within CacheTTL) before it signs, and the key it replaces stays published
// until every token that key can have signed has expired.
type KeyManager struct {
	store    KeyStore
	sealer   Sealer
	ids      *ident.Generator
	now      func() time.Time
	cacheTTL time.Duration

	mu    sync.Mutex
	cache map[string]*projectKeys
	union *unionKeys // nil until read, and after a key is created here
	// unionLoad lets one request at a time read the union, so that the requests arriving as
	// the cached union expires wait for that one read instead of each reading the table.
	unionLoad sync.Mutex
}

// KeySetDocument is a JWKS rendered once per version of the key set, so that a JWKS request
// costs no encoding. ETag is a strong entity tag (quoted) derived from Body alone: every
// instance gives the same set the same tag.
type KeySetDocument struct {
	Body []byte
	ETag string
}

// unionKeys is every project's published keys as this instance last read them.
type unionKeys struct {
	loadedAt time.Time
	doc      KeySetDocument
}

// projectKeys is one project's published keys as this instance last read them.
type projectKeys struct {
	loadedAt time.Time
	keys     []loadedKey // by activation, then id
	doc      KeySetDocument
}

type loadedKey struct {
	record store.SigningKey
	public PublicKey
	signer *SigningKey // parsed on first use for signing
}

// NewKeyManager returns a key manager.
func NewKeyManager(d KeyManagerDeps) *KeyManager {
	m := &KeyManager{store: d.Store, sealer: d.Sealer, ids: d.IDs, now: d.Now, cacheTTL: d.CacheTTL,
		cache: map[string]*projectKeys{}}
	if m.ids == nil {
		m.ids = ident.NewGenerator()
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.cacheTTL <= 0 {
		m.cacheTTL = 30 * time.Second
	}
	return m
}

// CacheTTL is how long an instance may serve a stale key list; JWKS responses may be cached
// by clients for as long.
func (m *KeyManager) CacheTTL() time.Duration { return m.cacheTTL }

// DefaultActivationDelay is how long a rotated-in key waits before it signs: long enough for
// every instance and every client that honours the JWKS cache headers to have fetched it.
func (m *KeyManager) DefaultActivationDelay() time.Duration { return 2 * m.cacheTTL }

// ProjectJWKS returns the project's published keys as a rendered JWKS, from the cache the
// project's signers and verifiers use.
func (m *KeyManager) ProjectJWKS(ctx context.Context, projectID string) (KeySetDocument, error) {
	pk, err := m.load(ctx, projectID, false)
	if err != nil {
		return KeySetDocument{}, err
	}
	return pk.doc, nil
}

// UnionJWKS returns every project's published keys as one rendered JWKS: the set a verifier
// that names no project fetches from discovery. Key ids are unique across projects, so a
// token's kid picks one key. Like a project's set it is read at most once per CacheTTL, so a
// key created on another instance appears within CacheTTL and a retired key leaves as soon.
func (m *KeyManager) UnionJWKS(ctx context.Context) (KeySetDocument, error) {
	if u := m.cachedUnion(); u != nil {
		return u.doc, nil
	}
	m.unionLoad.Lock()
	defer m.unionLoad.Unlock()
	if u := m.cachedUnion(); u != nil { // read by the request we waited for
		return u.doc, nil
	}
	now := m.now()
	recs, err := m.store.ListPublishedSigningKeys(ctx, now)
	if err != nil {
		return KeySetDocument{}, fmt.Errorf("load every project's signing keys: %w", err)
	}
	keys := make([]PublicKey, len(recs))
	for i, r := range recs {
		if keys[i], err = ParsePublicJWK(r.PublicJWK); err != nil {
			return KeySetDocument{}, fmt.Errorf("parse public key %s: %w", r.ID, err)
		}
	}
	doc, err := newKeySetDocument(keys)
	if err != nil {
		return KeySetDocument{}, err
	}
	m.mu.Lock()
	m.union = &unionKeys{loadedAt: now, doc: doc}
	m.mu.Unlock()
	return doc, nil
}

func (m *KeyManager) cachedUnion() *unionKeys {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := m.union; u != nil && now.Sub(u.loadedAt) < m.cacheTTL {
		return u
	}
	return nil
}

func newKeySetDocument(keys []PublicKey) (KeySetDocument, error) {
	body, err := JWKS(keys)
	if err != nil {
		return KeySetDocument{}, err
	}
	sum := sha256.Sum256(body)
	return KeySetDocument{Body: body, ETag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}, nil
}

// KeySet returns the project's published keys as a KeySet for a Verifier.
func (m *KeyManager) KeySet(projectID string) KeySet {
	return projectKeySet{m: m, projectID: projectID}
}

type projectKeySet struct {
	m         *KeyManager
	projectID string
}

// PublicKey finds kid among the project's keys, reading them again once if this instance has
// not seen it yet: another instance may have just created it.
func (s projectKeySet) PublicKey(ctx context.Context, kid string) (PublicKey, error) {
	for _, fresh := range []bool{false, true} {
		pk, err := s.m.load(ctx, s.projectID, fresh)
		if err != nil {
			return PublicKey{}, err
		}
		for _, k := range pk.keys {
			if k.record.ID == kid {
				return k.public, nil
			}
		}
		if s.m.now().Sub(pk.loadedAt) < time.Second {
			break // just read: a second read would not find it either, and unknown kids must stay cheap
		}
	}
	return PublicKey{}, fmt.Errorf("key %q of project %s: %w", kid, s.projectID, ErrUnknownKey)
}

// Signer returns the key the project signs with now: the newest active key of alg. A project
// with no key at all gets one at once; a project whose algorithm changed gets a key of the new
// algorithm rotated in, and signs with its current key until that one activates.
func (m *KeyManager) Signer(ctx context.Context, projectID string, alg Algorithm) (SigningKey, error) {
	pk, err := m.load(ctx, projectID, false)
	if err != nil {
		return SigningKey{}, err
	}
	now := m.now()
	current, currentAny := m.pick(pk, alg, now)
	if current == nil {
		pending := false
		for _, k := range pk.keys {
			pending = pending || (k.record.Algorithm == string(alg) && k.record.ActivatesAt.After(now))
		}
		if currentAny == nil { // no key can sign: make the first one, active at once
			if _, err := m.create(ctx, audit.Actor{Kind: audit.ActorSystem}, projectID, alg, 0, true); err != nil {
				return SigningKey{}, err
			}
			if pk, err = m.load(ctx, projectID, true); err != nil {
				return SigningKey{}, err
			}
			if _, currentAny = m.pick(pk, alg, m.now()); currentAny == nil {
				return SigningKey{}, fmt.Errorf("project %s has no active signing key after creating one", projectID)
			}
			return m.signerOf(projectID, currentAny)
		}
		if !pending {
			if _, err := m.Rotate(ctx, audit.Actor{Kind: audit.ActorSystem}, projectID, alg, m.DefaultActivationDelay()); err != nil {
				return SigningKey{}, err
			}
		}
		current = currentAny
	}
	return m.signerOf(projectID, current)
}

// pick returns the newest key of alg that is active at now, and the newest active key of any
// algorithm.
func (m *KeyManager) pick(pk *projectKeys, alg Algorithm, now time.Time) (ofAlg, anyAlg *loadedKey) {
	for i := len(pk.keys) - 1; i >= 0; i-- {
		k := &pk.keys[i]
		if k.record.ActivatesAt.After(now) {
			continue
		}
		if anyAlg == nil {
			anyAlg = k
		}
		if ofAlg == nil && k.record.Algorithm == string(alg) {
			ofAlg = k
		}
	}
	return ofAlg, anyAlg
}

func (m *KeyManager) signerOf(projectID string, k *loadedKey) (SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k.signer != nil {
		return *k.signer, nil
	}
	der, err := m.sealer.Open(k.record.PrivateKey, sealAAD(projectID, k.record.ID))
	if err != nil {
		return SigningKey{}, fmt.Errorf("unseal signing key %s: %w", k.record.ID, err)
	}
	sk, err := ParsePrivateKey(k.record.ID, Algorithm(k.record.Algorithm), der)
	if err != nil {
		return SigningKey{}, fmt.Errorf("parse signing key %s: %w", k.record.ID, err)
	}
	k.signer = &sk
	return sk, nil
}

// EventSigningKeyRotated is the audit event of a rotation, written in its transaction (so it
// exists exactly when the new key does). Its Detail holds "actor" (see Actor; ActorSystem when
// the server rotated because the project changed its signing algorithm), "kid" and
// "algorithm" of the new key, "activates_at" (RFC 3339) and "retired_kids", the keys it
// scheduled to leave the JWKS. Never key material. Creating a project's first key, on demand,
// writes no event.
const EventSigningKeyRotated = "signing_key.rotated"

// Rotate publishes a new key of alg that starts signing after activateIn, and schedules the
// project's other keys to leave the JWKS once every token they may sign has expired. The
// rotation, made by `by`, is recorded as signing_key.rotated.
func (m *KeyManager) Rotate(ctx context.Context, by audit.Actor, projectID string, alg Algorithm, activateIn time.Duration) (store.SigningKey, error) {
	if activateIn < 0 {
		return store.SigningKey{}, errors.New("rotate signing key: activation delay must not be negative")
	}
	return m.create(ctx, by, projectID, alg, activateIn, false)
}

// create makes a key. With onlyIfNone it does nothing when the project already has a key that
// can sign (another instance won the race to make the first one); without, it is a rotation.
func (m *KeyManager) create(ctx context.Context, by audit.Actor, projectID string, alg Algorithm, activateIn time.Duration, onlyIfNone bool) (store.SigningKey, error) {
	id := m.ids.New()
	key, err := GenerateKey(alg, id)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	der, err := key.MarshalPrivate()
	if err != nil {
		return store.SigningKey{}, err
	}
	sealed, err := m.sealer.Seal(der, sealAAD(projectID, id))
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("seal signing key: %w", err)
	}
	jwk, err := key.Public().JWK()
	if err != nil {
		return store.SigningKey{}, err
	}
	var rec store.SigningKey
	err = m.store.InTx(ctx, func(tx store.Store) error {
		// The project row lock serialises key changes of one project across instances.
		if _, err := tx.LockProject(ctx, projectID); err != nil {
			return fmt.Errorf("lock project %s: %w", projectID, err)
		}
		now := m.now().UTC().Truncate(time.Microsecond)
		existing, err := tx.ListSigningKeys(ctx, projectID, now)
		if err != nil {
			return err
		}
		if onlyIfNone {
			for _, k := range existing {
				if !k.ActivatesAt.After(now) {
					rec = k
					return nil
				}
			}
		}
		rec = store.SigningKey{ID: id, ProjectID: projectID, Algorithm: string(alg), PrivateKey: sealed,
			PublicJWK: jwk, CreatedAt: now, ActivatesAt: now.Add(activateIn)}
		if err := tx.CreateSigningKey(ctx, rec); err != nil {
			return err
		}
		if onlyIfNone {
			return nil
		}
		// An instance with a stale cache may sign with the old key until CacheTTL after the new
		// one activates; its tokens live at most MaxAccessTokenTTL, plus the most skew a
		// verifier allows on exp.
		retire := rec.ActivatesAt.Add(m.cacheTTL + MaxAccessTokenTTL + maxLeeway)
		if err := tx.RetireSigningKeys(ctx, projectID, rec.ID, retire); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, by.Stamp(store.AuditEvent{ID: m.ids.New(), ProjectID: projectID,
			Type: EventSigningKeyRotated, CreatedAt: now, Detail: map[string]any{
				"kid": rec.ID, "algorithm": rec.Algorithm, "activates_at": rec.ActivatesAt.Format(time.RFC3339Nano),
				"retired_kids": retiredKids(existing, retire)}}))
	})
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("create signing key of project %s: %w", projectID, err)
	}
	m.forget(projectID)
	return rec, nil
}

// load returns the project's published keys, from the cache unless it is stale, empty or
// fresh is asked for.
func (m *KeyManager) load(ctx context.Context, projectID string, fresh bool) (*projectKeys, error) {
	now := m.now()
	m.mu.Lock()
	pk := m.cache[projectID]
	m.mu.Unlock()
	if pk != nil && !fresh && len(pk.keys) > 0 && now.Sub(pk.loadedAt) < m.cacheTTL {
		return pk, nil
	}
	recs, err := m.store.ListSigningKeys(ctx, projectID, now)
	if err != nil {
		return nil, fmt.Errorf("load signing keys of project %s: %w", projectID, err)
	}
	next := &projectKeys{loadedAt: now, keys: make([]loadedKey, 0, len(recs))}
	pubs := make([]PublicKey, 0, len(recs))
	for _, r := range recs {
		pub, err := ParsePublicJWK(r.PublicJWK)
		if err != nil {
			return nil, fmt.Errorf("parse public key %s: %w", r.ID, err)
		}
		next.keys = append(next.keys, loadedKey{record: r, public: pub})
		pubs = append(pubs, pub)
	}
	if next.doc, err = newKeySetDocument(pubs); err != nil {
		return nil, fmt.Errorf("render signing keys of project %s: %w", projectID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Keep the private keys already parsed (parsing RSA keys is not free); signerOf writes
	// them under mu too.
	if old := m.cache[projectID]; old != nil {
		for i := range next.keys {
			for _, o := range old.keys {
				if o.record.ID == next.keys[i].record.ID {
					next.keys[i].signer = o.signer
				}
			}
		}
	}
	m.cache[projectID] = next
	return next, nil
}

// retiredKids are the ids of the keys that RetireSigningKeys(..., retire) moves: those that
// would otherwise stay published past retire.
func retiredKids(keys []store.SigningKey, retire time.Time) []string {
	out := []string{}
	for _, k := range keys {
		if k.RetiresAt == nil || k.RetiresAt.After(retire) {
			out = append(out, k.ID)
		}
	}
	return out
}

// forget drops the project's cached keys and the union after this instance created a key, so
// that this instance publishes it at once.
func (m *KeyManager) forget(projectID string) {
	m.mu.Lock()
	delete(m.cache, projectID)
	m.union = nil
	m.mu.Unlock()
}

// sealAAD binds a sealed private key to its project and kid, so a ciphertext copied onto
// another row does not open.
func sealAAD(projectID, kid string) []byte {
	return []byte("latchkey signing key\x00" + projectID + "\x00" + kid)
}
