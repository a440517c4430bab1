// Package mfatest holds what tests of MFA share: reading a QR code back with an independent
// decoder, and computing an authenticator app's codes with an implementation of RFC 4226 and
// RFC 6238 of its own, so that tests do not grade production with production's library.
package mfatest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 6238's default, and what every authenticator app uses
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"image"
	_ "image/png" // QR codes are PNGs
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"
)

// DecodeQR reads a PNG QR code back with an independent decoder (a port of ZXing).
func DecodeQR(t testing.TB, png []byte) string {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(png))
	if err != nil || format != "png" {
		t.Fatalf("decode image: %v (format %q)", err, format)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("no QR code found: %v", err)
	}
	return res.GetText()
}

// RFC6238Key is the SHA-1 key of RFC 4226 Appendix D and RFC 6238 Appendix B.
const RFC6238Key = "12345678901234567890"

// RFC6238Vectors are the SHA-1 rows of RFC 6238 Appendix B: a Unix time and the 8-digit code
// of RFC6238Key at that time. A 6-digit code is the last 6 digits.
var RFC6238Vectors = []struct {
	Unix int64
	Code string
}{
	{59, "94287082"},
	{1111111109, "07081804"},
	{1111111111, "14050471"},
	{1234567890, "89005924"},
	{2000000000, "69279037"},
	{20000000000, "65353130"},
}

// Code is the code an authenticator app holding the base32 secret shows at `at`: 6 digits,
// 30-second steps, HMAC-SHA1, as Latchkey's otpauth URIs say.
func Code(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(strings.ToUpper(secret), "="))
	if err != nil {
		t.Fatalf("decode the base32 secret: %v", err)
	}
	return TOTP(key, at, 6)
}

// TOTP is RFC 6238's code for key at `at`: HOTP of the number of whole 30-second steps since
// the Unix epoch.
func TOTP(key []byte, at time.Time, digits int) string {
	return HOTP(key, uint64(at.Unix()/30), digits)
}

// HOTP is RFC 4226's code for key and counter: HMAC-SHA1 of the big-endian counter, the 31
// bits at the offset its last nibble names (§5.3, dynamic truncation), modulo 10^digits and
// padded with zeros on the left.
func HOTP(key []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}
