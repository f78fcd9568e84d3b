package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/mysos-project/mysos"

// deps lists the packages pkg imports, transitively.
func deps(t testing.TB, pkg string) []string {
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
	t.Run("only cmd/mysos-devcluster imports pkg/devcluster", func(t *testing.T) {
		out, err := exec.Command("go", "list", module+"/...").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, pkg := range strings.Fields(string(out)) {
			if pkg == module+"/cmd/mysos-devcluster" || pkg == module+"/pkg/devcluster" {
				continue
			}
			for _, d := range deps(t, pkg) {
				if d == module+"/pkg/devcluster" {
					t.Errorf("%s imports pkg/devcluster: the scheduler and executor must run unchanged on real Mesos", pkg)
				}
			}
		}
	})
	t.Run("pkg/devcluster knows nothing of MySQL", func(t *testing.T) {
		for _, d := range deps(t, module+"/pkg/devcluster") {
			if (strings.HasPrefix(d, module+"/") && d != module+"/pkg/devcluster") || strings.Contains(d, "mysql") {
				t.Errorf("pkg/devcluster depends on %s", d)
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
