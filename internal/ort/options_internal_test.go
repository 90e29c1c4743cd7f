//go:build !unit

package ort

import (
	"log/slog"
	"testing"
)

// TestSpinning: pool threads sleep when idle unless Config.Spin asks them
// to busy-wait (TestMain in ort_test.go opens the environment).
func TestSpinning(t *testing.T) {
	keys := []string{"session.intra_op.allow_spinning", "session.inter_op.allow_spinning"}
	for _, spin := range []bool{false, true} {
		r := &Runtime{cfg: Config{Provider: CPU, IntraOpThreads: 2, Spin: spin}, log: slog.New(slog.DiscardHandler)}
		opts, provider, err := r.sessionOptions()
		if err != nil {
			t.Fatal(err)
		}
		if provider != CPU {
			t.Errorf("provider %s, want cpu", provider)
		}
		for _, k := range keys {
			has, err := opts.HasSessionConfigEntry(k)
			if err != nil {
				t.Fatal(err)
			}
			if spin && has {
				v, _ := opts.GetSessionConfigEntry(k)
				t.Errorf("Spin: true: %s = %q, want it unset (ONNX Runtime's default, spinning)", k, v)
			}
			if !spin {
				v, err := opts.GetSessionConfigEntry(k)
				if !has || err != nil || v != "0" {
					t.Errorf("Spin: false: %s = %q (set %v, err %v), want \"0\"", k, v, has, err)
				}
			}
		}
		opts.Destroy()
	}
}
