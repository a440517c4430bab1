// Package ident makes the 24-hex-character identifiers that every Latchkey record carries.
package ident

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// Generator makes ids of the form SSOJet uses: 4 bytes of unix time followed by 8 random bytes,
// hex encoded (24 characters). The time prefix keeps ids roughly in creation order, which makes
// them good keys for cursor pagination; the random part makes them unguessable enough that an id
// is never a secret but also never an enumeration aid.
type Generator struct {
	Now  func() time.Time
	Rand io.Reader
}

// NewGenerator returns a Generator on the system clock and the system CSPRNG.
func NewGenerator() *Generator { return &Generator{Now: time.Now, Rand: rand.Reader} }

// New returns a fresh id.
func (g *Generator) New() string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(g.Now().Unix()))
	if _, err := io.ReadFull(g.Rand, b[4:]); err != nil {
		// The system CSPRNG does not fail on supported platforms; if it does, continuing would
		// hand out predictable ids.
		panic(fmt.Sprintf("ident: read random bytes: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// Valid reports whether s has the form of an id (24 lowercase hex characters).
func Valid(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
