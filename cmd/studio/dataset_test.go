//go:build !unit

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/generator/dataset"
	"github.com/fgstudio/fgstudio/internal/cub/cubtest"
	"github.com/fgstudio/fgstudio/test/studiotest"
)

func TestMain(m *testing.M) { os.Exit(studiotest.Run(m)) }

// testEnv points the binary at the real ONNX Runtime and sample models.
func testEnv(t *testing.T) []string {
	lib, models := studiotest.ORTLib(t), studiotest.Models(t)
	if _, err := os.Stat(filepath.Join(models, "cvaegan-birds", "model.json")); err != nil {
		t.Fatalf("sample models: %v", err)
	}
	return append(os.Environ(), "ORT_LIB_PATH="+lib, "STUDIO_MODELS_DIR="+models)
}

// TestDatasetMakeResumesAfterSIGKILL kills `studio dataset make` in the
// middle of a job, runs the same command again, and checks the result:
// it finishes with exactly --per-class images per class, no duplicate,
// every checksum right, and the same images as a run never interrupted.
func TestDatasetMakeResumesAfterSIGKILL(t *testing.T) {
	bin := studiotest.Studio(t)
	env := testEnv(t)
	args := func(out string) []string {
		return []string{"dataset", "make", "--model", "cvaegan-birds", "--classes", "54,46,31,30", "--per-class", "25",
			"--min-fidelity", "0", "--max-attempts", "8", "--batch", "2", "--threads", "1", "--progress", "lines", "--data", "", "--out", out}
	}
	dir := filepath.Join(t.TempDir(), "set")
	cmd := exec.Command(bin, args(dir)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	journal := filepath.Join(dir, "attempts.jsonl")
	deadline := time.Now().Add(60 * time.Second)
	for {
		raw, _ := os.ReadFile(journal)
		if bytes.Count(raw, []byte("\n")) >= 12 {
			break
		}
		select {
		case <-exited:
			t.Fatalf("exited before it could be killed; stderr:\n%s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no progress in 60s; stderr:\n%s", stderr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("process ended with %v, not by SIGKILL", cmd.ProcessState)
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err == nil {
		t.Fatal("the job had finished before it was killed; make it longer")
	}
	raw, _ := os.ReadFile(journal)
	before := bytes.Count(raw, []byte("\n"))

	again := exec.Command(bin, args(dir)...)
	again.Env = env
	var out2, err2 bytes.Buffer
	again.Stdout, again.Stderr = &out2, &err2
	if err := again.Run(); err != nil {
		t.Fatalf("second run: %v\n%s", err, err2.String())
	}
	if !strings.Contains(err2.String(), "resumed") {
		t.Errorf("the second run does not say it resumed:\n%s", err2.String())
	}
	man, err := dataset.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Classes) != 4 {
		t.Fatalf("%d classes", len(man.Classes))
	}
	for _, c := range man.Classes {
		if c.Count != 25 {
			t.Errorf("class %s: %d images, want 25", c.Class, c.Count)
		}
		files, _ := os.ReadDir(filepath.Join(dir, "images", c.Dir))
		if len(files) != 25 {
			t.Errorf("class folder %s holds %d files", c.Dir, len(files))
		}
	}
	recs, err := dataset.ReadRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	seeds, sums := map[uint64]bool{}, map[string]bool{}
	for _, r := range recs {
		b, err := os.ReadFile(dataset.ImagePath(dir, r))
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		if seeds[r.Seed] || sums[hex.EncodeToString(s[:])] {
			t.Errorf("duplicate image %s (seed %d)", r.FileName, r.Seed)
		}
		seeds[r.Seed], sums[hex.EncodeToString(s[:])] = true, true
	}
	if len(recs) != 100 {
		t.Errorf("%d records, want 100", len(recs))
	}
	// The journal kept what the killed run had done and went on from there.
	raw, _ = os.ReadFile(journal)
	var attempts []dataset.Attempt
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var a dataset.Attempt
		if err := json.Unmarshal(line, &a); err != nil {
			t.Fatal(err)
		}
		attempts = append(attempts, a)
	}
	if len(attempts) <= before {
		t.Errorf("journal: %d lines before the second run, %d after", before, len(attempts))
	}
	seen := map[string]bool{}
	for _, a := range attempts {
		k := fmt.Sprintf("%s/%d", a.Class, a.Attempt)
		if seen[k] {
			t.Errorf("attempt %d of %s journalled twice", a.Attempt, a.Class)
		}
		seen[k] = true
	}

	// The same command never interrupted makes the same images.
	whole := filepath.Join(t.TempDir(), "whole")
	ref := exec.Command(bin, args(whole)...)
	ref.Env = env
	if out, err := ref.CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	want, err := dataset.ReadManifest(whole)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range man.Files {
		got[f.Path] = f.SHA256
	}
	for _, f := range want.Files {
		if strings.HasPrefix(f.Path, "images/") && got[f.Path] != f.SHA256 {
			t.Errorf("%s differs from the uninterrupted run", f.Path)
		}
	}
}

// Errors of the flags, the spec and --out come before any model is
// loaded or any real image scored.
func TestDatasetMakeUsage(t *testing.T) {
	bin := studiotest.Studio(t)
	notEmpty, otherSpec := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(notEmpty, "notes.txt"), []byte("mine"), 0o644)
	os.WriteFile(filepath.Join(otherSpec, "spec.json"), []byte(`{"model":"cvaegan-birds","classes":["x"],"per_class":100,"min_fidelity":0.5,"max_attempts":4,"min_novelty":0,"seed":0,"shard_size":1000}`), 0o644)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"dataset"}, 2, "subcommand"},
		{[]string{"dataset", "make", "--out", "x"}, 2, "--model is required"},
		{[]string{"dataset", "make", "--model", "cvaegan-birds"}, 2, "--out is required"},
		{[]string{"dataset", "make", "--model", "cvaegan-birds", "--out", "x", "--min-novelty", "close"}, 2, "--min-novelty"},
		{[]string{"dataset", "make", "--model", "cvaegan-birds", "--classes", "heldout", "--data", "", "--out", filepath.Join(t.TempDir(), "d")}, 2, "held-out"},
		{[]string{"dataset", "make", "--model", "cvaegan-birds", "--classes", "999", "--data", "", "--out", filepath.Join(t.TempDir(), "d")}, 2, "invalid --classes"},
		{[]string{"dataset", "make", "--model", "cvaegan-birds", "--per-class", "0", "--data", "", "--out", filepath.Join(t.TempDir(), "d")}, 2, "invalid --per-class"},
		{[]string{"dataset", "make", "--model", "cvaegan-birds", "--data", "", "--out", notEmpty}, 2, "invalid --out"},
		{[]string{"dataset", "make", "--model", "cvaegan-birds", "--data", "", "--out", otherSpec}, 2, "classes differs"},
		{[]string{"dataset", "verify", t.TempDir()}, 1, "manifest.json"},
		{[]string{"fewshot", "eval", "--groups", "nope"}, 2, "--groups"},
		{[]string{"fewshot", "eval", "--variant", "bar=2"}, 2, "bar=2: want 0 to 1"},
		{[]string{"fewshot", "eval", "--heldout-synthetic", "x", "--classifier", "svm"}, 2, "--classifier"},
		{[]string{"fewshot", "eval", "--heldout-synthetic", "x", "--from-descriptions", "40"}, 2, "one source of synthetic data"},
		{[]string{"fewshot", "eval", "--from-descriptions", "-1"}, 2, "--from-descriptions"},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = testEnv(t)
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != c.code || !strings.Contains(string(out), c.msg) || strings.Contains(string(out), "novelty reference") {
			t.Errorf("studio %s: exit %d, want %d with %q before any scoring:\n%s", strings.Join(c.args, " "), code, c.code, c.msg, out)
		}
	}
}

