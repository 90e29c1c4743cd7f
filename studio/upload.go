package studio

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/jpeg" // uploads may be JPEG
	"image/png"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/studio/api"
)

// minImageSide is the smallest side of an accepted upload.
const minImageSide = 16

// maxSpecImageBytes keeps a normalised upload well inside the queue's
// limit on a job spec (64 KiB of JSON, where bytes travel as base64).
const maxSpecImageBytes = 40 << 10

// normaliseUpload checks an uploaded image and re-encodes it as the model
// sees it: the centre square, resized to size×size, as PNG (or JPEG when
// the PNG would not fit in a job). It refuses anything but PNG and JPEG,
// images above maxBytes or maxPixels (checked from the header, before the
// pixels are decoded, so a decompression bomb costs nothing), tiny
// images and truncated or corrupt files — each with a problem naming
// field.
func normaliseUpload(data []byte, field string, size, maxBytes, maxPixels int) ([]byte, error) {
	format, err := checkUpload(data, field, maxBytes, maxPixels)
	if err != nil {
		return nil, err
	}
	return decodeUpload(data, field, format, size)
}

// checkUpload is the part of normaliseUpload that reads no pixels: size
// in bytes, format, dimensions from the header. It returns the format.
func checkUpload(data []byte, field string, maxBytes, maxPixels int) (string, error) {
	if len(data) == 0 {
		return "", required(field, ": a PNG or JPEG image")
	}
	if len(data) > maxBytes {
		return "", problem(fiber.StatusRequestEntityTooLarge, api.TypeImageTooLarge, field,
			"the image is %d bytes; at most %d are accepted", len(data), maxBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return "", problem(fiber.StatusUnprocessableEntity, api.TypeInvalidImage, field,
			"not a PNG or JPEG image (%s)", clip(err.Error(), 120))
	}
	if format != "png" && format != "jpeg" {
		return "", problem(fiber.StatusUnprocessableEntity, api.TypeInvalidImage, field,
			"%s images are not accepted; send PNG or JPEG", format)
	}
	if cfg.Width < minImageSide || cfg.Height < minImageSide {
		return "", problem(fiber.StatusUnprocessableEntity, api.TypeInvalidImage, field,
			"the image is %dx%d; at least %dx%d is needed", cfg.Width, cfg.Height, minImageSide, minImageSide)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return "", problem(fiber.StatusRequestEntityTooLarge, api.TypeImageTooLarge, field,
			"the image is %dx%d; at most %d pixels are accepted", cfg.Width, cfg.Height, maxPixels)
	}
	return format, nil
}

// decodeUpload decodes a checked upload and re-encodes its centre square
// at size×size. Its memory is the decoded pixels (at most maxPixels, up
// to 8 bytes each for 16-bit PNG) plus O(side) for the resize.
func decodeUpload(data []byte, field, format string, size int) ([]byte, error) {
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, problem(fiber.StatusUnprocessableEntity, api.TypeInvalidImage, field,
			"the %s image is truncated or corrupt (%s)", format, clip(err.Error(), 120))
	}
	sq := squareResize(img, size)
	img = nil // the decoded pixels may go before the encodes
	var buf bytes.Buffer
	if err := png.Encode(&buf, sq); err != nil {
		return nil, fmt.Errorf("encode upload: %w", err)
	}
	for q := 92; buf.Len() > maxSpecImageBytes && q >= 50; q -= 14 {
		buf.Reset()
		if err := jpeg.Encode(&buf, sq, &jpeg.Options{Quality: q}); err != nil {
			return nil, fmt.Errorf("encode upload: %w", err)
		}
	}
	return buf.Bytes(), nil
}

// decodeGate bounds the uploads decoded at once: a decode holds up to
// 8 bytes per pixel of the upload, and runs on the cores the API (and, in
// the one-process studio, the graphs) need. A request waits up to wait for
// a slot, then is refused with 503 and Retry-After.
type decodeGate struct {
	slots chan struct{}
	wait  time.Duration
}

func newDecodeGate(n int, wait time.Duration) *decodeGate {
	return &decodeGate{slots: make(chan struct{}, n), wait: wait}
}

// acquire takes a slot; release it with the returned function.
func (g *decodeGate) acquire(ctx context.Context, field string) (func(), error) {
	release := func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return release, nil
	default:
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, &retryAfter{problem(fiber.StatusServiceUnavailable, api.TypeUnavailable, field,
			"%d uploaded images are being decoded, the most at once, and none finished within %s; retry in a second",
			cap(g.slots), g.wait), time.Second}
	}
}

// normaliseUpload within the server's bound on concurrent decodes.
func (s *Server) normaliseUpload(ctx context.Context, data []byte, field string, size int) ([]byte, error) {
	format, err := checkUpload(data, field, s.lim.MaxImageBytes, s.lim.MaxImagePixels)
	if err != nil {
		return nil, err
	}
	release, err := s.decodes.acquire(ctx, field)
	if err != nil {
		return nil, err
	}
	defer release()
	return decodeUpload(data, field, format, size)
}
