package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/studio/auth"
)

// activeStore is a store that lists a subject's active jobs (GET /v1/jobs).
type activeStore interface {
	store
	Active(ctx context.Context, subject string) ([]string, error)
}

func TestActiveListsBoundJobsOldestFirst(t *testing.T) {
	forEach(t, auth.Config{JobTTL: 2 * time.Second}, func(t *testing.T, st store) {
		ctx := t.Context()
		s, ok := st.(activeStore)
		if !ok {
			t.Fatalf("%T has no Active", st)
		}
		if ids, err := s.Active(ctx, "k"); err != nil || len(ids) != 0 {
			t.Fatalf("empty: %v %v", ids, err)
		}
		slot, err := s.Acquire(ctx, "k", 5)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Bind(ctx, "k", slot, "job-b"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		// A job bound without a reservation (the quota is off) is listed too.
		if err := s.Bind(ctx, "k", "", "job-a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Acquire(ctx, "k", 5); err != nil { // a pending reservation: not a job
			t.Fatal(err)
		}
		if err := s.Bind(ctx, "other", "", "job-c"); err != nil {
			t.Fatal(err)
		}
		ids, err := s.Active(ctx, "k")
		if err != nil || strings.Join(ids, ",") != "job-b,job-a" {
			t.Fatalf("active %v %v, want job-b,job-a", ids, err)
		}
		if err := s.Release(ctx, "k", "job-b"); err != nil {
			t.Fatal(err)
		}
		if ids, _ := s.Active(ctx, "k"); strings.Join(ids, ",") != "job-a" {
			t.Fatalf("after release: %v", ids)
		}
		time.Sleep(2100 * time.Millisecond)
		if ids, _ := s.Active(ctx, "k"); len(ids) != 0 {
			t.Fatalf("expired jobs still listed: %v", ids)
		}
	})
}
