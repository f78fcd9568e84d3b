package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
)

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestMetricsShowWhatWasObservedAndForgetDeletedClusters(t *testing.T) {
	r := New()
	lag := 3 * time.Second
	r.Clusters.Observe("default", "shop", "Running", 2, []Instance{
		{Name: "shop-0", Up: true, Role: "primary"},
		{Name: "shop-1", Up: true, ReadOnly: true, Role: "replica", Lag: &lag},
	})
	r.Operations.Ended("default", "shop", "failover", ResultCompleted, 80*time.Millisecond)
	r.Reconciles.Pass(time.Millisecond, errors.New("boom"))
	r.QueueDepth(func() int { return 4 })
	r.Backups.Finished("default", "shop", ResultFailed)
	r.Servers.Observe("default", "shop", map[string]map[string]float64{"shop-0": {"Threads_connected": 5, "Questions": 42}})
	got := scrape(t, r)
	for _, want := range []string{
		`mysos_cluster_phase{cluster="shop",namespace="default",phase="Running"} 1`,
		`mysos_cluster_phase{cluster="shop",namespace="default",phase="Degraded"} 0`,
		`mysos_cluster_ready_instances{cluster="shop",namespace="default"} 2`,
		`mysos_instance_role{cluster="shop",instance="shop-0",namespace="default",role="primary"} 1`,
		`mysos_instance_read_only{cluster="shop",instance="shop-1",namespace="default"} 1`,
		`mysos_instance_replication_lag_seconds{cluster="shop",instance="shop-1",namespace="default"} 3`,
		`mysos_operations_total{cluster="shop",kind="failover",namespace="default",result="completed"} 1`,
		`mysos_operation_duration_seconds_bucket{kind="failover",le="0.1"} 1`,
		`mysos_reconcile_errors_total 1`,
		`mysos_reconcile_queue_depth 4`,
		`mysos_backups_total{cluster="shop",namespace="default",result="failed"} 1`,
		`go_goroutines`, `process_resident_memory_bytes`,
		`mysos_mysql_threads_connected{cluster="shop",instance="shop-0",namespace="default"} 5`,
		`# TYPE mysos_mysql_questions_total counter`,
		`mysos_mysql_questions_total{cluster="shop",instance="shop-0",namespace="default"} 42`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// An instance gone loses its series; a cluster gone loses them all.
	r.Clusters.Observe("default", "shop", "Running", 1, []Instance{{Name: "shop-0", Up: true, Role: "primary"}})
	if got := scrape(t, r); strings.Contains(got, `instance="shop-1"`) {
		t.Error("shop-1's series outlived it")
	}
	r.Clusters.Forget("default", "shop")
	r.Operations.Forget("default", "shop")
	r.Backups.Forget("default", "shop")
	r.Servers.Forget("default", "shop")
	if got := scrape(t, r); strings.Contains(got, `cluster="shop"`) {
		t.Errorf("series of a deleted cluster remain:\n%s", got)
	}
}

func TestNilMetricsDoNothing(t *testing.T) {
	var c *Clusters
	var o *Operations
	var p *Reconciles
	var b *Backups
	c.Observe("a", "b", "Running", 0, nil)
	o.Ended("a", "b", "failover", ResultCompleted, time.Second)
	p.Pass(time.Second, nil)
	b.Finished("a", "b", ResultSucceeded)
}

func TestEtcdRequestsAreTimedByMethod(t *testing.T) {
	r := New()
	call := r.Etcd.Interceptor()
	invoke := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	if err := call(context.Background(), "/etcdserverpb.KV/Range", nil, nil, nil, invoke); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, r); !strings.Contains(got, `mysos_etcd_request_duration_seconds_count{code="OK",method="Range"} 1`) {
		t.Fatalf("the Range call is not timed:\n%s", got)
	}
}

// allNames observes every metric once and returns the names the registry
// serves.
func allNames(t *testing.T) map[string]bool {
	t.Helper()
	r := New()
	lag := time.Second
	behind := uint64(2)
	r.Clusters.Observe("ns", "c", "Running", 1, []Instance{{Name: "c-0", Up: true, Role: "replica", Lag: &lag, GTIDLag: &behind,
		Replica: true, IORunning: true, SQLRunning: true, State: "TASK_RUNNING"}})
	r.Operations.Ended("ns", "c", "failover", ResultCompleted, time.Second)
	r.Reconciles.Pass(time.Millisecond, errors.New("x"))
	r.Backups.Finished("ns", "c", ResultSucceeded)
	r.Backups.Last("ns", "c", time.Now(), time.Second, 1)
	values := map[string]float64{}
	for _, v := range r.Servers.VariableNames() {
		values[v] = 1
	}
	r.Servers.Observe("ns", "c", map[string]map[string]float64{"c-0": values})
	r.Mesos.Subscribed(true)
	r.Mesos.Offers(OfferUsed, 1)
	r.Mesos.Launched(1)
	r.Mesos.Killed()
	r.Mesos.Ended("TASK_FAILED", "REASON_X")
	invoke := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	_ = r.Etcd.Interceptor()(context.Background(), "/etcdserverpb.KV/Range", nil, nil, nil, invoke)
	families, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	return names
}

var metricName = regexp.MustCompile(`mysos_[a-z0-9_]+`)

// TestTheDashboardAndTheDocsNameRealMetrics: every query of the Grafana
// dashboard names a metric Mysos serves, and docs/metrics.md lists every
// metric it serves.
func TestTheDashboardAndTheDocsNameRealMetrics(t *testing.T) {
	names := allNames(t)
	raw, err := os.ReadFile("../../examples/monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not valid JSON: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			exprs = append(exprs, q)
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("only %d queries in the dashboard", len(exprs))
	}
	for _, e := range exprs {
		for _, m := range metricName.FindAllString(e, -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
			if strings.HasPrefix(base, "mysos_router_") {
				continue // the routers' own registry: pkg/router checks them
			}
			if !names[base] {
				t.Errorf("the dashboard queries %s (%q), which Mysos does not serve", m, e)
			}
		}
	}
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range names {
		if strings.HasPrefix(name, "mysos_") && !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/metrics.md does not list %s", name)
		}
	}
}
