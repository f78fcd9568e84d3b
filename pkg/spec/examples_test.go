package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExamplesAreValid: every manifest in examples/ decodes strictly and
// validates, so the documentation cannot drift from the rules.
func TestExamplesAreValid(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Decode(raw)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if c.Metadata.Namespace == "" {
			c.Metadata.Namespace = "default"
		}
		SetDefaults(c)
		if errs := Validate(c); len(errs) > 0 {
			t.Errorf("%s: %v", f, errs)
		}
	}
}
