package studio

import (
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/auth"
)

func keyView(k auth.Key) api.Key {
	v := api.Key{ID: k.ID, Name: k.Name, Scopes: make([]string, len(k.Scopes)), RateLimit: k.RateLimit,
		MaxActiveJobs: k.MaxActiveJobs, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
	for i, s := range k.Scopes {
		v.Scopes[i] = string(s)
	}
	return v
}

// createKey is POST /v1/admin/keys: the token is in this answer only.
func (s *Server) createKey(c *fiber.Ctx) error {
	var req api.KeyRequest
	if err := decodeJSONBody(c, &req); err != nil {
		return err
	}
	n := auth.NewKey{Name: req.Name}
	for _, sc := range req.Scopes {
		n.Scopes = append(n.Scopes, auth.Scope(sc))
	}
	if req.RateLimit != nil {
		n.RateLimit = *req.RateLimit
	}
	if req.MaxActiveJobs != nil {
		n.MaxActiveJobs = *req.MaxActiveJobs
	}
	k, token, err := s.keys.Create(c.UserContext(), n)
	if err != nil {
		return err
	}
	s.log.Info("api key created", "key_id", k.ID, "name", k.Name, "scopes", req.Scopes, "by", callerOf(c).client)
	c.Location("/v1/admin/keys/" + k.ID)
	return c.Status(fiber.StatusCreated).JSON(api.CreatedKey{Key: keyView(k), Token: token})
}

// listKeys is GET /v1/admin/keys.
func (s *Server) listKeys(c *fiber.Ctx) error {
	ks, err := s.keys.List(c.UserContext())
	if err != nil {
		return err
	}
	res := api.KeyList{Keys: make([]api.Key, len(ks))}
	for i, k := range ks {
		res.Keys[i] = keyView(k)
	}
	return c.JSON(res)
}

// revokeKey is DELETE /v1/admin/keys/{id}: the key stops working at once.
func (s *Server) revokeKey(c *fiber.Ctx) error {
	k, err := s.keys.Revoke(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	s.log.Info("api key revoked", "key_id", k.ID, "by", callerOf(c).client)
	return c.JSON(keyView(k))
}

// reloadModels is POST /v1/admin/models/reload: the models folder is read
// again; requests validate against the new catalogue from now on.
func (s *Server) reloadModels(c *fiber.Ctx) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cat, err := catalog.Open(s.models.Load().cat.Dir())
	if err != nil {
		return err
	}
	idx := newModelIndex(cat, s.models.Load().examplesDir, s.log)
	if s.onReload != nil {
		if err := s.onReload(c.UserContext(), cat); err != nil {
			return err
		}
	}
	s.models.Store(idx)
	res := api.Reload{Models: append([]string{}, idx.names...), Problems: append([]string{}, idx.problems...)}
	// The models the reloaded generator (or, on an API-only replica, the
	// catalogue) cannot serve are problems too.
	for _, n := range idx.names {
		if sum := idx.byName[n].summary(s.loads); !sum.Loaded {
			res.Problems = append(res.Problems, fmt.Sprintf("model %s not loaded: %s", n, sum.LoadError))
		}
	}
	s.log.Info("models reloaded", "models", strings.Join(idx.names, ","), "problems", len(res.Problems), "by", callerOf(c).client)
	return c.JSON(res)
}
