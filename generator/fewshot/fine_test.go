package fewshot

import (
	"math/rand/v2"
	"testing"
)

// TestFineEpisodesAreNearestInAttributes: a fine-grained episode is an
// anchor and the classes that differ from it in the fewest attribute
// groups; anchors come from Anchors only.
func TestFineEpisodesAreNearestInAttributes(t *testing.T) {
	g := gaussianGroup(2, 6, 30, 0, faithful)
	a := func(crown, wing, bill string) map[string]string {
		return map[string]string{"crown": crown, "wing": wing, "bill": bill}
	}
	g.Attributes = map[string]map[string]string{
		"A": a("red", "blue", "cone"), "B": a("red", "blue", "hook"), "C": a("red", "grey", "cone"),
		"D": a("black", "white", "needle"), "E": a("white", "white", "needle"), "F": a("white", "black", "needle"),
	}
	g.Anchors = map[string]bool{"A": true, "D": true}
	rng := rand.New(rand.NewPCG(1, 2))
	classes := eligible(g, Config{Shots: []int{1}, Queries: 5})
	for i := 0; i < 50; i++ {
		e := draw(rng, g, classes, Config{Ways: 3, Queries: 5, Draw: DrawFine}, 1)
		set := map[string]bool{}
		for _, c := range e.classes {
			set[c] = true
		}
		switch e.classes[0] {
		case "A":
			if !set["B"] || !set["C"] {
				t.Fatalf("episode around A: %v", e.classes)
			}
		case "D":
			if !set["E"] || !set["F"] {
				t.Fatalf("episode around D: %v", e.classes)
			}
		default:
			t.Fatalf("anchor %s is not an anchor", e.classes[0])
		}
	}
	res, err := Evaluate(t.Context(), g, Config{Ways: 3, Shots: []int{1}, Episodes: 20, Queries: 5})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; r.Draw != DrawFine || r.AttributeDistance < 1 || r.AttributeDistance > 2 {
		t.Errorf("draw %s, attribute distance %v; want fine, between 1 and 2", r.Draw, r.AttributeDistance)
	}
	g.Attributes = nil
	if _, err := Evaluate(t.Context(), g, Config{Shots: []int{1}, Episodes: 5, Draw: DrawFine}); err == nil {
		t.Error("fine episodes without attributes: no error")
	}
}

// TestCenteringTakesOutACommonShift: synthetic images of the right
// classes moved far in one direction help less as they are than centred
// on the real support; every variant runs on the same episodes.
func TestCenteringTakesOutACommonShift(t *testing.T) {
	shifted := func(rng *rand.Rand, mean []float64) []float32 {
		f := faithful(rng, mean)
		f[1] += 60
		return f
	}
	g := gaussianGroup(3, 10, 40, 30, shifted)
	cfg := Config{Shots: []int{1}, Episodes: 200, Draw: DrawRandom}
	plain, err := Evaluate(t.Context(), g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Center = true
	centred, err := Evaluate(t.Context(), g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Center, cfg.Mix = false, 0.2
	mixed, err := Evaluate(t.Context(), g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gain plain %+.3f, centred %+.3f, share 0.2 %+.3f", plain[0].Gain.Mean, centred[0].Gain.Mean, mixed[0].Gain.Mean)
	if plain[0].Real != centred[0].Real || plain[0].Real != mixed[0].Real {
		t.Error("variants ran on other episodes")
	}
	if !(centred[0].Gain.Mean-centred[0].Gain.CI95 > 0) || !(plain[0].Gain.Mean < centred[0].Gain.Mean) {
		t.Errorf("gains: plain %+v, centred %+v, share 0.2 %+v", plain[0].Gain, centred[0].Gain, mixed[0].Gain)
	}
}

// TestNearestToSupportChoosesTheRightImages: of a synthetic pool where
// most images are noise, those nearest to the real support help more than
// the whole pool.
func TestNearestToSupportChoosesTheRightImages(t *testing.T) {
	mostlyNoise := func(rng *rand.Rand, mean []float64) []float32 {
		if rng.IntN(4) == 0 {
			return faithful(rng, mean)
		}
		f := make([]float32, len(mean))
		for j := range f {
			f[j] = float32(4*rng.NormFloat64() + 2)
		}
		return f
	}
	g := gaussianGroup(4, 10, 40, 40, mostlyNoise)
	cfg := Config{Shots: []int{1}, Episodes: 200, Draw: DrawRandom}
	all, err := Evaluate(t.Context(), g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Nearest = 8
	near, err := Evaluate(t.Context(), g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gain of the whole pool %+.3f, of the 8 nearest to the support %+.3f", all[0].Gain.Mean, near[0].Gain.Mean)
	if !(near[0].Gain.Mean > all[0].Gain.Mean) || near[0].Nearest != 8 {
		t.Errorf("nearest %+v, all %+v", near[0].Gain, all[0].Gain)
	}
}
