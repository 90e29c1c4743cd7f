package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The pressure section goes into BENCHMARKS.md and .json, replacing an
// earlier one and keeping the rest as it was.
func TestMergePressure(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "B")
	md := "# Benchmarks\n\nreport\n"
	js := "{\n \"generated\": \"x\",\n \"rows\": [\n  1\n ]\n}\n"
	os.WriteFile(out+".md", []byte(md), 0o644)
	os.WriteFile(out+".json", []byte(js), 0o644)
	r := &Pressure{Cores: 2, Bytes: &BytesRun{N: 16, ImageBytes: 100, RedisSent: 120}}
	for range 2 {
		if err := mergePressure(out, r); err != nil {
			t.Fatal(err)
		}
	}
	gotMD, _ := os.ReadFile(out + ".md")
	if !strings.HasPrefix(string(gotMD), md) || strings.Count(string(gotMD), pressureBegin) != 1 || !strings.Contains(string(gotMD), "**120 B**") {
		t.Fatalf("md:\n%s", gotMD)
	}
	gotJS, _ := os.ReadFile(out + ".json")
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(gotJS, &doc); err != nil || len(doc) != 3 || doc["pressure"] == nil {
		t.Fatalf("json (%v):\n%s", err, gotJS)
	}
	if !strings.HasPrefix(string(gotJS), strings.TrimSuffix(js, "\n}\n")) {
		t.Fatalf("the report's JSON changed:\n%s", gotJS)
	}
}
