package reconciler

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// goneByReconciliation is how Mesos answers a reconciliation (or a KILL)
// of a task it does not know yet: one whose ACCEPT it has not received.
func (g *rig) goneByReconciliation(key string) {
	inst := g.store.instance(key)
	g.mesos.setTask(framework.Task{ID: inst.TaskID, AgentID: inst.AgentID, State: mesos.TASK_GONE,
		Reason: "REASON_RECONCILIATION", Message: "Reconciliation: Task is unknown to the agent"})
}

// A terminal answer that raced the launch is followed by the task's own
// updates: the instance, put back in line by the answer, keeps the task
// rather than waiting for an offer of a volume that task holds.
func TestATaskReportedGoneThatRunsIsAdoptedBack(t *testing.T) {
	g := newRig(t, newCluster(1, 1), true)
	g.settle()
	g.launchAll()
	g.goneByReconciliation("default/shop/0")
	g.settle()
	pending := g.store.instance("default/shop/0")
	if pending.Phase != store.InstancePending || pending.TaskID != "default.shop.0.1-x" {
		t.Fatalf("after TASK_GONE: %+v; want Pending, pinned, still naming its task", pending)
	}
	launcherCopy := *pending // what a launcher handling an offer at this moment read

	g.clock = g.clock.Add(time.Second)
	g.run("default/shop/0", mesos.TASK_STARTING)
	g.settle()
	g.run("default/shop/0", mesos.TASK_RUNNING)
	g.settle()
	inst := g.store.instance("default/shop/0")
	if inst.Phase != store.InstanceLaunched || inst.TaskID != "default.shop.0.1-x" || inst.AgentID != "a0" ||
		inst.PersistenceID != "v0" || inst.Launches != 1 || !inst.NotBefore.IsZero() {
		t.Fatalf("after the task reported TASK_STARTING: %+v; want Launched with the same task, agent and volume", inst)
	}
	if len(g.mesos.kills) != 0 {
		t.Fatalf("kills %v; the adopted task must keep running", g.mesos.kills)
	}
	if st := g.cluster().Status; st.Phase != spec.PhaseRunning || st.ReadyReplicas != 1 {
		t.Fatalf("status %+v; want Running with its instance", st)
	}
	if !slices.ContainsFunc(g.store.events, func(ev spec.Event) bool { return ev.Reason == "TaskAdopted" && ev.Instance == "shop-0" }) {
		t.Fatalf("events %+v; want TaskAdopted for shop-0", g.store.events)
	}
	// A relaunch the launcher decided on the Pending record meanwhile
	// cannot be written: the instance has one task.
	launcherCopy.Phase, launcherCopy.Launches, launcherCopy.TaskID = store.InstanceLaunched, 2, "default.shop.0.2-y"
	if err := g.store.PutInstance(context.Background(), &launcherCopy); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a launch written over the adoption: %v; want a conflict", err)
	}
}

// When the instance was launched again before the first task turned out
// alive, the older task is killed: never two tasks for one instance. The
// cluster's other tasks (backups, the archiver) are not instance tasks.
func TestASupersededTaskThatRunsIsKilled(t *testing.T) {
	g := newRig(t, newCluster(2, 1), true)
	g.settle()
	g.launchAll()
	g.settle()
	g.goneByReconciliation("default/shop/1")
	g.settle()
	g.clock = g.clock.Add(time.Minute) // past the crash-loop backoff
	g.launchAll()                      // launch 2 of shop-1
	g.mesos.setTask(framework.Task{ID: "default.shop.1.1-x", AgentID: "a1", State: mesos.TASK_RUNNING})
	g.mesos.setTask(framework.Task{ID: "default.shop.archiver.1-y", AgentID: "a0", State: mesos.TASK_RUNNING})
	g.mesos.setTask(framework.Task{ID: "default.shop.backup.20260101T000000Z", AgentID: "a0", State: mesos.TASK_RUNNING})
	g.settle()
	if want := []string{"default.shop.1.1-x"}; !slices.Equal(g.mesos.kills, want) {
		t.Fatalf("kills %v; want %v", g.mesos.kills, want)
	}
	if inst := g.store.instance("default/shop/1"); inst.Phase != store.InstanceLaunched || inst.TaskID != "default.shop.1.2-x" {
		t.Fatalf("shop-1 %+v; want Launched with its second task", inst)
	}
	// Not re-sent while Mesos has not answered; again after killRetry.
	g.settle()
	g.clock = g.clock.Add(killRetry + time.Second)
	g.settle()
	if len(g.mesos.kills) != 2 {
		t.Fatalf("kills %v; want the kill repeated once after %v", g.mesos.kills, killRetry)
	}
	g.mesos.setTask(framework.Task{ID: "default.shop.1.1-x", AgentID: "a1", State: mesos.TASK_KILLED})
	g.clock = g.clock.Add(killRetry + time.Second)
	g.settle()
	if len(g.mesos.kills) != 2 {
		t.Fatalf("kills %v; a killed task is left alone", g.mesos.kills)
	}
}

// An instance that moved to a fresh volume elsewhere cannot take its old
// task back: that task is killed.
func TestATaskThatRunsAfterItsInstanceMovedIsKilled(t *testing.T) {
	g := newRig(t, newCluster(1, 1), true)
	g.settle()
	g.launchAll()
	g.goneByReconciliation("default/shop/0")
	g.settle()
	g.clock = g.clock.Add(DefaultRelaunchTimeout + time.Second)
	g.settle() // no offer from a0: moved
	if inst := g.store.instance("default/shop/0"); inst.Phase != store.InstancePending || inst.AgentID != "" {
		t.Fatalf("%+v; want Pending anywhere", inst)
	}
	g.mesos.setTask(framework.Task{ID: "default.shop.0.1-x", AgentID: "a0", State: mesos.TASK_RUNNING})
	g.settle()
	if want := []string{"default.shop.0.1-x"}; !slices.Equal(g.mesos.kills, want) {
		t.Fatalf("kills %v; want %v", g.mesos.kills, want)
	}
	if inst := g.store.instance("default/shop/0"); inst.Phase != store.InstancePending || inst.AgentID != "" || inst.TaskID != "default.shop.0.1-x" {
		t.Fatalf("%+v; want the record unchanged, Pending anywhere", inst)
	}
}

func TestInstanceTaskOf(t *testing.T) {
	for id, want := range map[string][3]int{
		"default.shop.0.1-39d2735b":            {0, 1, 1},
		"ns.a-b.12.345-x":                      {12, 345, 1},
		"default.shop.archiver.1-a7397631":     {0, 0, 0},
		"default.shop.backup.20261126T063411Z": {0, 0, 0},
		"default.shop.0":                       {0, 0, 0},
	} {
		o, l, ok := instanceTaskOf(id)
		if got := [3]int{o, l, map[bool]int{true: 1}[ok]}; got != want {
			t.Errorf("instanceTaskOf(%q) = %v; want %v", id, got, want)
		}
	}
}
