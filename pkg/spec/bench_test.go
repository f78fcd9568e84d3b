package spec

import (
	"encoding/json"
	"os"
	"testing"
)

// Benchmarks of spec decoding and validation (docs/benchmarks.md, "Hot
// paths"), on examples/full.yaml, the manifest that sets every field. The
// API server decodes, defaults and validates every create and update body
// (JSON from mysosctl, which has parsed the YAML itself); the store reads a
// stored spec with plain encoding/json.

// benchManifests are full.yaml as written and as mysosctl sends it: parsed,
// defaulted, and marshalled to JSON.
func benchManifests(b *testing.B) (yamlBody, jsonBody []byte) {
	b.Helper()
	yamlBody, err := os.ReadFile("../../examples/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cs, err := Parse(yamlBody)
	if err != nil {
		b.Fatal(err)
	}
	if jsonBody, err = json.Marshal(cs[0]); err != nil {
		b.Fatal(err)
	}
	return yamlBody, jsonBody
}

// BenchmarkDecode: strict Decode (generic tree, field-by-field check,
// struct) of the manifest as YAML and as JSON, and, for comparison, the
// plain json.Unmarshal the store uses for a stored spec.
func BenchmarkDecode(b *testing.B) {
	yamlBody, jsonBody := benchManifests(b)
	for _, c := range []struct {
		name string
		body []byte
	}{{"yaml", yamlBody}, {"json", jsonBody}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(c.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("json-unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c MySQLCluster
			if err := json.Unmarshal(jsonBody, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeDefaultValidate: what the API server does with a create
// or update body: Decode, SetDefaults, Validate.
func BenchmarkDecodeDefaultValidate(b *testing.B) {
	yamlBody, jsonBody := benchManifests(b)
	for _, c := range []struct {
		name string
		body []byte
	}{{"yaml", yamlBody}, {"json", jsonBody}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cl, err := Decode(c.body)
				if err != nil {
					b.Fatal(err)
				}
				SetDefaults(cl)
				if errs := Validate(cl); len(errs) > 0 {
					b.Fatal(errs)
				}
			}
		})
	}
}

// BenchmarkValidate: Validate alone, of the defaulted cluster.
func BenchmarkValidate(b *testing.B) {
	yamlBody, _ := benchManifests(b)
	cs, err := Parse(yamlBody)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if errs := Validate(cs[0]); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// BenchmarkParseYAML: what mysosctl apply does with the file before it sends
// it: Parse (DecodeAll, SetDefaults, Validate).
func BenchmarkParseYAML(b *testing.B) {
	yamlBody, _ := benchManifests(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(yamlBody); err != nil {
			b.Fatal(err)
		}
	}
}
