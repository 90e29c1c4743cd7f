package studio

import (
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/textenc"
)

// createGeneration is POST /v1/generations.
func (s *Server) createGeneration(c *fiber.Ctx) error {
	var req api.GenerationRequest
	if err := decodeJSONBody(c, &req); err != nil {
		return err
	}
	idem, err := idempotencyKey(c, req.IdempotencyKey)
	if err != nil {
		return err
	}
	spec, err := s.generationSpec(req, callerOf(c).client, idem)
	if err != nil {
		return err
	}
	return s.submit(c, spec, idem)
}

// generationSpec validates a generation request against the model
// catalogue (no graph is loaded) and builds the job spec.
func (s *Server) generationSpec(req api.GenerationRequest, client, idem string) (jobspec.Spec, error) {
	e, err := s.generator(req.Model)
	if err != nil {
		return jobspec.Spec{}, err
	}
	spec := jobspec.Spec{Kind: jobspec.Generate, Model: e.name(), N: 1}
	switch e.input() {
	case "prompt":
		if req.Class != "" {
			return spec, problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "class",
				"%s generates from a prompt; give prompt, not class", e.name())
		}
		if err := s.checkPrompt(e, req.Prompt); err != nil {
			return spec, err
		}
		spec.Prompt = req.Prompt
	case "class":
		if req.Prompt != "" {
			return spec, problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "prompt",
				"%s generates from a class; give class, not prompt (text models: %v)", e.name(), s.textModels())
		}
		if req.Class == "" {
			return spec, required("class", " for the class model "+e.name())
		}
		cl, err := e.trainedClass("class", req.Class)
		if err != nil {
			return spec, err
		}
		spec.Class = cl.Name
	}
	maxN := min(s.lim.MaxN, jobspec.MaxN)
	if req.N != nil {
		if *req.N < 1 || *req.N > maxN {
			return spec, outOfRange("n", 1, maxN)
		}
		spec.N = *req.N
	}
	if req.Seed != nil {
		spec.Seed = *req.Seed
	} else {
		spec.Seed = defaultSeed(client, idem, "seed")
	}
	if req.MinFidelity != nil {
		if *req.MinFidelity < 0 || *req.MinFidelity > 1 {
			return spec, problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "min_fidelity", "must be between 0 and 1")
		}
		spec.MinFidelity = *req.MinFidelity
	}
	if req.MaxAttempts != nil {
		if *req.MaxAttempts < 1 || *req.MaxAttempts > jobspec.MaxAttempts {
			return spec, outOfRange("max_attempts", 1, jobspec.MaxAttempts)
		}
		spec.MaxAttempts = *req.MaxAttempts
	}
	// Every seed of the job (its images' and their retries') within
	// 0 … 2^53−1: none wraps around to another job's.
	if err := spec.Validate(); err != nil {
		var fe *jobspec.FieldError
		if errors.As(err, &fe) {
			return spec, problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, fe.Field, "%s", fe.Reason)
		}
		return spec, err
	}
	return spec, nil
}

// checkPrompt refuses a prompt the model would not read.
func (s *Server) checkPrompt(e *modelEntry, prompt string) error {
	if prompt == "" {
		return required("prompt", " for the text model "+e.name())
	}
	if len(prompt) > s.lim.MaxPromptBytes {
		return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "prompt",
			"is %d bytes; at most %d are accepted", len(prompt), s.lim.MaxPromptBytes)
	}
	_, err := e.vocab.Tokenize(prompt)
	switch {
	case errors.Is(err, textenc.ErrEmptyPrompt):
		return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "prompt",
			"has no words (only letters and digits are read): describe the bird, e.g. \"a small bird with a red crown\"")
	case errors.Is(err, textenc.ErrNoKnownWord):
		return problem(fiber.StatusUnprocessableEntity, api.TypeUnknownWords, "prompt",
			"%s knows none of the prompt's words (POST /v1/tokenize shows how a prompt is read)", e.name())
	}
	return err
}

func (s *Server) textModels() []string {
	idx := s.models.Load()
	var res []string
	for _, n := range idx.names {
		if idx.byName[n].input() == "prompt" {
			res = append(res, n)
		}
	}
	return res
}

// getGeneration is GET /v1/generations/{id}.
func (s *Server) getGeneration(c *fiber.Ctx) error {
	who := callerOf(c)
	j, err := s.jobs.GetMeta(c.UserContext(), who.client, c.Params("id"), nil)
	if err != nil {
		return err
	}
	s.released(c.UserContext(), who, j)
	return c.JSON(jobView(j))
}

// cancelGeneration is DELETE /v1/generations/{id}: a queued job is
// cancelled at once, a running one stops after its current batch; a
// finished job is returned unchanged.
func (s *Server) cancelGeneration(c *fiber.Ctx) error {
	who := callerOf(c)
	j, err := s.jobs.Cancel(c.UserContext(), who.client, c.Params("id"))
	if err != nil {
		return err
	}
	s.released(c.UserContext(), who, j)
	return c.JSON(jobView(j))
}

// imageIndex parses the {k} of an image path.
func imageIndex(c *fiber.Ctx, name string) (int, error) {
	raw := c.Params(name)
	k, err := strconv.Atoi(raw)
	if err != nil || k < 0 || strconv.Itoa(k) != raw {
		return 0, errNotFound(c.Path())
	}
	return k, nil
}
