package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/studio/auth"
)

// store is the method set both backends share.
type store interface {
	Create(ctx context.Context, n auth.NewKey) (auth.Key, string, error)
	Lookup(ctx context.Context, token string) (auth.Key, error)
	Revoke(ctx context.Context, id string) (auth.Key, error)
	List(ctx context.Context) ([]auth.Key, error)
	Allow(ctx context.Context, subject string, rate float64, burst int) (time.Duration, error)
	Acquire(ctx context.Context, subject string, limit int) (string, error)
	Bind(ctx context.Context, subject, slot, jobID string) error
	Release(ctx context.Context, subject, member string) error
}

// backends are the store implementations: memory, and outside the unit
// tier the real ones of realparts_test.go (Redis).
func backends(t *testing.T, cfg auth.Config) map[string]func(t *testing.T) store {
	res := map[string]func(t *testing.T) store{
		"memory": func(t *testing.T) store { return auth.NewMemory(cfg) },
	}
	for name, open := range realBackends(cfg) {
		res[name] = open
	}
	return res
}

func forEach(t *testing.T, cfg auth.Config, f func(t *testing.T, s store)) {
	for name, open := range backends(t, cfg) {
		t.Run(name, func(t *testing.T) { f(t, open(t)) })
	}
}

func TestKeysCreateLookupRevoke(t *testing.T) {
	forEach(t, auth.Config{}, func(t *testing.T, s store) {
		ctx := t.Context()
		k, token, err := s.Create(ctx, auth.NewKey{Name: "ci", Scopes: []auth.Scope{auth.Generate}, RateLimit: 3, MaxActiveJobs: 2})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(token, "fgs_") || !auth.WellFormed(token) || k.Hash != auth.HashToken(token) || strings.Contains(k.Hash, token) {
			t.Fatalf("token %q key %+v", token, k)
		}
		got, err := s.Lookup(ctx, token)
		if err != nil || got.ID != k.ID || !got.Has(auth.Generate) || got.Has(auth.Admin) || got.RateLimit != 3 || got.MaxActiveJobs != 2 {
			t.Fatalf("lookup %+v %v", got, err)
		}
		// A token of the right shape that no key has, and garbage.
		other := "fgs_" + strings.Repeat("A", 43)
		for _, bad := range []string{other, "", "fgs_", token + "x", strings.ToUpper(token)} {
			if _, err := s.Lookup(ctx, bad); !errors.Is(err, auth.ErrUnknownKey) {
				t.Errorf("lookup %q: %v", bad, err)
			}
		}
		rk, err := s.Revoke(ctx, k.ID)
		if err != nil || rk.RevokedAt.IsZero() {
			t.Fatalf("revoke %+v %v", rk, err)
		}
		again, err := s.Revoke(ctx, k.ID)
		if err != nil || !again.RevokedAt.Equal(rk.RevokedAt) {
			t.Fatalf("second revoke moved the time: %v → %v (%v)", rk.RevokedAt, again.RevokedAt, err)
		}
		if got, err := s.Lookup(ctx, token); !errors.Is(err, auth.ErrRevoked) || got.ID != k.ID {
			t.Fatalf("revoked lookup %+v %v", got, err)
		}
		if _, err := s.Revoke(ctx, "key_nope"); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
		k2, _, err := s.Create(ctx, auth.NewKey{Name: "admin", Scopes: auth.AllScopes()})
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 2 || list[0].CreatedAt.After(list[1].CreatedAt) {
			t.Fatalf("list %+v %v", list, err)
		}
		byID := map[string]auth.Key{list[0].ID: list[0], list[1].ID: list[1]}
		if byID[k.ID].RevokedAt.IsZero() || !byID[k2.ID].RevokedAt.IsZero() || byID[k2.ID].Name != "admin" {
			t.Fatalf("list %+v", list)
		}
	})
}