// TestDatasetMakeOnServer runs `studio serve` (embedded queue, sample
// models) and `studio dataset make --server` against it: the data set is
// made by the server's worker, downloaded, unpacked and verified.
func TestDatasetMakeOnServer(t *testing.T) {
	bin := studiotest.Studio(t)
	env := testEnv(t)
	addr := studiotest.FreeAddr(t)
	// A small real data set: the server's worker checks novelty against it.
	real := filepath.Join(t.TempDir(), "birds")
	if _, err := cubtest.Make(filepath.Join("..", ".."), real, "--classes", "10", "--per-class", "4", "--size", "64"); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	srv := exec.Command(bin, "serve", "--addr", addr, "--datasets-dir", filepath.Join(t.TempDir(), "datasets"), "--threads", "1",
		"--data", real, "--feature-cache", cache)
	srv.Env = append(env, "REDIS_URL=")
	srvLog := studiotest.Start(t, srv)
	t.Cleanup(func() { srvLog.Stop(t) })
	url := "http://" + addr
	srvLog.WaitStatus(t, url+"/readyz", 200, 90*time.Second) // model loading is slow on a loaded machine

	out := filepath.Join(t.TempDir(), "set")
	cmd := exec.Command(bin, "dataset", "make", "--server", url, "--model", "cvaegan-birds", "--classes", "54,46",
		"--per-class", "2", "--min-fidelity", "0", "--max-attempts", "8", "--progress", "lines", "--out", out)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dataset make --server: %v\nstderr:\n%s\nserver:\n%s", err, stderr.String(), srvLog.Logs())
	}
	t.Logf("stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())
	if !strings.Contains(stderr.String(), "2/2 classes done") || !strings.Contains(stdout.String(), "match the manifest") {
		t.Errorf("output:\n%s\n%s", stdout.String(), stderr.String())
	}
	man, err := dataset.Verify(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Classes) != 2 {
		t.Fatalf("%d classes", len(man.Classes))
	}
	// The same checks as in-process: novelty against the real training
	// images (the automatic threshold), SHA256SUMS beside the manifest.
	if sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS")); err != nil || len(bytes.Split(bytes.TrimSpace(sums), []byte("\n"))) != len(man.Files) {
		t.Errorf("SHA256SUMS: %v\n%s", err, sums)
	}
	rep, err := dataset.ReadReport(out)
	if err != nil || rep.ReferenceImages == 0 || !man.Spec.MinNoveltyAuto || man.Spec.MinNovelty <= 0 {
		t.Errorf("report %+v, spec %+v: want novelty checked with an automatic threshold (%v)", rep, man.Spec, err)
	}
	if !strings.Contains(stdout.String(), "real training images") {
		t.Errorf("report without the novelty check:\n%s", stdout.String())
	}
	if files, _ := os.ReadDir(cache); len(files) != 1 {
		t.Errorf("feature cache holds %d files, want 1", len(files))
	}
	for _, c := range man.Classes {
		files, _ := os.ReadDir(filepath.Join(out, "images", c.Dir))
		if c.Count != 2 || len(files) != 2 {
			t.Errorf("class %s: %d images in the manifest, %d files", c.Class, c.Count, len(files))
		}
	}

	// In-process flags are refused with --server, and so is a full --out.
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--data", "data/birds"}, "--data"},
		{[]string{"--threads", "2"}, "--threads"},
		{[]string{"--prompts", "captions"}, "captions"},
	} {
		args := append([]string{"dataset", "make", "--server", url, "--model", "cvaegan-birds", "--out", filepath.Join(t.TempDir(), "x")}, c.args...)
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		b, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(b), c.msg) {
			t.Errorf("studio %s: exit %d, want 2 with %q:\n%s", strings.Join(args, " "), code, c.msg, b)
		}
	}
	cmd = exec.Command(bin, "dataset", "make", "--server", url, "--model", "cvaegan-birds", "--out", out)
	cmd.Env = env
	if b, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(b), "empty directory") {
		t.Errorf("--out not empty: exit %d:\n%s", cmd.ProcessState.ExitCode(), b)
	}
}
