package dataset

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fgstudio/fgstudio/contract/datasetspec"
	"github.com/fgstudio/fgstudio/generator"
)

func TestTornJournalLineIsCut(t *testing.T) {
	p := filepath.Join(t.TempDir(), "attempts.jsonl")
	good := `{"class":"a","attempt":0,"seed":1,"fidelity":0.9,"fidelity_measure":"class_prob","novelty":1,"neighbour_id":3,"accepted":true}` + "\n"
	os.WriteFile(p, []byte(good+`{"class":"a","attem`), 0o644)
	got, err := readJournal(p)
	if err != nil || len(got) != 1 || !got[0].Accepted {
		t.Fatalf("%v %+v", err, got)
	}
	raw, _ := os.ReadFile(p)
	if string(raw) != good {
		t.Errorf("journal not cut back to its last whole line: %q", raw)
	}
}

// TestFidelityMeasuresMatchTheGenerator keeps datasetspec's copies of the
// measure names (it may not import the generator) equal to the
// generator's.
func TestFidelityMeasuresMatchTheGenerator(t *testing.T) {
	for _, c := range [][2]string{
		{datasetspec.FidelityClassProbability, generator.FidelityClassProbability},
		{datasetspec.FidelityAttributeAgreement, generator.FidelityAttributeAgreement},
		{datasetspec.FidelityDAMSMSimilarity, generator.FidelityDAMSMSimilarity},
		{datasetspec.CanonicalMeasure("class_prob"), generator.FidelityClassProbability},
		{datasetspec.CanonicalMeasure("attribute_match"), generator.FidelityAttributeAgreement},
		{datasetspec.CanonicalMeasure("text_similarity"), generator.FidelityDAMSMSimilarity},
	} {
		if c[0] != c[1] {
			t.Errorf("datasetspec measure %q, generator %q", c[0], c[1])
		}
	}
}
