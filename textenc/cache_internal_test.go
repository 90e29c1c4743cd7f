package textenc

import (
	"errors"
	"strings"
	"testing"
)

// A prompt read again comes from the vocabulary's cache: the same tokens
// and error, as a copy the caller may change, empty lists still empty.
func TestTokenizeReadsOnce(t *testing.T) {
	v, err := NewVocab(map[string]int64{"<pad>": 0, "red": 1, "bird": 2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	a, err := v.Tokenize("a red bird bird")
	if err != nil {
		t.Fatal(err)
	}
	a.IDs[0] = 99
	b, err := v.Tokenize("a red bird bird")
	if err != nil || b.IDs[0] != 1 || len(b.Dropped) != 1 || len(b.Unknown) != 1 {
		t.Fatalf("second read: %+v %v", b, err)
	}
	c, _ := v.Tokenize("red")
	if c.Unknown == nil || c.Dropped == nil {
		t.Fatalf("empty lists came back nil: %+v", c)
	}
	if _, err := v.Tokenize("zebra"); !errors.Is(err, ErrNoKnownWord) {
		t.Fatalf("unknown words: %v", err)
	}
	if _, err := v.Tokenize("zebra"); !errors.Is(err, ErrNoKnownWord) {
		t.Fatalf("unknown words, read again: %v", err)
	}
	for i := range tokenCache + 5 {
		v.Tokenize("red " + strings.Repeat("x", i))
	}
	if n := len(v.read); n > tokenCache {
		t.Fatalf("cache holds %d prompts", n)
	}
}
