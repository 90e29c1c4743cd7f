package datasetspec

import (
	"fmt"
	"testing"

	"github.com/fgstudio/fgstudio/contract/jobspec"
)

// Every seed a data set uses (class seed + attempt, attempts bounded by
// MaxAttempts × MaxPerClass) stays within jobspec.MaxSeed, the range every
// client language reads exactly, for any job seed, including the largest.
func TestClassSeedsStayWithinMaxSeed(t *testing.T) {
	const lastAttempt = uint64(MaxAttempts) * MaxPerClass
	var highest uint64
	for _, seed := range []uint64{0, 1, 7, 1 << 40, jobspec.MaxSeed - 1, jobspec.MaxSeed} {
		seen := map[uint64]string{}
		for i := 0; i < 2000; i++ {
			class := fmt.Sprintf("%03d.Class_%d", i%200+1, i)
			s := classSeed(seed, class)
			if s+lastAttempt > jobspec.MaxSeed {
				t.Fatalf("seed %d, class %s: first seed %d + %d attempts passes 2^53−1", seed, class, s, lastAttempt)
			}
			if other, ok := seen[s]; ok {
				t.Fatalf("seed %d: classes %s and %s share first seed %d", seed, other, class, s)
			}
			seen[s] = class
			highest = max(highest, s)
		}
	}
	// The hash spreads over the range it keeps (52 bits), not a corner of it.
	if highest < 1<<51 {
		t.Errorf("highest first seed %d over 12,000 classes: the hash does not use its 52 bits", highest)
	}
}
