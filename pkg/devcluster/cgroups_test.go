package devcluster

import (
	"context"
	"os"
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
	memRoot := c.cg.memRoot
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
	entries, err := os.ReadDir(memRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			t.Fatalf("container cgroup %s left after its task ended", e.Name())
		}
	}
	c.Close()
	if _, err := os.Stat(memRoot); !os.IsNotExist(err) {
		t.Fatalf("the dev cluster's cgroup %s is left after it closed", memRoot)
	}
}
