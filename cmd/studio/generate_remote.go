package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/client"
)

// remoteGenerate is `studio generate --server URL`.
type remoteGenerate struct {
	server, token        string
	model, prompt, class string
	n                    int
	seed                 uint64
	minFidelity          float64
	out                  string
}

// runRemoteGenerate submits the generation to a studio server, follows
// its progress, and writes the images, their attention maps and
// scores.json into out, as a local run does.
func runRemoteGenerate(ctx context.Context, g remoteGenerate, stdout, stderr io.Writer) error {
	if g.minFidelity < 0 || g.minFidelity > 1 {
		return &usageError{fmt.Sprintf("invalid --min-fidelity=%g: want 0 to 1", g.minFidelity)}
	}
	c, err := client.New(g.server, g.token, nil)
	if err != nil {
		return &usageError{err.Error()}
	}
	req := api.GenerationRequest{Model: g.model, Prompt: g.prompt, Class: g.class, N: &g.n, Seed: &g.seed}
	if g.minFidelity > 0 {
		req.MinFidelity = &g.minFidelity
	}
	job, err := c.Generate(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "job %s queued on %s\n", job.ID, g.server)
	job, err = c.Wait(ctx, job.ID, func(ev api.Event) {
		switch ev.Type {
		case api.EventStarted:
			fmt.Fprintln(stderr, "started")
		case api.EventProgress:
			fmt.Fprintf(stderr, "%d/%d images\n", ev.Done, ev.Total)
		case api.EventRetrying:
			fmt.Fprintf(stderr, "retrying: %s\n", ev.Error)
		}
	})
	if err != nil {
		return err
	}
	if job.State != "succeeded" {
		return fmt.Errorf("job %s %s: %s", job.ID, job.State, job.Error)
	}
	if err := os.MkdirAll(g.out, 0o755); err != nil {
		return err
	}
	type row struct {
		File   string          `json:"file"`
		Seed   uint64          `json:"seed"`
		Scores json.RawMessage `json:"scores,omitempty"`
		Words  []string        `json:"attention_words,omitempty"`
	}
	rows := []row{}
	for _, img := range job.Images {
		data, err := c.Image(ctx, job.ID, img.Index)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("%s_%d.png", g.model, img.Seed)
		if err := os.WriteFile(filepath.Join(g.out, name), data, 0o644); err != nil {
			return err
		}
		if img.Links.Attention != "" {
			att, err := c.Attention(ctx, job.ID, img.Index)
			if err != nil {
				return err
			}
			for _, m := range att.Maps {
				png, err := c.Get(ctx, m.PNG)
				if err != nil {
					return err
				}
				file := attentionFile(g.model, img.Seed, m.Stage, att.Stages-1, m.Position, m.Word)
				if err := os.WriteFile(filepath.Join(g.out, file), png, 0o644); err != nil {
					return err
				}
			}
		}
		rows = append(rows, row{File: name, Seed: img.Seed, Scores: img.Scores, Words: img.Words})
		fmt.Fprintf(stdout, "%s\tfidelity=%.3f (%s)\n", filepath.Join(g.out, name), img.Fidelity, measureOrNone(img.FidelityMeasure))
	}
	raw, _ := json.MarshalIndent(rows, "", "  ")
	return os.WriteFile(filepath.Join(g.out, "scores.json"), append(raw, '\n'), 0o644)
}

// measureOrNone names a fidelity measure, or says there was none.
func measureOrNone(m string) string {
	if m == "" {
		return "unscored"
	}
	return m
}
