package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

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

// TestModelPickedWhenOneFits: without --model, the one model that
// generates from what the flags give is used; none or several is a usage
// error that names them.
func TestModelPickedWhenOneFits(t *testing.T) {
	ms := []modelInput{{"attngan-birds", "prompt"}, {"cvaegan-birds", "class"}, {"classifier-birds", ""}}
	cases := []struct {
		name   string
		models []modelInput
		prompt string
		want   string // the model, or the error's text
		err    bool
	}{
		{"prompt", ms, "a red bird", "attngan-birds", false},
		{"class", ms, "", "cvaegan-birds", false},
		{"none fits", ms[1:], "a red bird", "no model of here generates from --prompt", true},
		{"two fit", append(ms, modelInput{"attngan-flowers", "prompt"}), "a red bird", "attngan-birds, attngan-flowers fit --prompt", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pickModel(c.models, c.prompt, "here")
			if c.err {
				var ue *usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("%q %v, want a usage error with %q", got, err, c.want)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("%q %v, want %s", got, err, c.want)
			}
		})
	}
	// The sample models: one text model and one class model.
	for prompt, want := range map[string]string{"a red bird": "attngan-birds", "": "cvaegan-birds"} {
		if got, err := pickLocalModel(filepath.Join("..", "..", "samples", "models"), prompt); err != nil || got != want {
			t.Errorf("sample models, prompt %q: %q %v, want %s", prompt, got, err, want)
		}
	}
}
