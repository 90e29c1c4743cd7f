package studio_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"mime/multipart"
	"testing"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/studio/api"
)

// multipartBody builds a morph form; image nil leaves the file out.
func multipartBody(t testing.TB, fields map[string]string, fileField string, img []byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	if img != nil {
		fw, err := w.CreateFormFile(fileField, "bird.png")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(img)
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

func testJPEG(t testing.TB, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 3), uint8(y * 5), 90, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestMorph: an upload as a multipart file or as base64 JSON becomes a
// morph job whose image is the centre square at the model's size.
func TestMorph(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, envOpts{backend: backend})
		cl := trainedClass(t, e)
		ct, body := multipartBody(t, map[string]string{"model": classModel, "class": cl}, "image", testPNG(t, 300, 200))
		resp, out := e.do("POST", "/v1/morphs", body, header("Content-Type", ct))
		j := decode[api.Job](t, resp, out, 202)
		if j.Kind != "morph" || j.Progress.Total != 1 || j.Request.Class != cl {
			t.Fatalf("%+v", j)
		}
		resp, out = e.do("POST", "/v1/morphs", api.MorphRequest{Model: classModel, Class: cl, Image: testJPEG(t, 640, 640)})
		decode[api.Job](t, resp, out, 202)
		for range 2 {
			l := e.fakeWork(0)
			spec, err := jobspec.Unmarshal(l.Job.Spec)
			if err != nil {
				t.Fatal(err)
			}
			cfg, format, err := image.DecodeConfig(bytes.NewReader(spec.Image))
			if err != nil || cfg.Width != 64 || cfg.Height != 64 || format != "png" {
				t.Fatalf("queued image %dx%d %s %v", cfg.Width, cfg.Height, format, err)
			}
		}
	})
}
