package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/devcluster"
	"github.com/mysos-project/mysos/pkg/reconciler"
	"github.com/mysos-project/mysos/pkg/spec"
)

// The control-plane benchmark (docs/benchmarks.md): one real mysos-scheduler
// (embedded etcd) on a dev cluster of 100 agents with Mesos' default
// timeouts, whose executors are the light test executor (lightexec_test.go),
// so that only the control plane is measured. For each size it applies that
// many 3-instance clusters at once through the API and measures:
//
//   - s-to-running: from the first apply to the last task reported
//     TASK_RUNNING by its executor; s-to-seen: until the scheduler's metrics
//     count every instance running;
//   - steady-cpu-%, steady-rss-MB: the scheduler process's CPU (user+system,
//     % of one core) over a 30 s window with no changes, and its resident
//     memory at the end of it;
//   - change-to-kill p50/p99: from sending a spec change (replicas 3 -> 2)
//     to the KILL of the removed instance's task arriving at its executor;
//   - etcd-req/reconcile: etcd requests per reconcile pass in the steady
//     window, and while launching (launch-etcd-req/cluster);
//   - devcluster-cpu-%: this process (master, 100 agents, light executors)
//     while launching, to show the dev cluster is not the bottleneck.
//
// Run it alone, with -benchtime 1x (each size builds its own cluster):
//
//	go test -run '^$' -bench BenchmarkControlPlane -benchtime 1x -timeout 30m ./e2e/
//
// MYSOS_BENCH_PROFILE_DIR=dir also saves the scheduler's CPU profile of the
// launch (launch-<n>.pprof) and of the steady window (steady-<n>.pprof).
func BenchmarkControlPlane(b *testing.B) {
	for _, n := range controlPlaneSizes() {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			for range b.N {
				runControlPlane(b, n)
			}
		})
	}
}

// controlPlaneSizes are the sizes of the curve; MYSOS_BENCH_CLUSTERS=100,300
// picks others.
func controlPlaneSizes() []int {
	env := os.Getenv("MYSOS_BENCH_CLUSTERS")
	if env == "" {
		return []int{100, 300, 1000}
	}
	var sizes []int
	for _, f := range strings.Split(env, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			sizes = append(sizes, n)
		}
	}
	return sizes
}

const (
	benchAgents        = 100
	benchAgentRes      = "cpus:64;mem:262144;disk:4194304;ports:[31000-32000]"
	steadyWindow       = 30 * time.Second
	settleAfterRunning = 5 * time.Second
	latencySamples     = 100
)

