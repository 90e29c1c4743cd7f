package textenc_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fgstudio/fgstudio/textenc"
)

func testVocab(t testing.TB, maxWords int) *textenc.Vocab {
	t.Helper()
	words := []string{"<pad>", "a", "bird", "red", "crown", "has", "this", "short", "bill", "pointed", "caf", "wing_bars", "2nd"}
	ids := map[string]int64{}
	for i, w := range words {
		ids[w] = int64(i)
	}
	v, err := textenc.NewVocab(ids, maxWords)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSplit(t *testing.T) {
	cases := map[string][]string{
		"This Bird has a RED crown.":         {"this", "bird", "has", "a", "red", "crown"},
		"black-and-yellow;breast!!":          {"black", "and", "yellow", "breast"},
		"the café bird, naïve":               {"the", "caf", "bird", "nave"},
		"  \t tabs\tand\nnewlines ":          {"tabs", "and", "newlines"},
		"wing_bars and 2nd 123":              {"wing_bars", "and", "2nd", "123"},
		"\u212a\u0130 red":                   {"red"},
		"":                                   nil,
		"!!! ...":                            nil,
		string([]byte{0xff, 'o', 0xfe, 'k'}): {"ok"},
	}
	for in, want := range cases {
		if got := textenc.Split(in); !reflect.DeepEqual(got, want) {
			t.Errorf("Split(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTokenize(t *testing.T) {
	v := testVocab(t, 4)
	got, err := v.Tokenize("This bird has a zebra-striped crown")
	if err != nil {
		t.Fatal(err)
	}
	want := textenc.Tokens{
		IDs:     []int64{6, 2, 5, 1},
		Words:   []string{"this", "bird", "has", "a"},
		Unknown: []string{"zebra", "striped"},
		Dropped: []string{"crown"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestTokenizeErrors(t *testing.T) {
	v := testVocab(t, 18)
	if _, err := v.Tokenize("  ,;  "); !errors.Is(err, textenc.ErrEmptyPrompt) {
		t.Errorf("empty: %v", err)
	}
	_, err := v.Tokenize("zebra striped")
	if !errors.Is(err, textenc.ErrNoKnownWord) || !strings.Contains(err.Error(), "zebra, striped") {
		t.Errorf("no known word: %v", err)
	}
	// <pad> is not a word a prompt can reach: "<pad>" splits to "pad".
	if _, err := v.Tokenize("<pad>"); !errors.Is(err, textenc.ErrNoKnownWord) {
		t.Errorf("<pad>: %v", err)
	}
}

func TestComplete(t *testing.T) {
	v := testVocab(t, 18)
	if got := v.Complete("B", 10); !reflect.DeepEqual(got, []string{"bird", "bill"}) {
		t.Fatalf("Complete(B) = %q", got)
	}
	if got := v.Complete("", 3); len(got) != 3 {
		t.Fatalf("Complete('') = %q", got)
	}
}

func TestNewVocabRejectsBadIDs(t *testing.T) {
	for name, ids := range map[string]map[string]int64{
		"gap":      {"<pad>": 0, "a": 2},
		"repeat":   {"<pad>": 0, "a": 1, "b": 1},
		"negative": {"<pad>": 0, "a": -1},
		"only pad": {"<pad>": 0},
	} {
		if _, err := textenc.NewVocab(ids, 18); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"this bird has a red crown", "café", "", "\xff\xfe", strings.Repeat("a ", 100)} {
		f.Add(s)
	}
	v := testVocab(f, 5)
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := v.Tokenize(s)
		if len(tok.IDs) > 5 || len(tok.IDs) != len(tok.Words) {
			t.Fatalf("%q: %+v", s, tok)
		}
		if err == nil && len(tok.IDs) == 0 {
			t.Fatalf("%q: no ids and no error", s)
		}
		for _, w := range append(append(tok.Words, tok.Unknown...), tok.Dropped...) {
			if w == "" || !utf8.ValidString(w) || strings.ToLower(w) != w {
				t.Fatalf("%q: bad word %q", s, w)
			}
		}
		if n := len(textenc.Split(s)); n != len(tok.Words)+len(tok.Unknown)+len(tok.Dropped) {
			t.Fatalf("%q: %d words split, %+v", s, n, tok)
		}
	})
}
