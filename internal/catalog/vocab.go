package catalog

import (
	"fmt"
	"path/filepath"

	"github.com/fgstudio/fgstudio/textenc"
)

// ReadVocab reads the model's vocab.json. When model.json also gives
// sizes.max_words, the two must agree: the text encoder was exported for
// one caption length, and a vocabulary that silently wins over the
// manifest would feed it another.
func (m *Model) ReadVocab() (*textenc.Vocab, error) {
	if m.Manifest.Vocab == "" {
		return nil, fmt.Errorf("model %s: no vocabulary (model.json names no vocab)", m.Manifest.Name)
	}
	v, err := textenc.LoadVocab(filepath.Join(m.Dir, m.Manifest.Vocab))
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", m.Manifest.Name, err)
	}
	if n, ok := m.Manifest.Sizes["max_words"]; ok {
		if f, isNum := n.(float64); !isNum || int(f) != v.MaxWords() {
			return nil, fmt.Errorf("model %s: model.json sizes.max_words is %v but %s says max_words %d: they must agree",
				m.Manifest.Name, n, m.Manifest.Vocab, v.MaxWords())
		}
	}
	return v, nil
}