func runControlPlane(b *testing.B, n int) {
	b.StopTimer()
	light := newLightLauncher()
	// The dev cluster logs warnings only: 3,000 tasks' info lines would cost
	// this process more than the cluster's work does.
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := startDevClusterWith(b, devcluster.Config{Agents: benchAgents, AgentResources: benchAgentRes,
		Timeouts: devcluster.DefaultTimeouts(), Launcher: light, Logger: quiet})
	debug := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(b))
	s := startMesosScheduler(b, c, nil, "--log-level", "info", "--debug-listen", debug)
	waitSubscribed(b, s, c)
	api := benchAPI(b, s)
	pid := s.cmd.Process.Pid
	profiles := os.Getenv("MYSOS_BENCH_PROFILE_DIR")

	// Launch: apply every cluster, wait for every task to run.
	var launchProfile chan error
	if profiles != "" {
		launchProfile = fetchProfile(debug, 20*time.Second, filepath.Join(profiles, fmt.Sprintf("launch-%d.pprof", n)))
	}
	before := scrape(b, s)
	cpu0, self0 := procCPU(b, pid), selfCPU()
	start := time.Now()
	b.StartTimer()
	applyAll(b, api, n)
	applied := time.Since(start)
	last := waitTasksRunning(b, light, 3*n, 5*time.Minute)
	b.StopTimer()
	toRunning := last.Sub(start)
	launchCPU, selfLaunch := procCPU(b, pid)-cpu0, selfCPU()-self0
	waitUntil(b, 2*time.Minute, "the scheduler to count every instance running", func() error {
		if got := scrape(b, s).sum("mysos_cluster_instances", "state", "TASK_RUNNING"); got != float64(3*n) {
			return fmt.Errorf("%v instances running; want %d", got, 3*n)
		}
		return nil
	})
	toSeen := time.Since(start)
	launched := scrape(b, s)
	if launchProfile != nil {
		if err := <-launchProfile; err != nil {
			b.Logf("launch profile: %v", err)
		}
	}
	if profiles != "" {
		b.Cleanup(func() {
			_ = os.WriteFile(filepath.Join(profiles, fmt.Sprintf("scheduler-%d.log", n)), s.log.Bytes(), 0o644)
			_ = os.WriteFile(filepath.Join(profiles, fmt.Sprintf("running-%d.txt", n)), light.timeline(start), 0o644)
		})
	}
	if f := light.failures; len(f) > 0 {
		b.Fatalf("light executors failed: %v", f[:min(len(f), 5)])
	}

	// Steady state: nothing changes; resyncs are all that runs.
	window(settleAfterRunning)
	var steadyProfile chan error
	if profiles != "" {
		steadyProfile = fetchProfile(debug, steadyWindow, filepath.Join(profiles, fmt.Sprintf("steady-%d.pprof", n)))
	}
	m0, c0, t0 := scrape(b, s), procCPU(b, pid), time.Now()
	window(steadyWindow)
	m1, c1, t1 := scrape(b, s), procCPU(b, pid), time.Now()
	rss := procRSS(b, pid)
	if steadyProfile != nil {
		if err := <-steadyProfile; err != nil {
			b.Logf("steady profile: %v", err)
		}
	}
	steadyCPU := (c1 - c0).Seconds() / t1.Sub(t0).Seconds() * 100
	reconciles := m1.count("mysos_reconcile_duration_seconds") - m0.count("mysos_reconcile_duration_seconds")
	etcdReqs := m1.count("mysos_etcd_request_duration_seconds") - m0.count("mysos_etcd_request_duration_seconds")

	// Reconcile latency: a spec change to the Mesos call it causes.
	latencies := measureChangeToKill(b, api, light, n)

	b.ReportMetric(toRunning.Seconds(), "s-to-running")
	b.ReportMetric(toSeen.Seconds(), "s-to-seen")
	b.ReportMetric(applied.Seconds(), "s-apply")
	b.ReportMetric(launchCPU.Seconds()/toRunning.Seconds()*100, "launch-cpu-%")
	b.ReportMetric(selfLaunch.Seconds()/toRunning.Seconds()*100, "devcluster-cpu-%")
	b.ReportMetric(float64(3*n)/toRunning.Seconds(), "tasks/s")
	b.ReportMetric((launched.count("mysos_etcd_request_duration_seconds")-before.count("mysos_etcd_request_duration_seconds"))/float64(n), "launch-etcd-req/cluster")
	b.ReportMetric(steadyCPU, "steady-cpu-%")
	b.ReportMetric(float64(rss)/1024, "steady-rss-MB")
	b.ReportMetric(reconciles/steadyWindow.Seconds(), "steady-reconciles/s")
	if reconciles > 0 {
		b.ReportMetric(etcdReqs/reconciles, "etcd-req/reconcile")
	}
	b.ReportMetric(testutil.Percentile(latencies, 50).Seconds()*1000, "change-to-kill-p50-ms")
	b.ReportMetric(testutil.Percentile(latencies, 99).Seconds()*1000, "change-to-kill-p99-ms")
	b.Logf("clusters=%d: apply %.1fs, all RUNNING %.1fs, seen %.1fs, launch CPU %.0f%%, steady CPU %.2f%%, RSS %d MB, %.1f reconciles/s, %.1f etcd requests/reconcile, change->KILL p50 %s p99 %s",
		n, applied.Seconds(), toRunning.Seconds(), toSeen.Seconds(), launchCPU.Seconds()/toRunning.Seconds()*100,
		steadyCPU, rss/1024, reconciles/steadyWindow.Seconds(), etcdReqs/max(reconciles, 1),
		testutil.Percentile(latencies, 50).Round(time.Microsecond), testutil.Percentile(latencies, 99).Round(time.Microsecond))
}

// benchClusterName is the i-th cluster of the benchmark.
func benchClusterName(i int) string { return fmt.Sprintf("c%04d", i) }

