package router

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestTheDashboardAndTheDocsNameRealRouterMetrics: every router series the
// Grafana dashboard queries is one the router serves, with the labels it
// filters by, and docs/router.md lists every series it serves.
func TestTheDashboardAndTheDocsNameRealRouterMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	const cluster = "ns/c"
	m.connection(cluster, ReadWrite, resultForwarded)
	m.active(cluster, ReadWrite, 1)
	m.byteCounter(cluster, ReadWrite, directionIn).Add(1)
	m.record(cluster, Record{Primary: "a:1", Epoch: 1}, true)
	m.closedByChange(cluster, ReadWrite)
	m.staleRecord(cluster)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]map[string]bool{}
	for _, f := range families {
		labels[f.GetName()] = map[string]bool{}
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels[f.GetName()][l.GetName()] = true
		}
	}
	raw, err := os.ReadFile("../../examples/monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	queried := 0
	series := regexp.MustCompile(`(mysos_router_[a-z_]+)(?:\{([^}]*)\})?`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, s := range series.FindAllStringSubmatch(tg.Expr, -1) {
				queried++
				have, ok := labels[s[1]]
				if !ok {
					t.Errorf("the dashboard queries %s, which the router does not serve", s[1])
					continue
				}
				for _, matcher := range strings.Split(s[2], ",") {
					if matcher == "" {
						continue
					}
					if name, _, _ := strings.Cut(strings.TrimSpace(matcher), "="); !have[strings.TrimSuffix(name, "~")] {
						t.Errorf("the dashboard filters %s by %s, a label it does not have", s[1], name)
					}
				}
			}
		}
	}
	if queried < 4 {
		t.Errorf("the dashboard queries %d router series; want its router panels", queried)
	}
	doc, err := os.ReadFile("../../docs/router.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range labels {
		if !strings.Contains(string(doc), "`"+name) {
			t.Errorf("docs/router.md does not list %s", name)
		}
	}
}
