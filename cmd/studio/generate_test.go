package main

import "testing"

// TestAttentionFileNames: a word repeated in a prompt gets one file per
// place, and a coarser stage's maps never take the finest stage's names.
func TestAttentionFileNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range []struct {
		stage, pos int
		word, want string
	}{
		{1, 0, "a", "m_7_att_0_a.png"},
		{1, 1, "bird", "m_7_att_1_bird.png"},
		{1, 2, "a", "m_7_att_2_a.png"},
		{0, 0, "a", "m_7_att0_0_a.png"},
		{0, 2, "a", "m_7_att0_2_a.png"},
	} {
		got := attentionFile("m", 7, c.stage, 1, c.pos, c.word)
		if got != c.want {
			t.Errorf("stage %d position %d %q: %s, want %s", c.stage, c.pos, c.word, got, c.want)
		}
		if seen[got] {
			t.Errorf("%s named twice", got)
		}
		seen[got] = true
	}
}
