// Package auth holds what the API needs to know about its callers: API
// keys (stored hashed, with scopes), per-key request rates and per-key
// concurrent-job quotas. Two stores keep them: Memory for the one-process
// studio and Redis for stateless API replicas that share one Redis. Both
// pass the same contract tests.
//
// A key's secret token is "fgs_" followed by 43 base64url characters (256
// random bits). Only its SHA-256 is stored: a high-entropy secret needs no
// slow password hash, and a leaked store reveals no usable token.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Scope is a permission a key carries.
type Scope string

// The scopes.
const (
	Generate Scope = "generate" // submit, read and cancel its own generation jobs
	Datasets Scope = "datasets" // dataset jobs
	Admin    Scope = "admin"    // create and revoke keys, reload models
)

// AllScopes lists every scope.
func AllScopes() []Scope { return []Scope{Generate, Datasets, Admin} }

// Sentinel errors.
var (
	// ErrUnknownKey: no key has this token.
	ErrUnknownKey = errors.New("unknown API key")
	// ErrRevoked: the key was revoked; Lookup returns it with the key.
	ErrRevoked = errors.New("API key revoked")
	// ErrNotFound: no key has this id.
	ErrNotFound = errors.New("no such API key")
	// ErrInvalid: a bad NewKey; see *FieldError.
	ErrInvalid = errors.New("invalid API key request")
	// ErrQuota: the subject holds its limit of active jobs.
	ErrQuota = errors.New("active job quota reached")
)

// FieldError names the NewKey field at fault.
type FieldError struct{ Field, Reason string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Key is a stored API key. Hash is the hex SHA-256 of its token.
type Key struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Scopes []Scope `json:"scopes"`
	// RateLimit (requests/s) and MaxActiveJobs override the server's
	// defaults when non-zero.
	RateLimit     float64   `json:"rate_limit,omitempty"`
	MaxActiveJobs int       `json:"max_active_jobs,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
	Hash          string    `json:"hash"`
}

// Has reports whether the key carries scope s.
func (k Key) Has(s Scope) bool {
	for _, x := range k.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

// NewKey is what an admin asks for.
type NewKey struct {
	Name          string
	Scopes        []Scope
	RateLimit     float64
	MaxActiveJobs int
}

// Limits on NewKey fields.
const (
	maxNameLen   = 100
	MaxRateLimit = 100000
	MaxActive    = 100000
)

func (n NewKey) validate() error {
	switch {
	case strings.TrimSpace(n.Name) == "":
		return &FieldError{"name", "is required"}
	case len(n.Name) > maxNameLen:
		return &FieldError{"name", fmt.Sprintf("is longer than %d bytes", maxNameLen)}
	case !printable(n.Name):
		return &FieldError{"name", "must be printable ASCII"}
	case len(n.Scopes) == 0:
		return &FieldError{"scopes", "give at least one of generate, datasets, admin"}
	case n.RateLimit < 0 || n.RateLimit > MaxRateLimit:
		return &FieldError{"rate_limit", fmt.Sprintf("must be between 0 and %d requests per second", MaxRateLimit)}
	case n.MaxActiveJobs < 0 || n.MaxActiveJobs > MaxActive:
		return &FieldError{"max_active_jobs", fmt.Sprintf("must be between 0 and %d", MaxActive)}
	}
	seen := map[Scope]bool{}
	for _, s := range n.Scopes {
		if s != Generate && s != Datasets && s != Admin {
			return &FieldError{"scopes", fmt.Sprintf("%q is not generate, datasets or admin", s)}
		}
		if seen[s] {
			return &FieldError{"scopes", fmt.Sprintf("%q is repeated", s)}
		}
		seen[s] = true
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

const tokenPrefix = "fgs_"

// newKey makes a key record and its secret token.
func newKey(n NewKey, now time.Time) (Key, string, error) {
	if err := n.validate(); err != nil {
		return Key{}, "", err
	}
	secret := make([]byte, 32)
	id := make([]byte, 8)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, "", fmt.Errorf("new key: %w", err)
	}
	if _, err := rand.Read(id); err != nil {
		return Key{}, "", fmt.Errorf("new key: %w", err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	return Key{
		ID: "key_" + hex.EncodeToString(id), Name: n.Name, Scopes: append([]Scope(nil), n.Scopes...),
		RateLimit: n.RateLimit, MaxActiveJobs: n.MaxActiveJobs, CreatedAt: now.UTC(),
		Hash: HashToken(token),
	}, token, nil
}

// HashToken is the stored form of a token: hex SHA-256.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// WellFormed reports whether token has the shape of the tokens this package
// makes, so that garbage is refused without a store round trip.
func WellFormed(token string) bool {
	if !strings.HasPrefix(token, tokenPrefix) || len(token) != len(tokenPrefix)+43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token[len(tokenPrefix):])
	return err == nil
}

// Config tunes a store. Zero fields take the defaults.
type Config struct {
	// PendingTTL bounds how long a quota slot may be held between Acquire
	// and Bind (a process that dies in between leaks it for this long);
	// default 1m.
	PendingTTL time.Duration
	// JobTTL bounds how long a bound job counts against the quota when it
	// is never released (default 24h, the queue's result TTL).
	JobTTL time.Duration
	// Prefix of every Redis key, with a {hash tag} (default "{fgs-auth}:").
	Prefix string
}

func (c Config) withDefaults() Config {
	if c.PendingTTL <= 0 {
		c.PendingTTL = time.Minute
	}
	if c.JobTTL <= 0 {
		c.JobTTL = 24 * time.Hour
	}
	if c.Prefix == "" {
		c.Prefix = "{fgs-auth}:"
	}
	return c
}

// slotPrefix marks quota members that are reservations, not job ids.
const slotPrefix = "slot:"

func newSlot() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("quota slot: %w", err)
	}
	return slotPrefix + hex.EncodeToString(b), nil
}

// QuotaError is ErrQuota with the job ids that hold the quota, so that the
// caller can release those that have finished and try again.
type QuotaError struct {
	Limit int
	Jobs  []string
}

func (e *QuotaError) Error() string { return fmt.Sprintf("%d active jobs (the limit)", e.Limit) }

// Is makes errors.Is(err, ErrQuota) true.
func (e *QuotaError) Is(target error) bool { return target == ErrQuota }

// gcra is the generic cell rate algorithm: tat is the theoretical arrival
// time of the next request. It returns the new tat and, when the request
// is refused, how long to wait.
func gcra(tat, now time.Time, rate float64, burst int) (time.Time, time.Duration) {
	interval := time.Duration(float64(time.Second) / rate)
	if tat.Before(now) {
		tat = now
	}
	allowAt := tat.Add(-time.Duration(burst-1) * interval)
	if now.Before(allowAt) {
		return tat, allowAt.Sub(now)
	}
	return tat.Add(interval), 0
}
