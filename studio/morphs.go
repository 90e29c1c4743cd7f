package studio

import (
	"errors"
	"io"
	"mime/multipart"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/studio/api"
)

// createMorph is POST /v1/morphs: an uploaded image re-drawn as another
// class by a class model with an encoder. The body is a multipart form
// (fields model, class, idempotency_key; file image) or JSON
// (api.MorphRequest, the image in base64).
func (s *Server) createMorph(c *fiber.Ctx) error {
	mt, _, err := mediaType(c)
	if err != nil {
		return err
	}
	var req api.MorphRequest
	switch mt {
	case fiber.MIMEApplicationJSON:
		if err := decodeJSON(c.Body(), &req); err != nil {
			return err
		}
	case fiber.MIMEMultipartForm:
		if req, err = s.morphForm(c); err != nil {
			return err
		}
	default:
		return problem(fiber.StatusUnsupportedMediaType, api.TypeMediaType, "Content-Type",
			"Content-Type %s is not accepted here; send multipart/form-data or application/json", clip(mt, 100))
	}
	idem, err := idempotencyKey(c, req.IdempotencyKey)
	if err != nil {
		return err
	}
	e, err := s.generator(req.Model)
	if err != nil {
		return err
	}
	if !e.canMorph() {
		return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "model",
			"%s cannot morph: only class models with an encoder graph can", e.name())
	}
	if req.Class == "" {
		return required("class", ": the class to re-draw the image as")
	}
	cl, err := e.trainedClass("class", req.Class)
	if err != nil {
		return err
	}
	img, err := s.normaliseUpload(c.UserContext(), req.Image, "image", e.imageSize())
	if err != nil {
		return err
	}
	return s.submit(c, jobspec.Spec{Kind: jobspec.Morph, Model: e.name(), Class: cl.Name, N: 1, Image: img}, idem)
}

// morphFields are the form fields of a multipart morph.
var morphFields = map[string]bool{"model": true, "class": true, "idempotency_key": true}

func (s *Server) morphForm(c *fiber.Ctx) (api.MorphRequest, error) {
	var req api.MorphRequest
	form, err := c.MultipartForm()
	if err != nil {
		return req, problem(fiber.StatusBadRequest, api.TypeMalformed, "", "malformed multipart form: %s", clip(err.Error(), 120))
	}
	defer form.RemoveAll()
	for name, vs := range form.Value {
		if !morphFields[name] {
			return req, problem(fiber.StatusBadRequest, api.TypeMalformed, clip(name, 100), "unknown form field %q", clip(name, 100))
		}
		if len(vs) != 1 {
			return req, problem(fiber.StatusBadRequest, api.TypeMalformed, name, "give %s once", name)
		}
	}
	for name := range form.File {
		if name != "image" {
			return req, problem(fiber.StatusBadRequest, api.TypeMalformed, clip(name, 100), "unknown file field %q; send the image as \"image\"", clip(name, 100))
		}
	}
	get := func(k string) string {
		if vs := form.Value[k]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	req.Model, req.Class, req.IdempotencyKey = get("model"), get("class"), get("idempotency_key")
	files := form.File["image"]
	switch len(files) {
	case 0:
		return req, required("image", ": a PNG or JPEG file part named image")
	case 1:
	default:
		return req, problem(fiber.StatusBadRequest, api.TypeMalformed, "image", "send one image, not %d", len(files))
	}
	if files[0].Size > int64(s.lim.MaxImageBytes) {
		return req, problem(fiber.StatusRequestEntityTooLarge, api.TypeImageTooLarge, "image",
			"the image is %d bytes; at most %d are accepted", files[0].Size, s.lim.MaxImageBytes)
	}
	req.Image, err = readPart(files[0])
	return req, err
}

func readPart(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, errors.New("read upload: " + err.Error())
	}
	return data, nil
}

// createInterpolation is POST /v1/interpolations: N images walking from
// one (class, seed) to another with a class model.
func (s *Server) createInterpolation(c *fiber.Ctx) error {
	var req api.InterpolationRequest
	if err := decodeJSONBody(c, &req); err != nil {
		return err
	}
	idem, err := idempotencyKey(c, req.IdempotencyKey)
	if err != nil {
		return err
	}
	e, err := s.generator(req.Model)
	if err != nil {
		return err
	}
	if e.input() != "class" {
		return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "model",
			"%s generates from a prompt; interpolations walk between classes of a class model", e.name())
	}
	spec := jobspec.Spec{Kind: jobspec.Interpolate, Model: e.name(), N: 8}
	// Both ends default to one seed: a walk between classes alone.
	seed := defaultSeed(callerOf(c).client, idem, "interpolation")
	for _, end := range []struct {
		field string
		in    *api.Endpoint
		out   **jobspec.Endpoint
	}{{"from", req.From, &spec.From}, {"to", req.To, &spec.To}} {
		if end.in == nil {
			return required(end.field, ": {\"class\": …, \"seed\": …}")
		}
		if end.in.Class == "" {
			return required(end.field+".class", "")
		}
		cl, err := e.trainedClass(end.field+".class", end.in.Class)
		if err != nil {
			return err
		}
		ep := &jobspec.Endpoint{Class: cl.Name}
		if end.in.Seed != nil {
			ep.Seed = *end.in.Seed
		} else {
			ep.Seed = seed
		}
		*end.out = ep
	}
	if req.N != nil {
		maxN := min(s.lim.MaxN, jobspec.MaxN)
		if *req.N < 2 || *req.N > maxN {
			return outOfRange("n", 2, maxN)
		}
		spec.N = *req.N
	}
	return s.submit(c, spec, idem)
}
