// Package mfatest holds what tests of MFA share: reading a QR code back with an independent
// decoder, and computing an authenticator app's codes.
package mfatest

import (
	"bytes"
	"image"
	_ "image/png" // QR codes are PNGs
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
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

// Code is the code an authenticator app holding the base32 secret shows at `at`.
func Code(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}
