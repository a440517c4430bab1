package mfa

import (
	"crypto/rand"
	"io"
	"time"

	"github.com/latchkey-dev/latchkey/internal/ident"
)

// fillDefaults gives every service of the package the real clock, crypto/rand and a fresh id
// generator for whichever of its injected ones are nil.
func fillDefaults(now *func() time.Time, r *io.Reader, ids **ident.Generator) {
	if *now == nil {
		*now = time.Now
	}
	if *r == nil {
		*r = rand.Reader
	}
	if *ids == nil {
		*ids = ident.NewGenerator()
	}
}
