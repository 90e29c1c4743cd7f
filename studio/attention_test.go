package studio_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/api"
)

// An image of a model with two attentional stages lists each word's map
// for both, the finest stage first, with the peak that puts the words on
// one scale; the image's words are those of one stage.
func TestAttentionStagesAndPeaks(t *testing.T) {
	e := newEnv(t, envOpts{})
	j := e.submit(api.GenerationRequest{Model: textModel, Prompt: knownWords(t, e)})
	ls, err := e.q.Claim(t.Context(), "fake-worker", 1, 5*time.Second)
	if err != nil || len(ls) != 1 {
		t.Fatalf("claim: %v %v", ls, err)
	}
	meta := jobspec.ImageMeta{Index: 0, Seed: 1, Size: 64, Attempts: 1, Attention: []jobspec.WordMap{
		{Word: "red", PNG: testPNG(t, 32, 32), Peak: 0.5, Stage: 1},
		{Word: "crown", PNG: testPNG(t, 32, 32), Peak: 0.25, Stage: 1},
		{Word: "red", PNG: testPNG(t, 16, 16), Peak: 0.75},
		{Word: "crown", PNG: testPNG(t, 16, 16)},
	}}
	raw, _ := json.Marshal(meta)
	if err := e.q.PutResult(t.Context(), ls[0], queue.Result{Index: 0, Data: testPNG(t, 64, 64), Meta: raw}); err != nil {
		t.Fatal(err)
	}
	if err := e.q.Ack(t.Context(), ls[0]); err != nil {
		t.Fatal(err)
	}
	resp, body := e.do("GET", j.Links.Self, nil)
	if job := decode[api.Job](t, resp, body, 200); len(job.Images) != 1 || fmt.Sprint(job.Images[0].Words) != "[red crown]" {
		t.Fatalf("image words %+v", job.Images)
	}
	resp, body = e.do("GET", j.Links.Self+"/images/0/attention", nil)
	att := decode[api.Attention](t, resp, body, 200)
	if att.Stages != 2 || len(att.Maps) != 4 {
		t.Fatalf("attention %s", body)
	}
	for i, want := range []struct {
		word       string
		stage, pos int
		peak       float64
	}{{"red", 1, 0, 0.5}, {"crown", 1, 1, 0.25}, {"red", 0, 0, 0.75}, {"crown", 0, 1, 0}} {
		m := att.Maps[i]
		peak := 0.0
		if m.Peak != nil {
			peak = *m.Peak
		}
		if m.Word != want.word || m.Stage != want.stage || m.Position != want.pos || peak != want.peak {
			t.Errorf("map %d: %+v (peak %v), want %+v", i, m, peak, want)
		}
		if resp, _ := e.do("GET", m.PNG, nil); resp.StatusCode != 200 {
			t.Errorf("map %d: GET %s: %d", i, m.PNG, resp.StatusCode)
		}
	}
}
