package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/mysos-project/mysos"

// deps lists the packages pkg imports, transitively.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestArchitectureWalls keeps the boundaries the design depends on.
func TestArchitectureWalls(t *testing.T) {
	t.Run("mysosctl talks to the API, never to etcd", func(t *testing.T) {
		for _, d := range deps(t, module+"/cmd/mysosctl") {
			if strings.HasPrefix(d, "go.etcd.io/") || d == module+"/pkg/store" {
				t.Errorf("mysosctl depends on %s", d)
			}
		}
	})
	t.Run("pkg/spec is a leaf", func(t *testing.T) {
		for _, d := range deps(t, module+"/pkg/spec") {
			if strings.HasPrefix(d, module+"/") && d != module+"/pkg/spec" {
				t.Errorf("pkg/spec imports %s", d)
			}
		}
	})
}
