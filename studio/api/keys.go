package api

import "time"

// Scopes of an API key.
const (
	ScopeGenerate = "generate"
	ScopeDatasets = "datasets"
	ScopeAdmin    = "admin"
)

// KeyRequest is the body of POST /v1/admin/keys.
type KeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// RateLimit (requests per second) and MaxActiveJobs override the
	// server's defaults for this key when set.
	RateLimit     *float64 `json:"rate_limit,omitempty"`
	MaxActiveJobs *int     `json:"max_active_jobs,omitempty"`
}

// Key is an API key as admins see it; the secret is never shown again.
type Key struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Scopes        []string  `json:"scopes"`
	RateLimit     float64   `json:"rate_limit,omitempty"`
	MaxActiveJobs int       `json:"max_active_jobs,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
}

// CreatedKey is the answer of POST /v1/admin/keys: the only time the
// secret token is shown.
type CreatedKey struct {
	Key
	Token string `json:"token"`
}

// KeyList is GET /v1/admin/keys.
type KeyList struct {
	Keys []Key `json:"keys"`
}
