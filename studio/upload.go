package studio

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	_ "image/jpeg" // uploads may be JPEG
	"image/png"

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
	if len(data) == 0 {
		return nil, required(field, ": a PNG or JPEG image")
	}
	if len(data) > maxBytes {
		return nil, problem(fiber.StatusRequestEntityTooLarge, api.TypeImageTooLarge, field,
			"the image is %d bytes; at most %d are accepted", len(data), maxBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, problem(fiber.StatusUnprocessableEntity, api.TypeInvalidImage, field,
			"not a PNG or JPEG image (%s)", clip(err.Error(), 120))
	}
	if format != "png" && format != "jpeg" {
		return nil, problem(fiber.StatusUnprocessableEntity, api.TypeInvalidImage, field,
			"%s images are not accepted; send PNG or JPEG", format)
	}
	if cfg.Width < minImageSide || cfg.Height < minImageSide {
		return nil, problem(fiber.StatusUnprocessableEntity, api.TypeInvalidImage, field,
			"the image is %dx%d; at least %dx%d is needed", cfg.Width, cfg.Height, minImageSide, minImageSide)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return nil, problem(fiber.StatusRequestEntityTooLarge, api.TypeImageTooLarge, field,
			"the image is %dx%d; at most %d pixels are accepted", cfg.Width, cfg.Height, maxPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, problem(fiber.StatusUnprocessableEntity, api.TypeInvalidImage, field,
			"the %s image is truncated or corrupt (%s)", format, clip(err.Error(), 120))
	}
	sq := squareResize(img, size)
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

// squareResize takes the centre square of img and resamples it to
// size×size by averaging the source pixels each target pixel covers
// (nearest pixel when enlarging).
func squareResize(img image.Image, size int) *image.NRGBA {
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	x0, y0 := b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2
	out := image.NewNRGBA(image.Rect(0, 0, size, size))
	for ty := 0; ty < size; ty++ {
		sy0, sy1 := ty*side/size, max((ty+1)*side/size, ty*side/size+1)
		for tx := 0; tx < size; tx++ {
			sx0, sx1 := tx*side/size, max((tx+1)*side/size, tx*side/size+1)
			var r, g, bl, n uint64
			for sy := sy0; sy < sy1; sy++ {
				for sx := sx0; sx < sx1; sx++ {
					c := color.NRGBAModel.Convert(img.At(x0+sx, y0+sy)).(color.NRGBA)
					r, g, bl, n = r+uint64(c.R), g+uint64(c.G), bl+uint64(c.B), n+1
				}
			}
			out.SetNRGBA(tx, ty, color.NRGBA{R: uint8(r / n), G: uint8(g / n), B: uint8(bl / n), A: 255})
		}
	}
	return out
}
