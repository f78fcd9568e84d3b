package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `date: 2026-11-26T10:00:00Z
nproc: 2
goos: linux
goarch: amd64
pkg: github.com/mysos-project/mysos/e2e
cpu: AMD EPYC
BenchmarkControlPlane/clusters=1000-2   1   16743817689 ns/op   16.74 s-to-running   2.691 steady-cpu-%   250.7 steady-rss-MB
BenchmarkFailover-2   20   1 ns/op   71.8 writable-median-ms   107.0 writable-max-ms
BenchmarkFailover-2   20   1 ns/op   80.2 writable-median-ms   1207.0 writable-max-ms
BenchmarkFailover-2   20   1 ns/op   90.0 writable-median-ms   1300.0 writable-max-ms
pkg: github.com/mysos-project/mysos/pkg/spec
BenchmarkDecode/yaml-2   5000   217595 ns/op   86072 B/op
`

// The report reads go test's output, takes medians and spreads, says which
// targets are met and by how much the others are missed, and replaces only
// the generated part of the document.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.txt")
	if err := os.WriteFile(raw, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := readResults([]string{raw})
	if err != nil {
		t.Fatal(err)
	}
	out := render(set)
	for _, want := range []string{
		"| 1,000 clusters × 3: apply → all tasks RUNNING (s) | ≤ 30 | 16.7 | met |",
		"| scheduler resident memory at steady state (MB) | ≤ 200 | 251 | **missed** by 25% |",
		"(ms, median) | ≤ 300 | 80.2 | met |",
		"| failover: the same, slowest run (ms, ≈ p99) | ≤ 1,000 | 1,207 | **missed** by 21% |",
		"| e2e.Failover | writable-median-ms | 80.2 | 71.8 – 90 | 3 |",
		"| spec.Decode/yaml | ns/op | 217,595 | — | 1 |",
		"switchover: longest pause between acknowledged writes (ms, median) | ≤ 500 | not measured |",
		"Machine: AMD EPYC, 2 vCPUs",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	doc := filepath.Join(dir, "doc.md")
	prose := "# Benchmarks\n\nhand-written\n\n" + beginMarker + "\nold table\n" + endMarker + "\n\nmore prose\n"
	if err := os.WriteFile(doc, []byte(prose), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rewrite(doc, out); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(doc)
	if !strings.HasPrefix(string(got), "# Benchmarks\n\nhand-written\n\n"+beginMarker) || !strings.HasSuffix(string(got), endMarker+"\n\nmore prose\n") ||
		strings.Contains(string(got), "old table") || !strings.Contains(string(got), "16.7") {
		t.Fatalf("rewritten document:\n%s", got)
	}
	if err := rewrite(filepath.Join(dir, "raw.txt"), out); err == nil {
		t.Fatal("a document without markers was rewritten")
	}
}
