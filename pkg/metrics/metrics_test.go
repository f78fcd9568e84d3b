package metrics

import (
	"context"
	"errors"
	"net/http/httptest"
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
