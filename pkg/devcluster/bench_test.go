package devcluster

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// Benchmarks of the whole dev cluster (docs/benchmarks.md). Like every Go
// benchmark they run only with -bench, never in a plain `go test`.

// BenchmarkLaunchAckKill measures one task's life on a warm cluster whose
// executor already runs: ACCEPT(LAUNCH) -> TASK_RUNNING -> ACKNOWLEDGE ->
// KILL -> TASK_KILLED -> ACKNOWLEDGE. Waiting for the offer (the allocation
// interval) is not timed.
func BenchmarkLaunchAckKill(b *testing.B) {
	c := startScCluster(b, 1, scResources)
	agentID := c.Agents()[0].ID
	cl := newScClient(b, c.MasterURL(), scFrameworkInfo(true), false)
	cl.subscribe()
	exec := scExecutor(b, "exec-bench")

	cursor := 0
	// takeOffer returns an offer of the agent and declines every other
	// outstanding one, so that they come back merged.
	takeOffer := func() mesos.OfferID {
		i, _ := cl.await(cursor, "offer", isOfferOn(agentID))
		var ids []mesos.OfferID
		for _, e := range cl.since(i) {
			if e.Type == scheduler.Event_OFFERS {
				for _, o := range e.Offers.Offers {
					ids = append(ids, o.ID)
				}
			}
		}
		cursor = cl.mark()
		use := ids[len(ids)-1]
		if len(ids) > 1 {
			cl.call(&scheduler.Call{Type: scheduler.Call_DECLINE, Decline: &scheduler.Call_Decline{
				OfferIDs: ids[:len(ids)-1], Filters: &mesos.Filters{RefuseSeconds: aptr(0.0)}}})
		}
		return use
	}
	var toRunning, toKilled time.Duration
	cycle := func(task string, timed bool) {
		if timed {
			b.StopTimer()
		}
		offer := takeOffer()
		cl.forget(cursor)
		if timed {
			b.StartTimer()
		}
		t0 := time.Now()
		from := cl.mark()
		cl.accept(offer, launchOp(scExecutorTask(task, agentID, exec, 0.01, 1)))
		_, ev := cl.await(from, task+" TASK_RUNNING", isTaskUpdate(task, mesos.TASK_RUNNING))
		cl.ack(ev.Update.Status)
		t1 := time.Now()
		from = cl.mark()
		cl.kill(task, agentID)
		_, ev = cl.await(from, task+" TASK_KILLED", isTaskUpdate(task, mesos.TASK_KILLED))
		cl.ack(ev.Update.Status)
		t2 := time.Now()
		toRunning += t1.Sub(t0)
		toKilled += t2.Sub(t1)
	}
	// Warm up: the executor starts and has served one task.
	cycle("warmup", false)
	toRunning, toKilled = 0, 0

	b.ResetTimer()
	for i := range b.N {
		cycle(fmt.Sprintf("task-%d", i), true)
	}
	b.StopTimer()
	b.ReportMetric(float64(toRunning.Microseconds())/1000/float64(b.N), "ms-launch-to-running/op")
	b.ReportMetric(float64(toKilled.Microseconds())/1000/float64(b.N), "ms-kill-to-killed/op")
}

