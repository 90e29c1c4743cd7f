//go:build !unit

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/internal/cub/cubtest"
)

// TestRealDataErrorsComeFirst: on a real data set, studio fewshot eval
// stops before loading any model, saying what is wrong and what to do —
// never "make it with `make data`".
func TestRealDataErrorsComeFirst(t *testing.T) {
	partial := filepath.Join(t.TempDir(), "cub")
	if err := cubtest.Fixture(filepath.Join("..", ".."), partial, "partial"); err != nil {
		t.Fatal(err)
	}
	getenv := func(string) string { return "" }
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"eval", "--data", partial, "--models-dir", t.TempDir()},
			[]string{"4 of 12 images listed in images.txt are missing", "--skip-missing", "Laysan_Albatross_0001_1004.jpg"}},
		{[]string{"eval", "--data", filepath.Join(t.TempDir(), "nowhere"), "--models-dir", t.TempDir()},
			[]string{"images.txt not found", "docs/real-cub.md"}},
	}
	for _, c := range cases {
		start := time.Now()
		var out, errb bytes.Buffer
		err := runFewshot(t.Context(), c.args, getenv, &out, &errb)
		if err == nil {
			t.Fatalf("%v: no error", c.args)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q lacks %q", c.args, err, w)
			}
		}
		if strings.Contains(err.Error(), "make data") {
			t.Errorf("%v: %q tells a real data set's user to run make data", c.args, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%v: took %v", c.args, d)
		}
	}
}

// TestClassifyMeasuresAClassifierOnRealImages runs studio classify end to
// end: a copy of the sample classifier that calls three of its classes by
// the fixture's names, on the fixture's test split (cropped to the boxes).
func TestClassifyMeasuresAClassifierOnRealImages(t *testing.T) {
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	root := filepath.Join(t.TempDir(), "cub")
	if err := cubtest.Fixture(repo, root, "nested"); err != nil {
		t.Fatal(err)
	}
	models := filepath.Join(t.TempDir(), "models")
	dir := filepath.Join(models, "classifier-x")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repo, "samples", "models", "classifier-birds"))); err != nil {
		t.Fatal(err)
	}
	var man map[string]any
	readTestJSON(t, filepath.Join(dir, "model.json"), &man)
	man["name"] = "classifier-x"
	writeTestJSON(t, filepath.Join(dir, "model.json"), man)
	var cls map[string]any
	readTestJSON(t, filepath.Join(dir, "classes.json"), &cls)
	names := []string{"001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"}
	for _, c := range cls["classes"].([]any) {
		c := c.(map[string]any)
		if i := int(c["index"].(float64)); i >= 0 && i < len(names) {
			c["name"] = names[i]
		}
	}
	writeTestJSON(t, filepath.Join(dir, "classes.json"), cls)
	lib := filepath.Join(repo, ".deps", "onnxruntime", "lib", "libonnxruntime.so")
	getenv := func(k string) string {
		if k == "ORT_LIB_PATH" {
			return lib
		}
		return ""
	}
	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	if err := runClassify(t.Context(), []string{"--data", root, "--models-dir", models, "--threads", "1", "--json", out}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var rep classifyReport
	readTestJSON(t, out, &rep)
	if rep.Model != "classifier-x" || rep.Images != 3 || rep.Unknown != 1 || !rep.Cropped || rep.ImageSize != 64 ||
		rep.Top1 < 0 || rep.Top1 > rep.Top5 || rep.Top5 > 1 || rep.MeanProb <= 0 {
		t.Errorf("report %+v", rep)
	}
	// a classifier of other classes is refused before any model loads
	err := runClassify(t.Context(), []string{"--data", root, "--models-dir", filepath.Join(repo, "samples", "models"), "--model", "classifier-birds"}, getenv, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "knows none of the classes") {
		t.Errorf("classifier of another data set: %v", err)
	}
}

func readTestJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}

func writeTestJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