// benchCluster3 is a small 3-instance cluster: the light executor needs
// nothing of its resources, and a hundred agents fit a thousand of them.
func benchCluster3(b *testing.B, i int) *spec.MySQLCluster {
	c, err := spec.ParseOne([]byte(clusterManifest(benchClusterName(i), 3)))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func benchAPI(b *testing.B, s *scheduler) *client.Client {
	token, err := os.ReadFile(filepath.Join(s.dataDir, "token"))
	if err != nil {
		b.Fatal(err)
	}
	api, err := client.New("http://"+s.addr, strings.TrimSpace(string(token)))
	if err != nil {
		b.Fatal(err)
	}
	return api
}

// applyAll creates n clusters through the API, eight requests at a time, as
// a GitOps pipeline applying a directory would.
func applyAll(b *testing.B, api *client.Client, n int) {
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := api.Create(ctx, benchCluster3(b, i), false)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("create cluster %d: %w", i, err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// waitTasksRunning waits for want tasks to have been reported RUNNING and
// returns when the last one was.
func waitTasksRunning(b *testing.B, light *lightLauncher, want int, timeout time.Duration) time.Time {
	deadline := time.After(timeout)
	for {
		got, last, changed := light.runningCount()
		if got >= want {
			return last
		}
		select {
		case <-changed:
		case <-deadline:
			b.Fatalf("%d of %d tasks RUNNING after %s", got, want, timeout)
		}
	}
}

// measureChangeToKill scales latencySamples clusters, spread over all n,
// from 3 to 2 replicas one after the other, and times each from the update
// request to the KILL of the third instance's task at its executor.
func measureChangeToKill(b *testing.B, api *client.Client, light *lightLauncher, n int) []time.Duration {
	samples := min(latencySamples, n)
	var out []time.Duration
	for k := range samples {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		name := benchClusterName(k * n / samples)
		c, err := api.Get(ctx, spec.DefaultNamespace, name)
		if err != nil {
			b.Fatal(err)
		}
		victim := ""
		for _, in := range c.Status.Instances {
			if strings.HasSuffix(in.Name, "-2") {
				victim = in.TaskID
			}
		}
		if victim == "" || !strings.HasPrefix(victim, reconciler.TaskIDPrefix(spec.DefaultNamespace, name)) {
			b.Fatalf("cluster %s: no task for instance 2 in %+v", name, c.Status.Instances)
		}
		two := int32(2)
		c.Spec.Replicas = &two
		sent := time.Now()
		if _, err := api.Update(ctx, c, false); err != nil {
			b.Fatal(err)
		}
		cancel()
		deadline := time.After(30 * time.Second)
		for {
			at, ok, changed := light.killedAt(victim)
			if ok {
				out = append(out, at.Sub(sent))
				break
			}
			select {
			case <-changed:
			case <-deadline:
				b.Fatalf("no KILL of %s within 30s of scaling %s down", victim, name)
			}
		}
	}
	return out
}

// window lets a measurement window pass: the benchmark samples what the
// scheduler does over that long; nothing waits on it for an event.
func window(d time.Duration) { <-time.After(d) }

// fetchProfile saves the scheduler's CPU profile over the next d.
func fetchProfile(debugAddr string, d time.Duration, path string) chan error {
	done := make(chan error, 1)
	go func() {
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, int(d.Seconds()))
		ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	return done
}

// procCPU is a process's user+system CPU time so far.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command (which may hold spaces) start after ")".
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procRSS is a process's resident set in KiB.
func procRSS(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// metricsView is one scrape of the scheduler's /metrics.
type metricsView map[string]*dto.MetricFamily

func scrape(b *testing.B, s *scheduler) metricsView {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url()+"/metrics", nil)
	resp, err := s.httpClient().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return mf
}

// sum adds a gauge or counter's samples whose label has value.
func (m metricsView) sum(name, label, value string) float64 {
	var total float64
	for _, s := range m[name].GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				total += s.GetGauge().GetValue() + s.GetCounter().GetValue()
			}
		}
	}
	return total
}

// count adds the sample counts of a histogram's series.
func (m metricsView) count(name string) float64 {
	var total float64
	for _, s := range m[name].GetMetric() {
		total += float64(s.GetHistogram().GetSampleCount())
	}
	return total
}
