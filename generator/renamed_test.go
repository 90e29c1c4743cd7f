//go:build !unit

package generator_test

import (
	"bytes"
	"image/png"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
)

// renameScript renames the tensors of the sample AttnGAN's text encoder
// and generator (files too) the way another export might have named
// them, and rewrites model.json to map the contract's roles to the new
// names: the worked example of docs/model-contract.md.
const renameScript = `
import hashlib, json, os, sys, onnx
os.chdir(sys.argv[1])
ren = {"text_encoder.onnx": ("rnn_encoder.onnx", {"captions": "caption_ids", "cap_lens": "lengths",
        "words_emb": "word_features", "sent_emb": "sentence_feature"}),
       "generator.onnx": ("netG.onnx", {"z_code": "noise", "ca_eps": "c_noise", "sent_emb": "sent",
        "words_emb": "words", "words_mask": "pad_mask", "img32": "fake_32", "img64": "fake_64", "att1": "att_stage1"})}
for old, (new, mp) in ren.items():
    m = onnx.load(old)
    for v in list(m.graph.input) + list(m.graph.output):
        v.name = mp.get(v.name, v.name)
    for n in m.graph.node:
        n.input[:] = [mp.get(x, x) for x in n.input]
        n.output[:] = [mp.get(x, x) for x in n.output]
    onnx.save(m, new)
    os.remove(old)
man = json.load(open("model.json"))
man["name"] = "attngan-renamed"
man.pop("scorer", None)  # the classifier is another folder
for g in man["graphs"].values():
    if g["file"] in ren:
        new, mp = ren[g["file"]]
        g["file"] = new
        for t in g["inputs"] + g["outputs"]:
            t["name"] = mp.get(t["name"], t["name"])
    g["sha256"] = hashlib.sha256(open(g["file"], "rb").read()).hexdigest()
json.dump(man, open("model.json", "w"), indent=1)
`

// TestRenamedTensorsServedByManifest: a graph whose tensors and files are
// named differently is served by writing its manifest, and generates the
// same pixels as the sample model it was made from.
func TestRenamedTensorsServedByManifest(t *testing.T) {
	src, ok := sampleCatalog(t).Get("attngan-birds")
	if !ok {
		t.Fatal("no attngan-birds sample model")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "attngan-renamed")
	if err := os.CopyFS(dir, os.DirFS(src.Dir)); err != nil {
		t.Fatal(err)
	}
	python := os.Getenv("PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	if out, err := exec.CommandContext(t.Context(), python, "-c", renameScript, dir).CombinedOutput(); err != nil {
		t.Fatalf("rename the tensors (python3-onnx): %v\n%s", err, out)
	}
	cat, err := catalog.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	svc := generator.Load(rt, cat, generator.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer svc.Close()
	if err := svc.Failed()["attngan-renamed"]; err != nil {
		t.Fatalf("load: %v", err)
	}
	orig := loadService(t, sampleCatalog(t), generator.Config{})
	req := []generator.Request{{Prompt: "this bird has a red crown and a short pointed bill", N: 1, Seed: 5}}
	got, err := svc.Generate(t.Context(), "attngan-renamed", req)
	if err != nil {
		t.Fatal(err)
	}
	want, err := orig.Generate(t.Context(), "attngan-birds", req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pixels(t, got[0][0].PNG), pixels(t, want[0][0].PNG)) {
		t.Error("the renamed graph's image differs from the sample model's")
	}
	if len(got[0][0].Attention) == 0 || len(got[0][0].Attention) != len(want[0][0].Attention) {
		t.Errorf("%d attention maps, the sample model gives %d", len(got[0][0].Attention), len(want[0][0].Attention))
	}
}

// pixels are the decoded pixels of a PNG (its text chunks name the model).
func pixels(t *testing.T, b []byte) []byte {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, b, a := img.At(x, y).RGBA()
			buf.Write([]byte{byte(r >> 8), byte(g >> 8), byte(b >> 8), byte(a >> 8)})
		}
	}
	return buf.Bytes()
}