func TestNewKeyValidation(t *testing.T) {
	cases := []struct {
		n     auth.NewKey
		field string
	}{
		{auth.NewKey{Scopes: []auth.Scope{auth.Generate}}, "name"},
		{auth.NewKey{Name: strings.Repeat("n", 101), Scopes: []auth.Scope{auth.Generate}}, "name"},
		{auth.NewKey{Name: "tab\there", Scopes: []auth.Scope{auth.Generate}}, "name"},
		{auth.NewKey{Name: "x"}, "scopes"},
		{auth.NewKey{Name: "x", Scopes: []auth.Scope{"root"}}, "scopes"},
		{auth.NewKey{Name: "x", Scopes: []auth.Scope{auth.Admin, auth.Admin}}, "scopes"},
		{auth.NewKey{Name: "x", Scopes: []auth.Scope{auth.Admin}, RateLimit: -1}, "rate_limit"},
		{auth.NewKey{Name: "x", Scopes: []auth.Scope{auth.Admin}, MaxActiveJobs: -2}, "max_active_jobs"},
	}
	s := auth.NewMemory(auth.Config{})
	for _, c := range cases {
		_, _, err := s.Create(t.Context(), c.n)
		var fe *auth.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("%+v: %v, want field %s", c.n, err, c.field)
		}
	}
}

func TestRateLimit(t *testing.T) {
	forEach(t, auth.Config{}, func(t *testing.T, s store) {
		ctx := t.Context()
		// 1 request/s with bursts of 3: three pass at once, the fourth waits
		// about a second; another subject is unaffected.
		for i := range 3 {
			if wait, err := s.Allow(ctx, "a", 1, 3); err != nil || wait != 0 {
				t.Fatalf("request %d: wait %v err %v", i, wait, err)
			}
		}
		wait, err := s.Allow(ctx, "a", 1, 3)
		if err != nil || wait < 500*time.Millisecond || wait > time.Second {
			t.Fatalf("4th: wait %v err %v", wait, err)
		}
		if wait, _ := s.Allow(ctx, "b", 1, 3); wait != 0 {
			t.Fatalf("other subject waits %v", wait)
		}
		if wait, _ := s.Allow(ctx, "a", 0, 0); wait != 0 {
			t.Fatalf("rate 0 means unlimited, got wait %v", wait)
		}
	})
}

func TestQuota(t *testing.T) {
	forEach(t, auth.Config{PendingTTL: 300 * time.Millisecond}, func(t *testing.T, s store) {
		ctx := t.Context()
		s1, err := s.Acquire(ctx, "k", 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Bind(ctx, "k", s1, "job-1"); err != nil {
			t.Fatal(err)
		}
		s2, err := s.Acquire(ctx, "k", 2)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Acquire(ctx, "k", 2)
		var qe *auth.QuotaError
		if !errors.As(err, &qe) || !errors.Is(err, auth.ErrQuota) || len(qe.Jobs) != 1 || qe.Jobs[0] != "job-1" {
			t.Fatalf("third acquire: %v %+v", err, qe)
		}
		if _, err := s.Acquire(ctx, "other", 1); err != nil {
			t.Fatalf("other subject: %v", err)
		}
		if err := s.Release(ctx, "k", "job-1"); err != nil {
			t.Fatal(err)
		}
		s3, err := s.Acquire(ctx, "k", 2)
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		// Unbound reservations expire after PendingTTL.
		_ = s2
		_ = s3
		if _, err := s.Acquire(ctx, "k", 2); !errors.Is(err, auth.ErrQuota) {
			t.Fatalf("full again: %v", err)
		}
		time.Sleep(400 * time.Millisecond)
		if _, err := s.Acquire(ctx, "k", 2); err != nil {
			t.Fatalf("pending slots did not expire: %v", err)
		}
	})
}

func TestQuotaConcurrentAcquireNeverOvershoots(t *testing.T) {
	forEach(t, auth.Config{}, func(t *testing.T, s store) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := 0
		for range 20 {
			wg.Go(func() {
				if _, err := s.Acquire(t.Context(), "k", 5); err == nil {
					mu.Lock()
					got++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if got != 5 {
			t.Fatalf("%d slots granted, limit 5", got)
		}
	})
}
