package mfa

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QR code limits. An otpauth URI with a long issuer and account is under 300 bytes; the bound
// keeps a caller from asking the server to render megabytes.
const (
	maxQRContent = 1024
	// modulePixels is the side of one QR module in pixels. Whole pixels per module keep the
	// edges sharp (a fixed image size scales modules by fractions and blurs them); 6 makes a
	// typical otpauth code about 400 pixels wide, a few kilobytes of PNG.
	modulePixels = 6
)

// QRCodePNG renders an otpauth:// URI as a PNG QR code for an authenticator app to scan. It
// uses medium error correction (15%): the code is read off a screen, not a worn label, and a
// lower level keeps the modules large.
func QRCodePNG(uri string) ([]byte, error) {
	if !strings.HasPrefix(uri, "otpauth://") {
		return nil, fmt.Errorf("render QR code: not an otpauth URI")
	}
	if len(uri) > maxQRContent {
		return nil, fmt.Errorf("render QR code: URI of %d bytes is longer than %d", len(uri), maxQRContent)
	}
	qr, err := qrcode.New(uri, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("render QR code: %w", err)
	}
	png, err := qr.PNG(-modulePixels)
	if err != nil {
		return nil, fmt.Errorf("render QR code: %w", err)
	}
	return png, nil
}
