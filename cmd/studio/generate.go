package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/studio/client"
)

// runGenerate makes images in this process, or on a studio server with
// --server URL: studio generate --model M (--prompt P | --class C) [--n N]
// [--seed S] --out DIR.
func runGenerate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("studio generate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	model := fs.String("model", "", "model name (see the models folder); may be left out when one model fits --prompt or --class")
	prompt := fs.String("prompt", "", "text prompt (attngan models)")
	class := fs.String("class", "", "class name or id (cvaegan models; optional for attngan, for scoring)")
	n := fs.Int("n", 4, "number of images")
	seed := fs.Uint64("seed", 0, "seed of the first image; image k uses seed+k")
	out := fs.String("out", "out", "folder to write PNGs and scores.json into")
	models := fs.String("models-dir", envOr(getenv, "STUDIO_MODELS_DIR", "samples/models"), "folder of model directories (env STUDIO_MODELS_DIR)")
	lib := fs.String("ort-lib", envOr(getenv, "ORT_LIB_PATH", ort.DefaultLibraryPath()), "ONNX Runtime library (env ORT_LIB_PATH)")
	threads := fs.Int("threads", 0, "intra-op threads; 0 = number of CPUs")
	server := fs.String("server", envOr(getenv, "STUDIO_SERVER", ""), "generate on a studio server at this URL instead of in this process (env STUDIO_SERVER)")
	token := fs.String("token", "", "API key for --server (env STUDIO_API_KEY)")
	minFidelity := fs.Float64("min-fidelity", 0, "with --server: make images scoring below this again with new seeds")
	err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	switch {
	case *prompt == "" && *class == "":
		return &usageError{"one of --prompt or --class is required"}
	case *n < 1:
		return &usageError{fmt.Sprintf("invalid --n=%d: want at least 1", *n)}
	}
	if *server != "" {
		key := *token
		if key == "" {
			key = getenv("STUDIO_API_KEY")
		}
		if *model == "" {
			if *model, err = pickRemoteModel(ctx, *server, key, *prompt); err != nil {
				return err
			}
		}
		return runRemoteGenerate(ctx, remoteGenerate{server: *server, token: key, model: *model, prompt: *prompt,
			class: *class, n: *n, seed: *seed, minFidelity: *minFidelity, out: *out}, stdout, stderr)
	}
	if *model == "" {
		if *model, err = pickLocalModel(*models, *prompt); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, closeAll, err := openService(*models, ort.Config{LibraryPath: *lib, IntraOpThreads: threadsOr(*threads)},
		generator.Config{MaxImages: max(*n, 1)}, log)
	if err != nil {
		return err
	}
	defer closeAll()
	imgs, err := svc.Generate(ctx, *model, []generator.Request{{Prompt: *prompt, Class: *class, N: *n, Seed: *seed}})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	type row struct {
		File   string           `json:"file"`
		Seed   uint64           `json:"seed"`
		Scores generator.Scores `json:"scores"`
		Words  []string         `json:"attention_words,omitempty"`
	}
	var rows []row
	for _, img := range imgs[0] {
		name := fmt.Sprintf("%s_%d.png", *model, img.Seed)
		if err := os.WriteFile(filepath.Join(*out, name), img.PNG, 0o644); err != nil {
			return err
		}
		r := row{File: name, Seed: img.Seed, Scores: img.Scores}
		finest := 0
		for _, wm := range img.Attention {
			r.Words = append(r.Words, wm.Word)
			finest = wm.Stage
		}
		pos := map[int]int{} // stage → words so far
		for _, wm := range append(append([]generator.WordMap(nil), img.Attention...), img.CoarseAttention...) {
			att := attentionFile(*model, img.Seed, wm.Stage, finest, pos[wm.Stage], wm.Word)
			pos[wm.Stage]++
			if err := os.WriteFile(filepath.Join(*out, att), wm.PNG, 0o644); err != nil {
				return err
			}
		}
		rows = append(rows, r)
		fmt.Fprintf(stdout, "%s\t%s\n", filepath.Join(*out, name), summary(img.Scores))
	}
	raw, _ := json.MarshalIndent(rows, "", "  ")
	return os.WriteFile(filepath.Join(*out, "scores.json"), append(raw, '\n'), 0o644)
}

// modelInput is what a model generates from, as the API says it:
// "prompt" or "class".
type modelInput struct{ name, input string }

// pickModel is the one model that generates from what the flags give (a
// prompt, else a class), for a run without --model.
func pickModel(models []modelInput, prompt, where string) (string, error) {
	want, flag := "class", "--class"
	if prompt != "" {
		want, flag = "prompt", "--prompt"
	}
	var fit []string
	for _, m := range models {
		if m.input == want {
			fit = append(fit, m.name)
		}
	}
	switch len(fit) {
	case 1:
		return fit[0], nil
	case 0:
		return "", &usageError{fmt.Sprintf("--model is required: no model of %s generates from %s", where, flag)}
	}
	sort.Strings(fit)
	return "", &usageError{fmt.Sprintf("--model is required: %s fit %s", strings.Join(fit, ", "), flag)}
}

// pickLocalModel picks among the generators of the models folder.
func pickLocalModel(dir, prompt string) (string, error) {
	cat, err := catalog.Open(dir)
	if err != nil {
		return "", err
	}
	var ms []modelInput
	for _, m := range cat.Models() {
		switch m.Manifest.Kind {
		case catalog.KindAttnGAN:
			ms = append(ms, modelInput{m.Manifest.Name, "prompt"})
		case catalog.KindCVAEGAN:
			ms = append(ms, modelInput{m.Manifest.Name, "class"})
		}
	}
	return pickModel(ms, prompt, dir)
}

// pickRemoteModel picks among the models the server has loaded.
func pickRemoteModel(ctx context.Context, server, token, prompt string) (string, error) {
	c, err := client.New(server, token, nil)
	if err != nil {
		return "", &usageError{err.Error()}
	}
	list, err := c.Models(ctx)
	if err != nil {
		return "", err
	}
	var ms []modelInput
	for _, m := range list {
		if m.Loaded {
			ms = append(ms, modelInput{m.Name, m.Input})
		}
	}
	return pickModel(ms, prompt, server)
}

// attentionFile names the attention map of the word at position pos (its
// place among the prompt's kept words, so that a repeated word has one
// file per place) of an attentional stage: <model>_<seed>_att_<pos>_<word>.png
// for the finest stage, att<stage> for a coarser one. Local and --server
// runs write the same names.
func attentionFile(model string, seed uint64, stage, finest, pos int, word string) string {
	if stage == finest {
		return fmt.Sprintf("%s_%d_att_%d_%s.png", model, seed, pos, word)
	}
	return fmt.Sprintf("%s_%d_att%d_%d_%s.png", model, seed, stage, pos, word)
}

// summary is one line per image: its fidelity and measure first, then
// each measure by name, and the attributes asked for that the head does
// not see ("crown: named red, sees black (0.03)").
func summary(s generator.Scores) string {
	txt := ""
	if f, m := s.Fidelity(); m != "" {
		txt += fmt.Sprintf("fidelity=%.3f (%s)  ", f, m)
	}
	if s.ClassProb != nil {
		txt += fmt.Sprintf("class_probability(%s)=%.3f rank %d  ", s.Class, *s.ClassProb, s.ClassRank)
	}
	if s.AttributeAgreement != nil {
		txt += fmt.Sprintf("attribute_agreement(%s)=%.3f  ", s.AttributeBasis, *s.AttributeAgreement)
		for _, g := range s.AttributeGroups {
			if g.Sees != g.Named {
				txt += fmt.Sprintf("%s: named %s, sees %s (%.2f)  ", strings.TrimPrefix(g.Group, "has_"), g.Named, g.Sees, g.Prob)
			}
		}
	}
	if s.DAMSMSimilarity != nil {
		txt += fmt.Sprintf("damsm_similarity=%.3f  ", *s.DAMSMSimilarity)
	}
	if len(s.Top) > 0 {
		txt += fmt.Sprintf("top1=%s (%.3f)", s.Top[0].Label, s.Top[0].Prob)
	}
	return txt
}

// openService opens ONNX Runtime and loads every model of dir.
func openService(dir string, ocfg ort.Config, gcfg generator.Config, log *slog.Logger) (*generator.Service, func(), error) {
	cat, err := catalog.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range cat.Problems() {
		log.Warn("model skipped", "err", p)
	}
	rt, err := ort.Open(ocfg, log)
	if err != nil {
		return nil, nil, err
	}
	svc := generator.Load(rt, cat, gcfg, log)
	return svc, func() {
		svc.Close()
		rt.Close()
	}, nil
}

func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fs.SetOutput(stderr)
			fmt.Fprintf(stderr, "usage: %s [flags]\n", fs.Name())
			fs.PrintDefaults()
			return errHelp
		}
		return &usageError{err.Error() + " (see " + fs.Name() + " -h)"}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q (see %s -h)", fs.Arg(0), fs.Name())}
	}
	return nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
