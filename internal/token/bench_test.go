package token_test

import (
	"testing"

	"github.com/latchkey-dev/latchkey/internal/token"
)

// BenchmarkMint measures signing one access token with a key parsed once, as the session
// service does. DESIGN.md's ceilings per core: RS256-2048 860 µs, ES256 35 µs, EdDSA 28 µs.
func BenchmarkMint(b *testing.B) {
	for _, alg := range allAlgorithms {
		b.Run(string(alg), func(b *testing.B) {
			k := testKey(b, alg, "bench-"+string(alg))
			c := fullClaims(testNow)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := token.Mint(k, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify measures verifying one access token against an in-memory KeySet: the cost
// of every authenticated API call before it touches the store. Ceilings: RS256 38 µs, ES256
// 69 µs.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range allAlgorithms {
		b.Run(string(alg), func(b *testing.B) {
			k := testKey(b, alg, "bench-"+string(alg))
			raw, err := token.Mint(k, fullClaims(testNow))
			if err != nil {
				b.Fatal(err)
			}
			v := verifierFor(k.Public())
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
