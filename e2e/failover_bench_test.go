package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/spec"
)

// benchCluster is a Ready 3-instance MariaDB cluster on a 4-agent dev
// cluster, with an API client and a table to write to.
type benchCluster struct {
	s        *scheduler
	api      *client.Client
	password string
}

func startBenchCluster(b *testing.B) *benchCluster {
	testutil.RequireBinary(b, "mariadb-install-db", "apt-get install -y mariadb-server")
	c := startDevCluster(b, 4)
	s := startScheduler(b, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"))
	password, _ := startShop(b, s, failoverManifest)
	return &benchCluster{s: s, api: benchAPI(b, s), password: password}
}

func (bc *benchCluster) get(b testing.TB) *spec.MySQLCluster {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := bc.api.Get(ctx, "default", "shop")
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func (bc *benchCluster) waitReady(b testing.TB) {
	testutil.WaitFor(b, 120*time.Second, "the cluster Ready", func() bool { return readyTrue(*bc.get(b)) })
}

// BenchmarkFailover kills the primary's mysqld (kill -9) once per op and
// measures, from the kill: when another instance acknowledges a write
// ("writable"), when the API and the discovery record name the new primary
// ("published"), and from the events where the time went: the Mesos status
// path up to the reconciler's decision ("noticed"), and the failover's own
// steps ("steps"). Run with -benchtime Nx: every op is one failover, and
// the cluster is Ready again before the next.
func BenchmarkFailover(b *testing.B) {
	bc := startBenchCluster(b)
	var writable, published, noticed, steps []time.Duration
	id := 0
	for b.Loop() {
		bc.waitReady(b)
		// A task that dies within 10 s of its launch counts as crash-looping
		// and is relaunched after a backoff: let the last relaunch age.
		ready := time.Now()
		testutil.WaitFor(b, time.Minute, "the relaunched instance to age", func() bool { return time.Since(ready) > 10*time.Second })
		before := bc.get(b)
		old := *instanceNamed(*before, before.Status.CurrentPrimary)
		var others []string
		for _, in := range before.Status.Instances {
			if in.Name != old.Name {
				others = append(others, fmt.Sprintf("%s:%d", in.Host, in.Port))
			}
		}
		probes := openProbes(b, others, bc.password)
		killed := time.Now()
		if err := syscall.Kill(mysqldPID(b, old), syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		id = probeUntilWritable(b, probes, id)
		writable = append(writable, time.Since(killed))
		testutil.WaitFor(b, 30*time.Second, "the new primary published", func() bool {
			c := bc.get(b)
			return c.Status.Endpoints != nil && c.Status.Endpoints.Primary != "" &&
				c.Status.Endpoints.Primary != fmt.Sprintf("%s:%d", old.Host, old.Port) && c.Status.Endpoints.Epoch > before.Status.Endpoints.Epoch
		})
		published = append(published, time.Since(killed))
		n, st := failoverTimings(b, bc, killed)
		noticed, steps = append(noticed, n), append(steps, st)
		closeProbes(probes)
	}
	b.StopTimer()
	report(b, "writable", writable)
	report(b, "published", published)
	report(b, "noticed", noticed)
	report(b, "steps", steps)
}

// failoverTimings reads the last completed failover's events: when it
// started (after the kill) and how long its steps took.
func failoverTimings(b *testing.B, bc *benchCluster, killed time.Time) (noticed, steps time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	events, err := bc.api.Events(ctx, "default", "shop")
	if err != nil {
		b.Fatal(err)
	}
	for _, ev := range events {
		if ev.Time.Before(killed) {
			continue
		}
		switch ev.Reason {
		case "FailoverStarted":
			noticed = ev.Time.Sub(killed)
		case "FailoverCompleted":
			steps, _ = ev.Elapsed.Value()
			return noticed, steps
		}
	}
	b.Fatalf("no completed failover in the events after the kill: %+v", events)
	return 0, 0
}

// BenchmarkSwitchoverWritePause switches the primary over once per op while
// a writer commits without pause, and measures the longest gap between two
// acknowledged writes: the pause clients see.
func BenchmarkSwitchoverWritePause(b *testing.B) {
	bc := startBenchCluster(b)
	w := &ackWriter{password: bc.password, retryEvery: time.Millisecond, primary: func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := bc.api.Get(ctx, "default", "shop")
		if err != nil || c.Status.Endpoints == nil {
			return ""
		}
		return c.Status.Endpoints.Primary
	}}
	ctx, stop := context.WithCancel(context.Background())
	done := w.start(ctx)
	defer func() { stop(); <-done }()
	var pauses, total []time.Duration
	for b.Loop() {
		bc.waitReady(b)
		w.waitAcked(b, 20)
		from := bc.get(b).Status.CurrentPrimary
		start := time.Now()
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := bc.api.Switchover(rctx, "default", "shop", "")
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		testutil.WaitFor(b, 60*time.Second, "the switchover done", func() bool {
			c := bc.get(b)
			return c.Status.Operation == nil && c.Status.CurrentPrimary != from
		})
		total = append(total, time.Since(start))
		w.waitAcked(b, 20)
		pauses = append(pauses, w.longestPause(start))
	}
	b.StopTimer()
	report(b, "pause", pauses)
	report(b, "switchover", total)
}

// report logs every sample and reports the median and the maximum (with a
// few dozen samples, the maximum is the p99).
func report(b *testing.B, what string, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(sorted[len(sorted)/2]), what+"-median-ms")
	b.ReportMetric(ms(sorted[len(sorted)-1]), what+"-max-ms")
	var parts []string
	for _, d := range samples {
		parts = append(parts, fmt.Sprintf("%.1f", ms(d)))
	}
	b.Logf("%s (ms, in order): %s", what, strings.Join(parts, " "))
}

// openProbes opens one connection pool per endpoint, connected already, so
// probing measures the servers and not connection set-up.
func openProbes(b *testing.B, endpoints []string, password string) []*sql.DB {
	var out []*sql.DB
	for _, e := range endpoints {
		db, err := openDB(e, "app", password)
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxIdleConns(1)
		_ = db.Ping()
		out = append(out, db)
	}
	return out
}

func closeProbes(dbs []*sql.DB) {
	for _, db := range dbs {
		db.Close()
	}
}

// probeUntilWritable tries a write on every probe in turn until one is
// acknowledged; it returns the next unused id.
func probeUntilWritable(b *testing.B, probes []*sql.DB, id int) int {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, db := range probes {
			id++
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := db.ExecContext(ctx, "INSERT INTO shop.w VALUES (?)", 1_000_000+id)
			cancel()
			if err == nil {
				return id
			}
		}
	}
	b.Fatal("no other instance became writable within 30 s of the kill")
	return id
}
