// Package textenc reads prompts the way the text encoder was trained to:
// the contract tokenizer (exactly the training code's rules, checked
// against golden vectors that the training code writes). The text-encoder
// graph itself runs in package generator; this package links no ONNX
// Runtime, so the API can tokenize without it.
package textenc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
)

var (
	// ErrEmptyPrompt is returned for a prompt with no word at all.
	ErrEmptyPrompt = errors.New("prompt is empty")
	// ErrNoKnownWord is returned when no word of the prompt is in the
	// vocabulary: an all-padding caption would make attention undefined.
	ErrNoKnownWord = errors.New("prompt has no word the model knows")
)

// Vocab maps words to ids (0 is padding) with the tokenizer's rules.
type Vocab struct {
	ids      map[string]int64
	words    []string // by id
	maxWords int

	// read keeps the last prompts read: a job's prompt is checked by the
	// API, then by the worker, encoded by the generator and again by the
	// scorer; each process splits and looks it up once (tokenCache).
	mu   sync.Mutex
	read map[string]readPrompt
}

type readPrompt struct {
	t   Tokens
	err error
}

// tokenCache bounds Vocab.read; it starts over when full.
const tokenCache = 1024

// vocabFile is vocab.json as the training code writes it.
type vocabFile struct {
	Tokenizer struct {
		Lowercase bool   `json:"lowercase"`
		Pattern   string `json:"pattern"`
		ASCIIOnly bool   `json:"ascii_only"`
		MaxWords  int    `json:"max_words"`
		Truncate  string `json:"truncate"`
	} `json:"tokenizer"`
	PaddingID int              `json:"padding_id"`
	Words     map[string]int64 `json:"words"`
}

// LoadVocab reads vocab.json and checks that its rules are the ones this
// tokenizer implements.
func LoadVocab(path string) (*Vocab, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vocabulary: %w", err)
	}
	var f vocabFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("vocabulary %s: %w", path, err)
	}
	t := f.Tokenizer
	switch {
	case !t.Lowercase || !t.ASCIIOnly || t.Pattern != "[a-z0-9_]+":
		return nil, fmt.Errorf("vocabulary %s: tokenizer rules %+v are not the contract's (lowercase, ascii_only, [a-z0-9_]+)", path, t)
	case t.Truncate != "" && t.Truncate != "first":
		return nil, fmt.Errorf("vocabulary %s: truncate %q, only \"first\" is supported", path, t.Truncate)
	case t.MaxWords < 1 || t.MaxWords > 512:
		return nil, fmt.Errorf("vocabulary %s: max_words %d out of range 1..512", path, t.MaxWords)
	case f.PaddingID != 0:
		return nil, fmt.Errorf("vocabulary %s: padding_id %d, want 0", path, f.PaddingID)
	}
	return NewVocab(f.Words, t.MaxWords)
}

// NewVocab builds a vocabulary from word → id, where id 0 is padding and
// ids are 0..N-1 without gaps.
func NewVocab(ids map[string]int64, maxWords int) (*Vocab, error) {
	words := make([]string, len(ids))
	seen := make([]bool, len(ids))
	for w, id := range ids {
		if id < 0 || id >= int64(len(ids)) || seen[id] {
			return nil, fmt.Errorf("vocabulary: id %d of %q is out of range or repeated", id, w)
		}
		seen[id] = true
		words[id] = w
	}
	if len(words) < 2 {
		return nil, errors.New("vocabulary: no words besides padding")
	}
	copied := make(map[string]int64, len(ids))
	for w, id := range ids {
		if id != 0 {
			copied[w] = id
		}
	}
	return &Vocab{ids: copied, words: words, maxWords: maxWords}, nil
}

// Size is the number of ids, padding included.
func (v *Vocab) Size() int { return len(v.words) }

// MaxWords is the longest caption the encoder is given; longer prompts are
// truncated to their first MaxWords known words.
func (v *Vocab) MaxWords() int { return v.maxWords }

// Tokens is how a prompt is read.
type Tokens struct {
	IDs     []int64  `json:"ids"`     // the known words kept, at most MaxWords
	Words   []string `json:"words"`   // the same words as text
	Unknown []string `json:"unknown"` // words not in the vocabulary, ignored
	Dropped []string `json:"dropped"` // known words past MaxWords, ignored
}

// Split applies the contract's rules up to the vocabulary look-up: drop
// non-ASCII characters, lower-case, split on runs of [a-z0-9_].
func Split(text string) []string {
	var words []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= 0x80 {
			// Non-ASCII bytes (every byte of a multi-byte UTF-8 sequence
			// is >= 0x80) are dropped, not separators: "café" → "caf".
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '_' {
			cur.WriteByte(c)
			continue
		}
		flush()
	}
	flush()
	return words
}

// Tokenize reads a prompt: known words become ids (the first MaxWords of
// them), unknown and surplus words are reported. A prompt with no known
// word is an error.
func (v *Vocab) Tokenize(text string) (Tokens, error) {
	v.mu.Lock()
	r, ok := v.read[text]
	v.mu.Unlock()
	if !ok {
		r.t, r.err = v.tokenize(text)
		v.mu.Lock()
		if v.read == nil || len(v.read) >= tokenCache {
			v.read = map[string]readPrompt{}
		}
		v.read[text] = r
		v.mu.Unlock()
	}
	// A copy: the caller may keep or change it.
	return Tokens{IDs: slices.Clone(r.t.IDs), Words: slices.Clone(r.t.Words), Unknown: slices.Clone(r.t.Unknown),
		Dropped: slices.Clone(r.t.Dropped)}, r.err
}

func (v *Vocab) tokenize(text string) (Tokens, error) {
	t := Tokens{IDs: []int64{}, Words: []string{}, Unknown: []string{}, Dropped: []string{}}
	words := Split(text)
	for _, w := range words {
		id, ok := v.ids[w]
		switch {
		case !ok:
			t.Unknown = append(t.Unknown, w)
		case len(t.IDs) < v.maxWords:
			t.IDs = append(t.IDs, id)
			t.Words = append(t.Words, w)
		default:
			t.Dropped = append(t.Dropped, w)
		}
	}
	if len(words) == 0 {
		return t, ErrEmptyPrompt
	}
	if len(t.IDs) == 0 {
		return t, fmt.Errorf("%w (unknown: %s)", ErrNoKnownWord, strings.Join(t.Unknown, ", "))
	}
	return t, nil
}

// Word is the text of an id ("" for padding or out of range).
func (v *Vocab) Word(id int64) string {
	if id <= 0 || id >= int64(len(v.words)) {
		return ""
	}
	return v.words[id]
}

// Complete lists up to limit vocabulary words starting with prefix (after
// the tokenizer's normalisation), most frequent first — ids are assigned
// by frequency.
func (v *Vocab) Complete(prefix string, limit int) []string {
	p := strings.Join(Split(prefix), "")
	var res []string
	for id := 1; id < len(v.words) && len(res) < limit; id++ {
		if strings.HasPrefix(v.words[id], p) {
			res = append(res, v.words[id])
		}
	}
	return res
}

// Words lists the vocabulary in id order, padding excluded.
func (v *Vocab) Words() []string {
	res := append([]string(nil), v.words[1:]...)
	return res
}