// BenchmarkScale100Agents10000Tasks builds a cluster of 100 agents running
// 10,000 tasks (one executor per agent holding 100 tasks, launched through
// offers by a checkpointing, partition-aware framework that acknowledges
// every update), then times implicit reconciliations of all of them (ns/op
// is one reconciliation, from RECONCILE to the 10,000th answer). It reports
// how long the launch took and the heap in use after GC of the whole
// in-process cluster, of the master alone (agents stopped) and of the 100
// agents (the difference), plus the executors' resident memory.
//
// The cluster is built for each call of the function: run it with
// -benchtime 1x (one build, one reconciliation) or Nx (two builds: the
// testing package makes a first call with b.N = 1).
func BenchmarkScale100Agents10000Tasks(b *testing.B) {
	const agents, perAgent = 100, 100
	b.StopTimer()
	base := heapInUse()

	t0 := time.Now()
	c := startScClusterWith(b, agents, "cpus:8;mem:16384;disk:1024;ports:[31000-31100]", scaleTimeouts())
	startAgents := time.Since(t0)
	idle := heapInUse()

	cl := newScClient(b, c.MasterURL(), scFrameworkInfo(true), true)
	t0 = time.Now()
	cl.subscribe()
	launched := map[string]bool{}
	cursor := 0
	for len(launched) < agents {
		i, ev := cl.await(cursor, "offers", isEvent(scheduler.Event_OFFERS))
		cursor = i + 1
		for _, o := range ev.Offers.Offers {
			aid := o.AgentID.Value
			if launched[aid] {
				continue
			}
			launched[aid] = true
			exec := scExecutor(b, "exec-"+aid)
			tasks := make([]mesos.TaskInfo, perAgent)
			for k := range tasks {
				tasks[k] = scExecutorTask(fmt.Sprintf("%s-task-%03d", aid, k), aid, exec, 0.01, 1)
			}
			cl.accept(o.ID, launchOp(tasks...))
		}
	}
	running := map[string]bool{}
	for len(running) < agents*perAgent {
		i, ev := cl.awaitWithin(2*time.Minute, cursor, fmt.Sprintf("TASK_RUNNING (%d so far, %v)", len(running), time.Since(t0)), func(e *scheduler.Event) bool {
			return e.Type == scheduler.Event_UPDATE && e.Update.Status.GetState() == mesos.TASK_RUNNING
		})
		running[ev.Update.Status.TaskID.Value] = true
		cursor = i + 1
		cl.forget(cursor)
	}
	launchAll := time.Since(t0)
	cl.waitAcked()
	running = nil
	cl.forget(cl.mark())
	full := heapInUse()
	if path := os.Getenv("DEVCLUSTER_BENCH_HEAPPROFILE"); path != "" {
		// For docs/benchmarks.md: which part (master, agents) holds what.
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}

	// Every executor process, for their memory and the clean-up.
	var pids []int
	for i := range agents {
		for _, fw := range agentState(b, c, i).Frameworks {
			for _, ex := range fw.Executors {
				if ex.Pid > 0 {
					pids = append(pids, ex.Pid)
				}
			}
		}
	}
	if len(pids) != agents {
		b.Fatalf("%d executors, want %d", len(pids), agents)
	}
	b.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
	var execRSS int64
	for _, pid := range pids {
		execRSS += rssKB(pid)
	}

	b.StartTimer()
	for range b.N {
		from := cl.mark()
		cl.reconcile()
		n := 0
		for n < agents*perAgent {
			i, _ := cl.await(from, "reconciliation", func(e *scheduler.Event) bool {
				return e.Type == scheduler.Event_UPDATE && e.Update.Status.GetReason() == mesos.REASON_RECONCILIATION
			})
			n++
			from = i + 1
			cl.forget(from)
		}
	}
	b.StopTimer()
	cl.checkAcks()

	const mb = 1 << 20
	b.ReportMetric(startAgents.Seconds(), "s-start-100-agents")
	b.ReportMetric(launchAll.Seconds(), "s-launch-10000-tasks")
	b.ReportMetric(float64(full.inuse-base.inuse)/mb, "MB-heapinuse-cluster")
	b.ReportMetric(float64(full.alloc-base.alloc)/mb, "MB-live-cluster")
	b.ReportMetric(float64(idle.inuse-base.inuse)/mb, "MB-heapinuse-idle")
	b.ReportMetric(float64(full.alloc-idle.alloc)/float64(agents*perAgent), "B-live/task")
	b.ReportMetric(float64(execRSS)/1024, "MB-rss-executors")
}

// scaleTimeouts are FastTimeouts with Mesos' default allocation interval
// and agent health checks (1s; 15s x 5): with 10,000 tasks one allocation
// round of the master takes longer than FastTimeouts' whole health-check
// budget (3 x 100ms), during which it holds its lock, so agents would be
// marked unreachable (see docs/benchmarks.md).
func scaleTimeouts() Timeouts {
	t := FastTimeouts()
	d := DefaultTimeouts()
	t.AllocationInterval = d.AllocationInterval
	t.AgentPing, t.MaxAgentPings = d.AgentPing, d.MaxAgentPings
	return t
}

type heapStats struct{ inuse, alloc int64 }

// heapInUse is runtime.MemStats.HeapInuse (spans in use) and HeapAlloc
// (live objects) after a full collection.
func heapInUse() heapStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return heapStats{int64(ms.HeapInuse), int64(ms.HeapAlloc)}
}

// rssKB is a process's resident set size.
func rssKB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
