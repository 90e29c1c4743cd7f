//go:build !unit

package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/generator/evaluate"
	"github.com/fgstudio/fgstudio/internal/cub/cubtest"
	"github.com/fgstudio/fgstudio/test/studiotest"
)

// runStudioEval runs `studio eval args... --json -` and decodes stdout.
func runStudioEval(t *testing.T, data string, args ...string) (map[string]any, string) {
	t.Helper()
	cmd := exec.Command(studiotest.Studio(t), append(append([]string{"eval"}, args...), "--json", "-", "--threads", "2", "--data", data)...)
	cmd.Env = testEnv(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("studio eval %v: %v\n%s", args, err, stderr.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.String())
	}
	return rep, stderr.String()
}

// TestEval runs `studio eval` on the sample world at its full class count
// (the judge's 150 seen classes and 50 held out) with 6 images a class at
// 64 px: two test images of each seen class, six of each held-out one.
func TestEval(t *testing.T) {
	data := filepath.Join(t.TempDir(), "birds")
	if _, err := cubtest.Make(studiotest.Repo(t), data, "--per-class", "6", "--size", "64", "--workers", "2"); err != nil {
		t.Fatal(err)
	}
	t.Run("json", func(t *testing.T) { testEvalJSON(t, data) })
	t.Run("repeats", func(t *testing.T) { testEvalRepeats(t, data) })
	t.Run("ladder", func(t *testing.T) { testEvalLadder(t, data) })
}

// testEvalJSON measures both sample generators with the sample judge
// (real ONNX Runtime, small counts) and checks that every key is there,
// beside its reference, in range; that a class model's text-only keys are
// null with a reason; and that progress went to stderr.
func testEvalJSON(t *testing.T, data string) {
	textOnly := map[string]bool{"attr_agreement_heldout": true, "edit_success": true, "edit_success_real": true,
		"edit_keep": true, "edit_keep_real": true, "r_precision": true}
	for _, model := range []string{"attngan-birds", "cvaegan-birds"} {
		t.Run(model, func(t *testing.T) {
			rep, stderr := runStudioEval(t, data, "--model", model, "--images", "60", "--heldout", "30", "--edits", "20", "--batch", "16")
			if !strings.Contains(stderr, "eval: generate: seen-class requests") || !strings.Contains(stderr, "eval: judge: generated") {
				t.Errorf("no progress on stderr:\n%s", stderr)
			}
			if rep["model"] != model || rep["judge"] != "judge-birds" || !strings.Contains(rep["fd_space"].(string), "judge-birds features") {
				t.Errorf("report names model %v, judge %v, fd space %v", rep["model"], rep["judge"], rep["fd_space"])
			}
			if rep["images"].(float64) != 60 || rep["skipped"].(float64) != 0 || rep["reference_images"].(float64) < 100 {
				t.Errorf("images %v, skipped %v, reference %v", rep["images"], rep["skipped"], rep["reference_images"])
			}
			reasons, _ := rep["null_reasons"].(map[string]any)
			for _, k := range evaluate.Keys {
				v, present := rep[k]
				if !present {
					t.Errorf("key %s missing", k)
					continue
				}
				if model == "cvaegan-birds" && textOnly[k] {
					if v != nil || reasons[k] == nil || !strings.Contains(reasons[k].(string), "class-conditioned") {
						t.Errorf("%s: %v (reason %v), want null with a reason", k, v, reasons[k])
					}
					continue
				}
				x, ok := v.(float64)
				if !ok {
					t.Errorf("%s = %v (reason %v), want a number", k, v, reasons[k])
					continue
				}
				if strings.HasPrefix(k, "fd") {
					if x < 0 || math.IsInf(x, 0) {
						t.Errorf("%s = %g, want ≥ 0", k, x)
					}
				} else if x < 0 || x > 1 {
					t.Errorf("%s = %g, want in [0, 1]", k, x)
				}
			}
			if model == "attngan-birds" && (rep["edits"].(float64) < 10 || rep["heldout_images"].(float64) != 30) {
				t.Errorf("edits %v, held-out images %v", rep["edits"], rep["heldout_images"])
			}
			t.Logf("%s: fd %v (floor %v), precision %v/%v, recall %v/%v, top1 %v/%v, r_precision %v/%v", model,
				rep["fd"], rep["fd_real_floor"], rep["precision"], rep["precision_real"], rep["recall"], rep["recall_real"],
				rep["top1"], rep["top1_real"], rep["r_precision"], rep["r_precision_real"])
		})
	}
}

// testEvalRepeats: the same flags give the same numbers.
func testEvalRepeats(t *testing.T, data string) {
	args := []string{"--model", "cvaegan-birds", "--images", "20", "--heldout", "10", "--quiet"}
	a, _ := runStudioEval(t, data, args...)
	b, _ := runStudioEval(t, data, args...)
	for _, k := range evaluate.Keys {
		if ja, jb := jsonOf(a[k]), jsonOf(b[k]); ja != jb {
			t.Errorf("%s: %s then %s", k, ja, jb)
		}
	}
}

func jsonOf(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

// testEvalLadder runs the degradation ladder with the sample judge and
// checks its shape: six rungs, every metric on each, the order check.
// Whether the judge ranks them in order is the judge's result, reported,
// not assumed here.
func testEvalLadder(t *testing.T, data string) {
	md := filepath.Join(t.TempDir(), "ladder.md")
	rep, _ := runStudioEval(t, data, "--ladder", "--images", "60", "--markdown", md)
	rungs := rep["rungs"].([]any)
	if len(rungs) != 6 || len(rep["required"].([]any)) != 7 {
		t.Fatalf("%d rungs, %d required pairs", len(rungs), len(rep["required"].([]any)))
	}
	var names []string
	for _, r := range rungs {
		row := r.(map[string]any)
		names = append(names, row["name"].(string))
		for _, m := range evaluate.LadderMetrics {
			if _, ok := row["metrics"].(map[string]any)[m].(float64); !ok {
				t.Errorf("rung %s: %s = %v", row["name"], m, row["metrics"].(map[string]any)[m])
			}
		}
	}
	if strings.Join(names, ",") != "clean,blur1,noise8,noise16,lowpass32,lowpass16" {
		t.Errorf("rungs %v", names)
	}
	inOrder, breaks := rep["in_order"].(bool), rep["breaks"].([]any)
	if inOrder != (len(breaks) == 0) {
		t.Errorf("in_order %v with %d breaks", inOrder, len(breaks))
	}
	raw, err := os.ReadFile(md)
	if err != nil || !strings.Contains(string(raw), "| lowpass16 (") || !strings.Contains(string(raw), "order") {
		t.Errorf("markdown table: %v\n%s", err, raw)
	}
	t.Logf("ladder in order: %v; breaks: %v", inOrder, breaks)
}

// TestEvalUsage: what is not a generator or not a judge is refused with
// exit code 2 before anything runs.
func TestEvalUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--model"},
		{[]string{"--model", "classifier-birds"}, "not a generator"},
		{[]string{"--model", "attngan-birds", "--judge", "cvaegan-birds"}, "not an evaluator"},
		{[]string{"--model", "attngan-birds", "--ladder"}, "give one"},
		{[]string{"--model", "judge-birds"}, "not a generator"},
	} {
		cmd := exec.Command(studiotest.Studio(t), append([]string{"eval"}, c.args...)...)
		cmd.Env = testEnv(t)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("eval %v: %v\n%s", c.args, err, out)
		}
	}
}
