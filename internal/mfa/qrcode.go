package mfa

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	"github.com/boombuler/barcode/qr"
)

// QR code limits. An otpauth URI with a long issuer and account is under 300 bytes; the bound
// keeps a caller from asking the server to render megabytes.
const (
	maxQRContent = 1024
	// modulePixels is the side of one QR module in pixels. Whole pixels per module keep the
	// edges sharp (a fixed image size scales modules by fractions and blurs them); 6 makes a
	// typical otpauth code about 400 pixels wide, a few kilobytes of PNG.
	modulePixels = 6
	// quietZone is the light border, in modules, that ISO/IEC 18004 asks for around a code:
	// without it a scanner can miss the finder patterns against a dark page.
	quietZone = 4
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
	code, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		return nil, fmt.Errorf("render QR code: %w", err)
	}
	// The encoder gives one pixel per module and no border; draw each module as a square of
	// whole pixels inside the quiet zone, in a two-colour palette (a small PNG).
	n := code.Bounds().Dx()
	side := (n + 2*quietZone) * modulePixels
	img := image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.White, color.Black})
	for y := range n {
		for x := range n {
			if r, _, _, _ := code.At(x, y).RGBA(); r != 0 {
				continue // a light module: the palette's first colour already
			}
			x0, y0 := (x+quietZone)*modulePixels, (y+quietZone)*modulePixels
			for py := y0; py < y0+modulePixels; py++ {
				for px := x0; px < x0+modulePixels; px++ {
					img.SetColorIndex(px, py, 1)
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("render QR code: %w", err)
	}
	return buf.Bytes(), nil
}
