package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/spec"
)

// BenchmarkApplyToReady: real MariaDB on a 4-agent dev cluster (the
// scheduler with embedded etcd, the real executor). Each op applies a new
// 3-replica cluster through the API and waits for its Ready condition:
// offers, reservations and volumes, three launches, mysqld initialised and
// started, the primary elected, two replicas seeded and replicating with
// semi-sync. "running" is when all three tasks run. Between ops the cluster
// is deleted (untimed). Run with -benchtime Nx.
func BenchmarkApplyToReady(b *testing.B) {
	testutil.RequireBinary(b, "mariadb-install-db", "apt-get install -y mariadb-server")
	c := startDevCluster(b, 4)
	s := startScheduler(b, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"))
	api := benchAPI(b, s)
	var ready, running []time.Duration
	n := 0
	for b.Loop() {
		name := fmt.Sprintf("ready%d", n)
		n++
		obj, err := spec.ParseOne([]byte(strings.Replace(failoverManifest, "name: shop", "name: "+name, 1)))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := api.Create(benchCtx(b), obj, false); err != nil {
			b.Fatal(err)
		}
		var sawRunning time.Duration
		testutil.WaitFor(b, 3*time.Minute, "cluster "+name+" Ready", func() bool {
			got, err := api.Get(benchCtx(b), spec.DefaultNamespace, name)
			if err != nil {
				return false
			}
			if sawRunning == 0 && allTasksRunning(got, 3) {
				sawRunning = time.Since(start)
			}
			return readyTrue(*got)
		})
		ready, running = append(ready, time.Since(start)), append(running, sawRunning)
		b.StopTimer()
		deleteAndWait(b, api, name)
		b.StartTimer()
	}
	b.StopTimer()
	report(b, "ready", ready)
	report(b, "running", running)
}

func allTasksRunning(c *spec.MySQLCluster, n int) bool {
	count := 0
	for _, in := range c.Status.Instances {
		if in.State == "TASK_RUNNING" {
			count++
		}
	}
	return count == n
}

func benchCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	b.Cleanup(cancel)
	return ctx
}

// deleteAndWait deletes a cluster and waits until its finalizer let it go.
func deleteAndWait(b *testing.B, api *client.Client, name string) {
	if _, _, err := api.Delete(benchCtx(b), spec.DefaultNamespace, name, false); err != nil {
		b.Fatal(err)
	}
	testutil.WaitFor(b, 2*time.Minute, "cluster "+name+" deleted", func() bool {
		_, err := api.Get(benchCtx(b), spec.DefaultNamespace, name)
		return client.IsNotFound(err)
	})
}
