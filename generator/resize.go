package generator

// resizeBatch resizes b CHW images (3 channels) from side `from` to side
// `to` with bilinear interpolation, half-pixel centres and edge clamping
// (PyTorch's interpolate(mode="bilinear", align_corners=False)).
func resizeBatch(src []float32, b, from, to int) []float32 {
	dst := make([]float32, b*3*to*to)
	scale := float64(from) / float64(to)
	type tap struct {
		i0, i1 int
		w1     float32
	}
	taps := make([]tap, to)
	for o := range taps {
		x := (float64(o)+0.5)*scale - 0.5
		if x < 0 {
			x = 0
		}
		i0 := int(x)
		if i0 > from-1 {
			i0 = from - 1
		}
		i1 := min(i0+1, from-1)
		taps[o] = tap{i0, i1, float32(x - float64(i0))}
	}
	for p := 0; p < b*3; p++ {
		s := src[p*from*from : (p+1)*from*from]
		d := dst[p*to*to : (p+1)*to*to]
		for y, ty := range taps {
			r0, r1 := s[ty.i0*from:], s[ty.i1*from:]
			for x, tx := range taps {
				top := r0[tx.i0]*(1-tx.w1) + r0[tx.i1]*tx.w1
				bot := r1[tx.i0]*(1-tx.w1) + r1[tx.i1]*tx.w1
				d[y*to+x] = top*(1-ty.w1) + bot*ty.w1
			}
		}
	}
	return dst
}
