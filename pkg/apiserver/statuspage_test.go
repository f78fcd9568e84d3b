package apiserver_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/mysos-project/mysos/pkg/spec"
)

// TestStatusPageShowsEveryClusterWithoutAToken: / is HTML that names each
// cluster, its phase, instances and roles, refreshes itself and loads
// nothing from elsewhere.
func TestStatusPageShowsEveryClusterWithoutAToken(t *testing.T) {
	a := newAPI(t)
	a.create(validYAML)
	a.setStatus(func(st *spec.ClusterStatus) {
		makeReady(st)
		st.Phase = spec.PhaseRunning
		st.Instances[0].Role = "primary"
		st.Instances[1].Role = "replica"
	})
	code, body := a.do("GET", "/", "", "", "")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d %s", code, body)
	}
	for _, want := range []string{"default/shop", `class="phase Running"`, "shop-0", `class="primary">primary`, `http-equiv="refresh"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if external := regexp.MustCompile(`(src|href)="(https?:)?//`).FindString(body); external != "" {
		t.Errorf("the page loads from elsewhere: %s", external)
	}
	if code, _ := a.do("GET", "/nope", "", "", ""); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d; want 404", code)
	}
}
