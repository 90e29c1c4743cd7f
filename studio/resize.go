package studio

import (
	"image"
	"image/color"
)

// squareResize takes the centre square of img and resamples it to
// size×size by averaging the source pixels each target pixel covers
// (nearest pixel when enlarging); colours are those of
// color.NRGBAModel, alpha is dropped (the result is opaque).
//
// It reads the source one row at a time straight from the pixel buffer of
// the common decoded types (NRGBA, RGBA, 16-bit NRGBA64/RGBA64, YCbCr,
// Gray, Gray16, Paletted) and sums into one row of target columns, so it
// allocates O(side + size) beyond the output and does no per-pixel
// interface call; other types go through At, with the same result.
func squareResize(img image.Image, size int) *image.NRGBA {
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	x0, y0 := b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2
	out := image.NewNRGBA(image.Rect(0, 0, size, size))
	span := func(t int) (int, int) { return t * side / size, max((t+1)*side/size, t*side/size+1) }
	cols := make([][2]int, size)
	for tx := range cols {
		cols[tx][0], cols[tx][1] = span(tx)
	}
	read := rowReader(img, x0, side)
	row := make([]uint8, 3*side)
	sum := make([]uint64, 3*size)
	for ty := 0; ty < size; ty++ {
		sy0, sy1 := span(ty)
		clear(sum)
		for sy := sy0; sy < sy1; sy++ {
			read(y0+sy, row)
			for tx, c := range cols {
				var r, g, bl uint64
				for i := 3 * c[0]; i < 3*c[1]; i += 3 {
					r, g, bl = r+uint64(row[i]), g+uint64(row[i+1]), bl+uint64(row[i+2])
				}
				sum[3*tx], sum[3*tx+1], sum[3*tx+2] = sum[3*tx]+r, sum[3*tx+1]+g, sum[3*tx+2]+bl
			}
		}
		dst := out.Pix[ty*out.Stride:]
		for tx, c := range cols {
			n := uint64((sy1 - sy0) * (c[1] - c[0]))
			dst[4*tx], dst[4*tx+1], dst[4*tx+2], dst[4*tx+3] = uint8(sum[3*tx]/n), uint8(sum[3*tx+1]/n), uint8(sum[3*tx+2]/n), 255
		}
	}
	return out
}

// rowReader returns a function that writes the RGB (NRGBA colour model)
// of pixels x0..x0+n-1 of row y into dst (3n bytes).
func rowReader(img image.Image, x0, n int) func(y int, dst []uint8) {
	switch m := img.(type) {
	case *image.NRGBA:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for i := range n {
				dst[3*i], dst[3*i+1], dst[3*i+2] = src[4*i], src[4*i+1], src[4*i+2]
			}
		}
	case *image.RGBA:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for i := range n {
				p := src[4*i : 4*i+4]
				if p[3] == 0xff {
					dst[3*i], dst[3*i+1], dst[3*i+2] = p[0], p[1], p[2]
					continue
				}
				a := uint32(p[3]) * 0x101
				dst[3*i], dst[3*i+1], dst[3*i+2] = unpremul(uint32(p[0])*0x101, uint32(p[1])*0x101, uint32(p[2])*0x101, a)
			}
		}
	case *image.NRGBA64:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for i := range n {
				p := src[8*i : 8*i+8]
				r, g, bl, a := be16(p[0:]), be16(p[2:]), be16(p[4:]), be16(p[6:])
				if a == 0xffff {
					dst[3*i], dst[3*i+1], dst[3*i+2] = uint8(r>>8), uint8(g>>8), uint8(bl>>8)
					continue
				}
				// As NRGBA64.RGBA premultiplies, then NRGBAModel divides.
				dst[3*i], dst[3*i+1], dst[3*i+2] = unpremul(r*a/0xffff, g*a/0xffff, bl*a/0xffff, a)
			}
		}
	case *image.RGBA64:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for i := range n {
				p := src[8*i : 8*i+8]
				dst[3*i], dst[3*i+1], dst[3*i+2] = unpremul(be16(p[0:]), be16(p[2:]), be16(p[4:]), be16(p[6:]))
			}
		}
	case *image.Gray:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for i := range n {
				v := src[i]
				dst[3*i], dst[3*i+1], dst[3*i+2] = v, v, v
			}
		}
	case *image.Gray16:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for i := range n {
				v := src[2*i] // the high byte: (v16 >> 8)
				dst[3*i], dst[3*i+1], dst[3*i+2] = v, v, v
			}
		}
	case *image.YCbCr:
		return func(y int, dst []uint8) {
			for i := range n {
				yi, ci := m.YOffset(x0+i, y), m.COffset(x0+i, y)
				dst[3*i], dst[3*i+1], dst[3*i+2] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			}
		}
	case *image.Paletted:
		pal := make([][3]uint8, 256)
		for k, c := range m.Palette {
			nc := color.NRGBAModel.Convert(c).(color.NRGBA)
			pal[k] = [3]uint8{nc.R, nc.G, nc.B}
		}
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for i := range n {
				p := pal[src[i]]
				dst[3*i], dst[3*i+1], dst[3*i+2] = p[0], p[1], p[2]
			}
		}
	}
	return func(y int, dst []uint8) {
		for i := range n {
			c := color.NRGBAModel.Convert(img.At(x0+i, y)).(color.NRGBA)
			dst[3*i], dst[3*i+1], dst[3*i+2] = c.R, c.G, c.B
		}
	}
}

func be16(p []uint8) uint32 { return uint32(p[0])<<8 | uint32(p[1]) }

// unpremul is color.NRGBAModel's conversion of premultiplied 16-bit
// values, to 8 bits.
func unpremul(r, g, b, a uint32) (uint8, uint8, uint8) {
	switch a {
	case 0xffff:
		return uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)
	case 0:
		return 0, 0, 0
	}
	return uint8((r * 0xffff / a) >> 8), uint8((g * 0xffff / a) >> 8), uint8((b * 0xffff / a) >> 8)
}
