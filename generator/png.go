package generator

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"math"
)

// provenanceKey is the keyword of the PNG tEXt chunk that carries an
// image's generation parameters as JSON.
const provenanceKey = "fgstudio"

// Provenance is what an image says about how it was made: enough to trace
// it and to make it again.
type Provenance struct {
	Model        string  `json:"model"`
	ModelVersion string  `json:"model_version"`
	GraphSHA256  string  `json:"graph_sha256"`
	Runtime      string  `json:"runtime"`
	Kind         string  `json:"kind"`
	Prompt       string  `json:"prompt,omitempty"`
	Class        string  `json:"class,omitempty"`
	Seed         uint64  `json:"seed"`
	Truncation   float64 `json:"truncation,omitempty"`
	Scores       *Scores `json:"scores,omitempty"`
}

// ToImage turns one CHW float image in [-1, 1] into 8-bit RGB:
// pixel = round((x + 1) · 127.5), clamped.
func ToImage(chw []float32, size int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	plane := size * size
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			i := y*size + x
			o := img.PixOffset(x, y)
			for c := 0; c < 3; c++ {
				img.Pix[o+c] = toByte(chw[c*plane+i])
			}
			img.Pix[o+3] = 255
		}
	}
	return img
}

func toByte(v float32) uint8 {
	f := math.Round((float64(v) + 1) * 127.5)
	switch {
	case f != f || f < 0: // NaN too
		return 0
	case f > 255:
		return 255
	}
	return uint8(f)
}

// EncodePNG writes img as PNG with p in a tEXt chunk right after IHDR.
func EncodePNG(img image.Image, p Provenance) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	meta, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode provenance: %w", err)
	}
	return insertText(buf.Bytes(), provenanceKey, meta)
}

// ReadProvenance extracts the generation parameters from a studio PNG.
func ReadProvenance(data []byte) (Provenance, error) {
	var p Provenance
	text, err := findText(data, provenanceKey)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(text, &p); err != nil {
		return p, fmt.Errorf("provenance chunk: %w", err)
	}
	return p, nil
}

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// insertText adds a tEXt chunk after IHDR (the first chunk). json.Marshal
// escapes non-ASCII, so the text is valid Latin-1 as tEXt requires.
func insertText(pngData []byte, key string, text []byte) ([]byte, error) {
	const ihdrEnd = 8 + 4 + 4 + 13 + 4
	if len(pngData) < ihdrEnd || !bytes.Equal(pngData[:8], pngMagic) || string(pngData[12:16]) != "IHDR" {
		return nil, errors.New("not a PNG with IHDR first")
	}
	body := append(append([]byte(key), 0), text...)
	var chunk bytes.Buffer
	binary.Write(&chunk, binary.BigEndian, uint32(len(body)))
	chunk.WriteString("tEXt")
	chunk.Write(body)
	crc := crc32.NewIEEE()
	crc.Write([]byte("tEXt"))
	crc.Write(body)
	binary.Write(&chunk, binary.BigEndian, crc.Sum32())

	out := make([]byte, 0, len(pngData)+chunk.Len())
	out = append(out, pngData[:ihdrEnd]...)
	out = append(out, chunk.Bytes()...)
	return append(out, pngData[ihdrEnd:]...), nil
}

// findText walks the chunks for a tEXt chunk with the keyword.
func findText(data []byte, key string) ([]byte, error) {
	if len(data) < 8 || !bytes.Equal(data[:8], pngMagic) {
		return nil, errors.New("not a PNG")
	}
	for off := 8; off+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[off:]))
		typ := string(data[off+4 : off+8])
		if n < 0 || off+12+n > len(data) {
			return nil, errors.New("truncated PNG chunk")
		}
		body := data[off+8 : off+8+n]
		if typ == "tEXt" {
			if k, v, ok := bytes.Cut(body, []byte{0}); ok && string(k) == key {
				return v, nil
			}
		}
		if typ == "IEND" {
			break
		}
		off += 12 + n
	}
	return nil, fmt.Errorf("no %q text chunk", key)
}

// decodeImage is image.Decode of a PNG, for tests and morph inputs.
func decodeImage(data []byte) (image.Image, error) {
	return png.Decode(bytes.NewReader(data))
}
