package ctl

import (
	"strings"
	"testing"

	"github.com/mysos-project/mysos/pkg/spec"
)

func TestGetWideShowsRouterPorts(t *testing.T) {
	f := newFakeAPI(t)
	f.cluster.Spec.Router = &spec.RouterSpec{ReadWritePort: 6446}
	out := f.mustRun("get", "clusters", "shop", "-o", "wide")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "ROUTER") || !strings.Contains(lines[1], " 6446/- ") {
		t.Fatalf("get -o wide:\n%s\nwant a ROUTER column with 6446/-", out)
	}
	f.cluster.Spec.Router = nil
	if out := f.mustRun("get", "clusters", "shop", "-o", "wide"); strings.Contains(out, "6446") {
		t.Fatalf("get -o wide without spec.router:\n%s", out)
	}
}
