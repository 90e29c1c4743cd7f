package generator

import (
	"math"
	"math/rand/v2"
)

// Noise is the contract's noise generator: a PCG-DXSM stream (Go's
// math/rand/v2 PCG) seeded with (seed, noiseStream), turned into standard
// normals by the Box–Muller transform, both values of each pair used in
// order. An image's noise depends on its seed alone, never on the batch
// it runs in.
//
//	u1 = 1 - Float64()            // in (0, 1], so log(u1) is finite
//	u2 = Float64()
//	r  = sqrt(-2 ln u1)
//	n0 = r cos(2π u2), n1 = r sin(2π u2)
//
// For AttnGAN the first Z normals are z_code and the next C are ca_eps;
// for CVAE-GAN the first Z are z.
type Noise struct {
	rng      *rand.Rand
	spare    float64
	hasSpare bool
}

// noiseStream is PCG's second seed word; fixed so that a seed means the
// same noise forever.
const noiseStream = 0x9e3779b97f4a7c15

// NewNoise starts the stream of one image.
func NewNoise(seed uint64) *Noise {
	return &Noise{rng: rand.New(rand.NewPCG(seed, noiseStream))}
}

// Normal returns the next standard normal value.
func (n *Noise) Normal() float32 {
	if n.hasSpare {
		n.hasSpare = false
		return float32(n.spare)
	}
	u1 := 1 - n.rng.Float64()
	u2 := n.rng.Float64()
	r := math.Sqrt(-2 * math.Log(u1))
	s, c := math.Sincos(2 * math.Pi * u2)
	n.spare, n.hasSpare = r*s, true
	return float32(r * c)
}

// Fill writes len(dst) normals.
func (n *Noise) Fill(dst []float32) {
	for i := range dst {
		dst[i] = n.Normal()
	}
}
