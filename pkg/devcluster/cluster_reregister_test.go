package devcluster

import (
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// An agent re-registers (its pings stopped for a while) with a report
// written just before a launch reached it, the launch waiting behind it: the
// task must run, without a terminal update first. (The master once
// answered TASK_GONE "Task is unknown to the agent" for it, dropped it from
// its books, and forwarded the updates that followed anyway.)
func TestClusterLaunchRacingAReregistrationRuns(t *testing.T) {
	to := FastTimeouts()
	to.AgentPing = time.Hour // no health checks: the test re-registers the agent itself
	c := startScClusterWith(t, 1, scResources, to)
	cl := newScClient(t, c.MasterURL(), scFrameworkInfo(true), true)
	cl.subscribe()
	agentID := c.Agents()[0].ID
	a, m := c.Agent(0), c.Master()
	offer := cl.unusedOffer(agentID)

	// The agent is busy: what the master sends it waits in its mailbox.
	a.mu.Lock()
	locked := true
	defer func() {
		if locked {
			a.mu.Unlock()
		}
	}()
	from := cl.mark()
	cl.accept(offer.ID, launchOp(scCommandTask("task-1", agentID, "sleep 1000")))
	reregistered := func() time.Time {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.agents[agentID].reregistered
	}
	before := reregistered()
	// What the agent's registration loop does when the master's pings stop.
	a.registered = false
	a.sendRegisterLocked()
	waitFor(t, "the master to take the re-registration", func() bool { return reregistered() != before })
	a.mu.Unlock()
	locked = false

	cl.await(from, "task-1 TASK_RUNNING", isTaskUpdate("task-1", mesos.TASK_RUNNING))
	m2 := cl.mark()
	cl.reconcile(scheduler.Call_Reconcile_Task{TaskID: mesos.TaskID{Value: "task-1"}, AgentID: &mesos.AgentID{Value: agentID}})
	cl.await(m2, "reconciliation", isTaskUpdateWith("task-1", mesos.TASK_RUNNING, mesos.REASON_RECONCILIATION))
	noUpdates(t, cl, from, "task-1", append([]mesos.TaskState{mesos.TASK_UNKNOWN}, terminalStates...)...)
}
