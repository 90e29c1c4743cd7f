//go:build !unit

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/test/studiotest"
)

// TestGenerateIsIdenticalAcrossProcesses runs `studio generate` in two
// processes with different thread counts and batch compositions: the image
// of one seed has the same bytes in both.
func TestGenerateIsIdenticalAcrossProcesses(t *testing.T) {
	models := studiotest.Models(t)
	cases := []struct{ model, flag, value string }{
		{"attngan-birds", "--prompt", "this bird has a red crown and black wings with a short pointed bill"},
		{"cvaegan-birds", "--class", "2"}, // class 1 is held out
	}
	for _, c := range cases {
		t.Run(c.model, func(t *testing.T) {
			run := func(n, seed, threads string) string {
				out := t.TempDir()
				cmd := exec.CommandContext(t.Context(), studiotest.Studio(t), "generate", "--model", c.model, c.flag, c.value,
					"--n", n, "--seed", seed, "--threads", threads, "--models-dir", models, "--out", out)
				cmd.Env = append(os.Environ(), "ORT_LIB_PATH="+studiotest.ORTLib(t))
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("studio generate: %v\n%s", err, b)
				}
				return out
			}
			a := run("3", "10", "1") // seeds 10, 11, 12 in one batch
			b := run("1", "12", "2") // seed 12 alone
			name := c.model + "_12.png"
			pa, err := os.ReadFile(filepath.Join(a, name))
			if err != nil {
				t.Fatal(err)
			}
			pb, err := os.ReadFile(filepath.Join(b, name))
			if err != nil {
				t.Fatal(err)
			}
			if len(pa) < 100 || !bytes.Equal(pa, pb) {
				t.Fatalf("seed 12: %d bytes in a batch of 3 on 1 thread, %d bytes alone on 2 threads; want identical", len(pa), len(pb))
			}
		})
	}
}

// TestGenerateWritesOneAttentionMapPerWord: a prompt with a repeated word
// ("a" twice) gets one attention file per kept word, named by its place,
// as many as scores.json lists.
func TestGenerateWritesOneAttentionMapPerWord(t *testing.T) {
	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), studiotest.Studio(t), "generate", "--model", "attngan-birds",
		"--prompt", "a bird with a red crown and a short bill", "--n", "1", "--seed", "3", "--threads", "1",
		"--models-dir", studiotest.Models(t), "--out", out)
	cmd.Env = append(os.Environ(), "ORT_LIB_PATH="+studiotest.ORTLib(t))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("studio generate: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(filepath.Join(out, "scores.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Words []string `json:"attention_words"`
	}
	if err := json.Unmarshal(raw, &rows); err != nil || len(rows) != 1 {
		t.Fatalf("scores.json: %v %s", err, raw)
	}
	words := rows[0].Words
	if strings.Count(" "+strings.Join(words, " ")+" ", " a ") < 2 {
		t.Fatalf("the prompt's repeated word was not kept twice: %v", words)
	}
	for k, w := range words {
		if _, err := os.Stat(filepath.Join(out, fmt.Sprintf("attngan-birds_3_att_%d_%s.png", k, w))); err != nil {
			t.Errorf("word %d (%s): %v", k, w, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(out, "attngan-birds_3_att*.png"))
	if len(files) != len(words) {
		t.Errorf("%d attention files for %d words: %v", len(files), len(words), files)
	}
}
