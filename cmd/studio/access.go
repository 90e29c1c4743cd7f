package main

import (
	"context"
	"log/slog"

	"github.com/fgstudio/fgstudio/studio"
	"github.com/fgstudio/fgstudio/studio/auth"
)

// keyStore is where `serve` keeps API keys, rates and quotas: Redis when
// the API replicas share one (they stay stateless), else process memory.
type keyStore interface {
	studio.Keys
	studio.Limiter
	Close() error
}

func openKeys(ctx context.Context, cfg Config, log *slog.Logger) (keyStore, error) {
	if cfg.RedisURL == "" {
		if cfg.RequireAuth && cfg.AdminToken == "" {
			log.Warn("--require-auth without --admin-token on the embedded queue: no API key can be created, every request will be refused")
		}
		return auth.NewMemory(auth.Config{}), nil
	}
	return auth.OpenRedis(ctx, cfg.RedisURL, auth.Config{})
}

// apiConfig is the HTTP server's configuration; it logs how callers are
// authenticated.
func apiConfig(cfg Config, log *slog.Logger) studio.Config {
	if cfg.RequireAuth {
		log.Info("authentication required: every API request needs Authorization: Bearer <key>")
	} else {
		log.Warn("authentication is off: requests without an API key are served from this machine (loopback) only; start with --require-auth (STUDIO_REQUIRE_AUTH=true) for anything else")
	}
	lim := studio.Limits{RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst, MaxActiveJobs: cfg.MaxActiveJobs}
	if cfg.RateLimit == 0 {
		lim.RateLimit = -1
	}
	if cfg.MaxActiveJobs == 0 {
		lim.MaxActiveJobs = -1
	}
	return studio.Config{
		Addr:            cfg.Addr,
		ShutdownTimeout: cfg.ShutdownTimeout,
		BodyLimit:       cfg.BodyLimit,
		Version:         version,
		RequireAuth:     cfg.RequireAuth,
		AdminToken:      cfg.AdminToken,
		Limits:          lim,
		ExamplesDir:     cfg.ExamplesDir,
		DatasetsDir:     cfg.DatasetsDir,
	}
}
