package devcluster

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/internal/testutil"
)

// TestCgroupsMemoryLimit: with cgroups isolation a command task allocated
// 64 MiB that allocates 256 MiB is killed and fails with the memory reason;
// one within its limits finishes; the containers' cgroups go when they end.
func TestCgroupsMemoryLimit(t *testing.T) {
	testutil.RequireRoot(t, "cgroups isolation")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, Config{Listen: "127.0.0.1:0", Agents: 1, AgentResources: scResources, WorkDir: t.TempDir(),
		Timeouts: FastTimeouts(), Logger: testLogger(nil), Isolation: "cgroups"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if c.cg == nil {
		t.Fatal("cgroups isolation was asked for but is not in use")
	}
	roots := c.cg.roots()
	cl := newScClient(t, c.MasterURL(), scFrameworkInfo(true), true)
	cl.subscribe()
	agentID := c.Agents()[0].ID

	run := func(id, cmd string, want mesos.TaskState) mesos.TaskStatus {
		t.Helper()
		offer := cl.unusedOffer(agentID)
		from := cl.mark()
		task := commandTask(id, cmd, agentScalar("cpus", 0.1), agentScalar("mem", 64))
		task.AgentID = mesos.AgentID{Value: agentID}
		task.Resources = []mesos.Resource{scScalar("cpus", 0.1), scScalar("mem", 64)}
		cl.accept(offer.ID, launchOp(task))
		_, ev := cl.await(from, id+" "+want.String(), isTaskUpdate(id, want))
		return ev.Update.Status
	}
	st := run("greedy", "dd if=/dev/zero of=/dev/null bs=256M count=1", mesos.TASK_FAILED)
	if st.GetReason() != mesos.REASON_CONTAINER_LIMITATION_MEMORY {
		t.Fatalf("the greedy task failed with %s (%s); want REASON_CONTAINER_LIMITATION_MEMORY", st.GetReason(), st.GetMessage())
	}
	run("modest", "dd if=/dev/zero of=/dev/null bs=1M count=1", mesos.TASK_FINISHED)
	for _, root := range roots {
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				t.Fatalf("container cgroup %s left in %s after its task ended", e.Name(), root)
			}
		}
	}
	c.Close()
	for _, root := range roots {
		if _, err := os.Stat(root); !os.IsNotExist(err) {
			t.Fatalf("the dev cluster's cgroup %s is left after it closed", root)
		}
	}
}

// TestCgroupsResize: an executor's container is sized for the executor and
// its live tasks, as Mesos' Containerizer::update keeps it: launched with
// its first task, it grows when a second task is added to the running
// executor (before the task reaches it), and when that task ends its CPU
// shrinks and its soft memory limit follows while the hard limit stays
// (Mesos' memory isolator never lowers it).
func TestCgroupsResize(t *testing.T) {
	testutil.RequireRoot(t, "cgroups isolation")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, Config{Listen: "127.0.0.1:0", Agents: 1, AgentResources: scResources, WorkDir: t.TempDir(),
		Timeouts: FastTimeouts(), Logger: testLogger(nil), Isolation: "cgroups"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if c.cg == nil {
		t.Fatal("cgroups isolation was asked for but is not in use")
	}
	cl := newScClient(t, c.MasterURL(), scFrameworkInfo(true), true)
	cl.subscribe()
	agentID := c.Agents()[0].ID
	exec := scExecutor(t, "resized") // 0.1 cpus, 32 MiB
	launch := func(id string, cpus, mem float64) {
		t.Helper()
		offer := cl.unusedOffer(agentID)
		from := cl.mark()
		cl.accept(offer.ID, launchOp(scExecutorTask(id, agentID, exec, cpus, mem)))
		cl.await(from, id+" TASK_RUNNING", isTaskUpdate(id, mesos.TASK_RUNNING))
	}
	launch("first", 0.2, 64)

	// The one container on the agent is the executor's.
	var dirs map[string]string
	for _, root := range c.cg.roots() {
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				if dirs == nil {
					dirs = map[string]string{}
				}
				dirs[filepath.Base(root)+"/"+e.Name()] = filepath.Join(root, e.Name())
			}
		}
	}
	ct, ok := c.cg.container(containerIDIn(t, dirs)).(*cgContainerV1)
	if !ok {
		t.Fatalf("the container's cgroup is %T; this test reads cgroup v1 files", c.cg.container("x"))
	}
	read := func(dir, file string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	const mib = 1 << 20
	want := func(when string, shares, quota, soft, hard int) {
		t.Helper()
		got := []string{read(ct.cpu, "cpu.shares"), read(ct.cpu, "cpu.cfs_quota_us"), read(ct.cpu, "cpu.cfs_period_us"),
			read(ct.mem, "memory.soft_limit_in_bytes"), read(ct.mem, "memory.limit_in_bytes")}
		exp := []string{strconv.Itoa(shares), strconv.Itoa(quota), "100000", strconv.Itoa(soft), strconv.Itoa(hard)}
		if !slices.Equal(got, exp) {
			t.Fatalf("%s: cpu.shares, cfs_quota_us, cfs_period_us, soft_limit_in_bytes, limit_in_bytes = %v; want %v", when, got, exp)
		}
	}
	want("executor launched with its first task", 307, 30000, 96*mib, 96*mib)

	launch("second", 0.3, 128)
	want("a second task added to the running executor", 614, 60000, 224*mib, 224*mib)

	from := cl.mark()
	cl.kill("second", agentID)
	cl.await(from, "second TASK_KILLED", isTaskUpdate("second", mesos.TASK_KILLED))
	want("the second task ended", 307, 30000, 96*mib, 224*mib)

	from = cl.mark()
	cl.kill("first", agentID)
	cl.await(from, "first TASK_KILLED", isTaskUpdate("first", mesos.TASK_KILLED))
	want("the first task ended too", 102, 10000, 32*mib, 224*mib)
}

// containerIDIn is the one container id among the cgroups found under the
// dev cluster's roots (one per v1 controller).
func containerIDIn(t *testing.T, dirs map[string]string) string {
	t.Helper()
	ids := map[string]bool{}
	for _, dir := range dirs {
		ids[filepath.Base(dir)] = true
	}
	if len(ids) != 1 {
		t.Fatalf("want one container cgroup, found %v", dirs)
	}
	for id := range ids {
		return id
	}
	return ""
}
