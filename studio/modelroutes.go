package studio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/textenc"
)

// listModels is GET /v1/models.
func (s *Server) listModels(c *fiber.Ctx) error {
	idx := s.models.Load()
	res := api.ModelList{Models: make([]api.ModelSummary, 0, len(idx.names))}
	for _, n := range idx.names {
		res.Models = append(res.Models, idx.byName[n].summary(s.loads))
	}
	return c.JSON(res)
}

func (s *Server) model(c *fiber.Ctx) (*modelEntry, error) {
	name := c.Params("name")
	e, ok := s.models.Load().get(name)
	if !ok {
		return nil, problem(fiber.StatusNotFound, api.TypeNotFound, "", "no model %q (GET /v1/models lists them)", clip(name, 80))
	}
	return e, nil
}

// getModel is GET /v1/models/{name}.
func (s *Server) getModel(c *fiber.Ctx) error {
	e, err := s.model(c)
	if err != nil {
		return err
	}
	return c.JSON(e.detail(s.loads))
}

// classExample is GET /v1/models/{name}/classes/{id}/example.png: a real
// image of the class from the data set, when the server has one.
func (s *Server) classExample(c *fiber.Ctx) error {
	e, err := s.model(c)
	if err != nil {
		return err
	}
	id, err := strconv.Atoi(c.Params("id"))
	if err != nil {
		return problem(fiber.StatusNotFound, api.TypeNotFound, "", "no class %q in %s (class ids are whole numbers)", clip(c.Params("id"), 20), e.name())
	}
	cl, ok := e.class(id)
	if !ok {
		return problem(fiber.StatusNotFound, api.TypeNotFound, "", "no class %d in %s (GET %s lists them)", id, e.name(), e.link())
	}
	path, ok := e.examples[id]
	if !ok {
		return problem(fiber.StatusNotFound, api.TypeNotFound, "", "no example image of class %d (%s) on this server", id, cl.Label)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return problem(fiber.StatusNotFound, api.TypeNotFound, "", "no example image of class %d (%s) on this server", id, cl.Label)
	}
	if err != nil {
		return fmt.Errorf("example of %s class %d: %w", e.name(), id, err)
	}
	c.Set(fiber.HeaderContentType, "image/png")
	c.Set(fiber.HeaderCacheControl, "private, max-age=3600")
	return c.Send(data)
}

const (
	defaultVocabLimit = 20
	maxVocabLimit     = 1000
)

// vocabulary is GET /v1/models/{name}/vocabulary?prefix=&limit=: the
// model's words that start with prefix, for autocompletion.
func (s *Server) vocabulary(c *fiber.Ctx) error {
	e, err := s.model(c)
	if err != nil {
		return err
	}
	if e.vocab == nil {
		return problem(fiber.StatusNotFound, api.TypeNotFound, "", "%s is a %s model and has no vocabulary", e.name(), e.kind())
	}
	limit := defaultVocabLimit
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxVocabLimit {
			return problem(fiber.StatusBadRequest, api.TypeInvalidField, "limit", "must be a whole number from 1 to %d", maxVocabLimit)
		}
		limit = n
	}
	prefix := c.Query("prefix")
	if len(prefix) > 100 {
		return problem(fiber.StatusBadRequest, api.TypeInvalidField, "prefix", "is longer than 100 bytes")
	}
	words := e.vocab.Complete(prefix, limit)
	if words == nil {
		words = []string{}
	}
	return c.JSON(api.Vocabulary{Model: e.name(), Prefix: prefix, Size: e.vocab.Size() - 1, Words: words})
}

// tokenize is POST /v1/tokenize: how a text model will read a prompt —
// known words kept, unknown words ignored, words past the limit dropped.
func (s *Server) tokenize(c *fiber.Ctx) error {
	var req api.TokenizeRequest
	if err := decodeJSONBody(c, &req); err != nil {
		return err
	}
	if req.Model == "" {
		return required("model", "")
	}
	e, ok := s.models.Load().get(req.Model)
	if !ok {
		return problem(fiber.StatusUnprocessableEntity, api.TypeUnknownModel, "model", "no model %q; text models: %v", clip(req.Model, 80), s.textModels())
	}
	if e.vocab == nil {
		return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "model", "%s reads no text; text models: %v", e.name(), s.textModels())
	}
	if len(req.Prompt) > s.lim.MaxPromptBytes {
		return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "prompt", "is %d bytes; at most %d are accepted", len(req.Prompt), s.lim.MaxPromptBytes)
	}
	t, err := e.vocab.Tokenize(req.Prompt)
	res := api.Tokens{Model: e.name(), Words: t.Words, Unknown: t.Unknown, Dropped: t.Dropped, MaxWords: e.vocab.MaxWords(), Usable: err == nil}
	switch {
	case errors.Is(err, textenc.ErrEmptyPrompt):
		res.Reason = "the prompt has no words"
	case errors.Is(err, textenc.ErrNoKnownWord):
		res.Reason = "the model knows none of the prompt's words"
	case err != nil:
		return err
	}
	return c.JSON(res)
}
