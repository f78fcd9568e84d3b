package devcluster

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// Whole-cluster scenarios: a real master and real agents (Start), real
// executor processes (this test binary in executor mode), and a framework
// (scClient) that is PARTITION_AWARE and checkpointing, talking protobuf
// over HTTP. Faults come from the Cluster's methods; every wait is for an
// event, with a deadline.

const scResources = "cpus:4;mem:4096;disk:1024;ports:[31000-31100]"

// scSetup starts a cluster of n agents and subscribes an auto-acknowledging
// framework.
func scSetup(t *testing.T, n int) (*Cluster, *scClient) {
	t.Helper()
	c := startScCluster(t, n, scResources)
	cl := newScClient(t, c.MasterURL(), scFrameworkInfo(true), true)
	cl.subscribe()
	return c, cl
}

// launchOnExecutor launches task on agent i under exec (a new executor or
// the running one) and returns its acknowledged TASK_RUNNING update.
func launchOnExecutor(t *testing.T, c *Cluster, cl *scClient, i int, task string, exec *mesos.ExecutorInfo) mesos.TaskStatus {
	t.Helper()
	agentID := c.Agents()[i].ID
	offer := cl.unusedOffer(agentID)
	from := cl.mark()
	cl.accept(offer.ID, launchOp(scExecutorTask(task, agentID, exec, 0.1, 32)))
	_, ev := cl.await(from, task+" TASK_RUNNING", isTaskUpdate(task, mesos.TASK_RUNNING))
	st := ev.Update.Status
	if st.GetSource() != mesos.SOURCE_EXECUTOR || len(st.UUID) == 0 || st.GetExecutorID().GetValue() != exec.ExecutorID.Value ||
		st.GetAgentID().GetValue() != agentID {
		t.Fatalf("bad TASK_RUNNING: %+v", st)
	}
	cl.waitAcked()
	return st
}

// noUpdates fails if an update of task in one of states arrived since from.
func noUpdates(t *testing.T, cl *scClient, from int, task string, states ...mesos.TaskState) {
	t.Helper()
	for _, e := range cl.since(from) {
		if e.Type != scheduler.Event_UPDATE || e.Update.Status.TaskID.Value != task {
			continue
		}
		for _, s := range states {
			if e.Update.Status.GetState() == s {
				t.Fatalf("unexpected update %s %s (%s)", task, s, e.Update.Status.GetReason())
			}
		}
	}
}

var terminalStates = []mesos.TaskState{mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
	mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR}

func processAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// A task on a custom executor runs (its TASK_RUNNING is acknowledged) and
// is killed: TASK_KILLED from the executor.
func TestClusterScenarioLaunchKill(t *testing.T) {
	c, cl := scSetup(t, 1)
	agentID := c.Agents()[0].ID
	exec := scExecutor(t, "exec-1")
	launchOnExecutor(t, c, cl, 0, "task-1", exec)

	from := cl.mark()
	cl.kill("task-1", agentID)
	_, ev := cl.await(from, "task-1 TASK_KILLED", isTaskUpdate("task-1", mesos.TASK_KILLED))
	if st := ev.Update.Status; st.GetSource() != mesos.SOURCE_EXECUTOR || len(st.UUID) == 0 {
		t.Fatalf("bad TASK_KILLED: %+v", st)
	}
	cl.waitAcked()
	// The executor is still there for the next task.
	launchOnExecutor(t, c, cl, 0, "task-2", exec)
}

// A partition: the master rescinds the agent's offers, reports the task
// TASK_UNREACHABLE and sends FAILURE{agent_id}; reconciliation says
// TASK_UNREACHABLE; once healed the agent re-registers and the task is
// TASK_RUNNING (REASON_AGENT_REREGISTERED, no uuid) on the same executor
// process.
func TestClusterScenarioPartitionHeal(t *testing.T) {
	c, cl := scSetup(t, 1)
	agentID := c.Agents()[0].ID
	launchOnExecutor(t, c, cl, 0, "task-1", scExecutor(t, "exec-1"))
	held := cl.unusedOffer(agentID) // stays outstanding
	pid, _ := executorOf(t, c, 0, cl.frameworkID(), "exec-1")

	from := cl.mark()
	if err := c.PartitionAgent(0); err != nil {
		t.Fatal(err)
	}
	i, _ := cl.await(from, "RESCIND of the held offer", func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_RESCIND && e.Rescind.OfferID == held.ID
	})
	i, ev := cl.await(i, "TASK_UNREACHABLE", isTaskUpdate("task-1", mesos.TASK_UNREACHABLE))
	st := ev.Update.Status
	if st.GetReason() != mesos.REASON_AGENT_REMOVED || st.UnreachableTime == nil || len(st.UUID) != 0 ||
		st.GetSource() != mesos.SOURCE_MASTER || st.GetAgentID().GetValue() != agentID {
		t.Fatalf("bad TASK_UNREACHABLE: %+v", st)
	}
	unreachableTime := *st.UnreachableTime
	_, ev = cl.await(i, "FAILURE", isEvent(scheduler.Event_FAILURE))
	if f := ev.Failure; f.GetAgentID().GetValue() != agentID || f.ExecutorID != nil || f.Status != nil {
		t.Fatalf("bad FAILURE: %+v", f)
	}

	from = cl.mark()
	cl.reconcile(scheduler.Call_Reconcile_Task{TaskID: mesos.TaskID{Value: "task-1"}, AgentID: &mesos.AgentID{Value: agentID}})
	_, ev = cl.await(from, "reconciliation", isTaskUpdateWith("task-1", mesos.TASK_UNREACHABLE, mesos.REASON_RECONCILIATION))
	if ut := ev.Update.Status.UnreachableTime; ut == nil || *ut != unreachableTime {
		t.Fatalf("reconciliation unreachable_time %v, want %v", ut, unreachableTime)
	}

	from = cl.mark()
	if err := c.HealAgent(0); err != nil {
		t.Fatal(err)
	}
	_, ev = cl.await(from, "TASK_RUNNING after re-registration",
		isTaskUpdateWith("task-1", mesos.TASK_RUNNING, mesos.REASON_AGENT_REREGISTERED))
	if st := ev.Update.Status; len(st.UUID) != 0 || st.GetSource() != mesos.SOURCE_MASTER {
		t.Fatalf("bad re-registration update: %+v", st)
	}
	if got, _ := executorOf(t, c, 0, cl.frameworkID(), "exec-1"); got != pid || !processAlive(pid) {
		t.Fatalf("executor pid %d after heal, want %d still alive", got, pid)
	}
	noUpdates(t, cl, from, "task-1", terminalStates...)
	if id := c.Agents()[0].ID; id != agentID {
		t.Fatalf("agent id changed: %s -> %s", agentID, id)
	}
}

// An agent restart with checkpointing: the executor process survives and
// re-subscribes, the agent re-registers with the same id, the task stays
// RUNNING with no new terminal update, and the executor still obeys.
func TestClusterScenarioAgentRestart(t *testing.T) {
	c, cl := scSetup(t, 1)
	agentID := c.Agents()[0].ID
	launchOnExecutor(t, c, cl, 0, "task-1", scExecutor(t, "exec-1"))
	pid, sandbox := executorOf(t, c, 0, cl.frameworkID(), "exec-1")

	from := cl.mark()
	if err := c.RestartAgent(0); err != nil {
		t.Fatal(err)
	}
	waitAgentsRegistered(t, c)
	if id := c.Agents()[0].ID; id != agentID {
		t.Fatalf("agent id changed: %s -> %s", agentID, id)
	}
	if got, _ := executorOf(t, c, 0, cl.frameworkID(), "exec-1"); got != pid || !processAlive(pid) {
		t.Fatalf("executor pid %d after restart, want %d still alive", got, pid)
	}
	// The agent takes the SUBSCRIBE before the executor logs it: wait for
	// the second line.
	waitFor(t, "the executor to log its re-subscription", func() bool {
		log, _ := os.ReadFile(filepath.Join(sandbox, "executor.log"))
		return strings.Count(string(log), "subscribed\n") >= 2
	})
	m := cl.mark()
	cl.reconcile(scheduler.Call_Reconcile_Task{TaskID: mesos.TaskID{Value: "task-1"}, AgentID: &mesos.AgentID{Value: agentID}})
	cl.await(m, "reconciliation", isTaskUpdateWith("task-1", mesos.TASK_RUNNING, mesos.REASON_RECONCILIATION))

	// KILL reaches the executor through its new subscription.
	m = cl.mark()
	cl.kill("task-1", agentID)
	cl.await(m, "TASK_KILLED", isTaskUpdate("task-1", mesos.TASK_KILLED))
	noUpdates(t, cl, from, "task-1", append([]mesos.TaskState{mesos.TASK_UNREACHABLE}, terminalStates[:2]...)...)
}

// An agent stopped long enough becomes unreachable; an update its executor
// sends meanwhile is kept by the executor and delivered once the agent is
// back, after the master's TASK_RUNNING (REASON_AGENT_REREGISTERED).
func TestClusterScenarioAgentStopped(t *testing.T) {
	c, cl := scSetup(t, 1)
	agentID := c.Agents()[0].ID
	launchOnExecutor(t, c, cl, 0, "task-1", scExecutor(t, "exec-1"))
	pid, sandbox := executorOf(t, c, 0, cl.frameworkID(), "exec-1")

	from := cl.mark()
	if err := c.StopAgent(0); err != nil {
		t.Fatal(err)
	}
	const msg = "sent while the agent was down"
	sent := writeTrigger(t, sandbox, "task-1", "TASK_RUNNING", msg)
	i, ev := cl.await(from, "TASK_UNREACHABLE", isTaskUpdate("task-1", mesos.TASK_UNREACHABLE))
	if st := ev.Update.Status; st.GetReason() != mesos.REASON_AGENT_REMOVED || st.UnreachableTime == nil {
		t.Fatalf("bad TASK_UNREACHABLE: %+v", st)
	}
	cl.await(i, "FAILURE", func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_FAILURE && e.Failure.GetAgentID().GetValue() == agentID
	})
	waitForFile(t, sent)

	from = cl.mark()
	if err := c.RestartAgent(0); err != nil {
		t.Fatal(err)
	}
	i, ev = cl.await(from, "TASK_RUNNING after re-registration",
		isTaskUpdateWith("task-1", mesos.TASK_RUNNING, mesos.REASON_AGENT_REREGISTERED))
	if len(ev.Update.Status.UUID) != 0 {
		t.Fatalf("master's update carries a uuid: %+v", ev.Update.Status)
	}
	_, ev = cl.await(i, "the update sent while the agent was down", func(e *scheduler.Event) bool {
		return isTaskUpdate("task-1", mesos.TASK_RUNNING)(e) && e.Update.Status.GetMessage() == msg
	})
	if st := ev.Update.Status; st.GetSource() != mesos.SOURCE_EXECUTOR || len(st.UUID) == 0 || st.GetAgentID().GetValue() != agentID {
		t.Fatalf("bad delivered update: %+v", st)
	}
	cl.waitAcked()
	if got, _ := executorOf(t, c, 0, cl.frameworkID(), "exec-1"); got != pid || !processAlive(pid) {
		t.Fatalf("executor pid %d after restart, want %d still alive", got, pid)
	}
	noUpdates(t, cl, from, "task-1", terminalStates...)
}

func waitForFile(t *testing.T, path string) {
	t.Helper()
	waitFor(t, path+" to appear", func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
}

// An executor process killed: its task fails (REASON_EXECUTOR_TERMINATED)
// and the framework gets FAILURE{agent_id, executor_id, status}.
func TestClusterScenarioExecutorKilled(t *testing.T) {
	c, cl := scSetup(t, 1)
	agentID := c.Agents()[0].ID
	launchOnExecutor(t, c, cl, 0, "task-1", scExecutor(t, "exec-1"))
	pid, _ := executorOf(t, c, 0, cl.frameworkID(), "exec-1")

	from := cl.mark()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, ev := cl.await(from, "TASK_FAILED", isTaskUpdate("task-1", mesos.TASK_FAILED))
	if st := ev.Update.Status; st.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || len(st.UUID) == 0 ||
		st.GetSource() != mesos.SOURCE_AGENT || st.GetExecutorID().GetValue() != "exec-1" {
		t.Fatalf("bad TASK_FAILED: %+v", st)
	}
	_, ev = cl.await(from, "FAILURE of the executor", func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_FAILURE && e.Failure.ExecutorID != nil
	})
	f := ev.Failure
	if f.GetAgentID().GetValue() != agentID || f.ExecutorID.Value != "exec-1" || f.Status == nil ||
		!syscall.WaitStatus(*f.Status).Signaled() || syscall.WaitStatus(*f.Status).Signal() != syscall.SIGKILL {
		t.Fatalf("bad FAILURE: %+v", f)
	}
	cl.waitAcked()
}

// A master restart ends the framework's stream; it re-subscribes with its
// id and keeps it, the agents re-register, and an implicit reconciliation
// reports the running task, which can still be killed.
func TestClusterScenarioMasterRestart(t *testing.T) {
	c, cl := scSetup(t, 2)
	agentID := c.Agents()[1].ID
	launchOnExecutor(t, c, cl, 1, "task-1", scExecutor(t, "exec-1"))
	fwID := cl.frameworkID()

	if err := c.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	cl.waitEnded()
	if sub := cl.subscribe(); sub.FrameworkID.Value != fwID {
		t.Fatalf("re-subscribed as %s, want %s", sub.FrameworkID.Value, fwID)
	}
	waitAgentsRegistered(t, c)
	from := cl.mark()
	cl.reconcile()
	_, ev := cl.await(from, "implicit reconciliation", isTaskUpdateWith("task-1", mesos.TASK_RUNNING, mesos.REASON_RECONCILIATION))
	if st := ev.Update.Status; st.GetAgentID().GetValue() != agentID || st.GetExecutorID().GetValue() != "exec-1" || len(st.UUID) != 0 {
		t.Fatalf("bad reconciliation: %+v", st)
	}
	from = cl.mark()
	cl.kill("task-1", agentID)
	cl.await(from, "TASK_KILLED", isTaskUpdate("task-1", mesos.TASK_KILLED))
}

// ---- persistent volumes -------------------------------------------------

const scVolumeID = "vol-1"

func scReservedDisk(mb float64) mesos.Resource {
	r := scScalar("disk", mb)
	r.Reservations = []mesos.Resource_ReservationInfo{{
		Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: aptr("mysos"), Principal: aptr("mysos-principal"),
	}}
	return r
}

func scVolume(mb float64) mesos.Resource {
	r := scReservedDisk(mb)
	r.Disk = &mesos.Resource_DiskInfo{
		Persistence: &mesos.Resource_DiskInfo_Persistence{ID: scVolumeID, Principal: aptr("mysos-principal")},
		Volume:      &mesos.Volume{ContainerPath: "data", Mode: mesos.RW.Enum()},
	}
	return r
}

func scCommandTask(id, agentID, cmd string, rs ...mesos.Resource) mesos.TaskInfo {
	return mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: mesos.AgentID{Value: agentID},
		Command:   &mesos.CommandInfo{Value: aptr(cmd)},
		Resources: append([]mesos.Resource{scScalar("cpus", 0.1), scScalar("mem", 32)}, rs...),
	}
}

func hasVolume(o *mesos.Offer) bool {
	for _, r := range o.Resources {
		if p := r.GetDisk().GetPersistence(); p != nil && p.ID == scVolumeID {
			n := len(r.Reservations)
			return n > 0 && r.Reservations[n-1].GetRole() == "mysos" && r.GetScalar().GetValue() == 64
		}
	}
	return false
}

// offerWhere waits for an offer on agentID that satisfies ok, declining
// (without a filter) every other offer received since the previous call, so
// that the agent's free resources come back together. Offers the master
// rescinded are skipped: after an agent restart, call cl.sync first so that
// their RESCIND has arrived.
func offerWhere(t *testing.T, cl *scClient, agentID string, ok func(*mesos.Offer) bool) mesos.Offer {
	t.Helper()
	for {
		i, o := cl.nextOffer(cl.offerCursor, agentID)
		cl.offerCursor = i + 1
		if cl.rescinded(o.ID) {
			continue
		}
		if ok(&o) {
			return o
		}
		cl.call(&scheduler.Call{Type: scheduler.Call_DECLINE, Decline: &scheduler.Call_Decline{
			OfferIDs: []mesos.OfferID{o.ID}, Filters: &mesos.Filters{RefuseSeconds: aptr(0.0)}}})
	}
}

// runCommand launches a command task from offer and waits for its end.
func runCommand(t *testing.T, cl *scClient, offer mesos.Offer, task mesos.TaskInfo, ops ...mesos.Offer_Operation) mesos.TaskStatus {
	t.Helper()
	from := cl.mark()
	cl.accept(offer.ID, append(ops, launchOp(task))...)
	_, ev := cl.await(from, task.TaskID.Value+" end", func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && e.Update.Status.TaskID == task.TaskID &&
			(e.Update.Status.GetState() == mesos.TASK_FINISHED || isTerminalState(e.Update.Status.GetState()))
	})
	if st := ev.Update.Status; st.GetState() != mesos.TASK_FINISHED {
		t.Fatalf("%s: %s %s %q", task.TaskID.Value, st.GetState(), st.GetReason(), st.GetMessage())
	}
	cl.waitAcked()
	return ev.Update.Status
}

// One ACCEPT reserves disk, creates a persistent volume on it and launches
// a task that writes into the volume. The volume comes back in the next
// offer, a second task reads the data, so does a third after an agent
// restart (an offer held across the restart is rescinded and not used), and
// DESTROY + UNRESERVE gives the plain disk back.
func TestClusterScenarioPersistentVolume(t *testing.T) {
	c, cl := scSetup(t, 1)
	agentID := c.Agents()[0].ID
	offer := offerWhere(t, cl, agentID, func(*mesos.Offer) bool { return true })
	runCommand(t, cl, offer, scCommandTask("writer", agentID, "echo hello > data/file", scVolume(64)),
		mesos.Offer_Operation{Type: mesos.Offer_Operation_RESERVE, Reserve: &mesos.Offer_Operation_Reserve{
			Resources: []mesos.Resource{scReservedDisk(64)}}},
		mesos.Offer_Operation{Type: mesos.Offer_Operation_CREATE, Create: &mesos.Offer_Operation_Create{
			Volumes: []mesos.Resource{scVolume(64)}}},
	)
	workDir := agentState(t, c, 0).Flags["work_dir"]
	volDir := filepath.Join(workDir, "volumes", "roles", "mysos", scVolumeID)
	if b, err := os.ReadFile(filepath.Join(volDir, "file")); err != nil || string(b) != "hello\n" {
		t.Fatalf("volume content %q, %v", b, err)
	}

	read := `test "$(cat data/file)" = hello`
	offer = offerWhere(t, cl, agentID, hasVolume)
	runCommand(t, cl, offer, scCommandTask("reader-1", agentID, read, scVolume(64)))

	// The volume is offered again once reader-1 ended; that offer is held
	// across the agent restart. The master rescinds it when the agent comes
	// back on a new connection, so it must not be used: cl.sync makes sure
	// its RESCIND is in, and offerWhere skips it.
	_, ev := cl.await(cl.offerCursor, "an offer of the volume before the restart", func(e *scheduler.Event) bool {
		o := offerOn(e, agentID)
		return o != nil && hasVolume(o)
	})
	held := *offerOn(ev, agentID)
	if err := c.RestartAgent(0); err != nil {
		t.Fatal(err)
	}
	waitAgentsRegistered(t, c)
	cl.sync(agentID)
	if !cl.rescinded(held.ID) {
		t.Fatalf("offer %s, made before the agent restarted, was not rescinded", held.ID.Value)
	}
	offer = offerWhere(t, cl, agentID, hasVolume)
	runCommand(t, cl, offer, scCommandTask("reader-2", agentID, read, scVolume(64)))

	offer = offerWhere(t, cl, agentID, hasVolume)
	cl.accept(offer.ID,
		mesos.Offer_Operation{Type: mesos.Offer_Operation_DESTROY, Destroy: &mesos.Offer_Operation_Destroy{
			Volumes: []mesos.Resource{scVolume(64)}}},
		mesos.Offer_Operation{Type: mesos.Offer_Operation_UNRESERVE, Unreserve: &mesos.Offer_Operation_Unreserve{
			Resources: []mesos.Resource{scReservedDisk(64)}}},
	)
	offerWhere(t, cl, agentID, func(o *mesos.Offer) bool {
		disk := 0.0
		for _, r := range o.Resources {
			if len(r.Reservations) > 0 || r.Disk != nil {
				return false
			}
			if r.Name == "disk" {
				disk += r.GetScalar().GetValue()
			}
		}
		return disk == 1024
	})
	waitFor(t, "the volume directory to be deleted after DESTROY", func() bool {
		_, err := os.Stat(volDir)
		return os.IsNotExist(err)
	})
}

// Closing the cluster kills the executors of an agent left stopped: StopAgent
// keeps them running for a restart, but nothing may outlive the cluster.
func TestClusterCloseKillsExecutorsOfStoppedAgents(t *testing.T) {
	c, cl := scSetup(t, 1)
	launchOnExecutor(t, c, cl, 0, "task-1", scExecutor(t, "exec-1"))
	pid, _ := executorOf(t, c, 0, cl.frameworkID(), "exec-1")
	if err := c.StopAgent(0); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("StopAgent killed the executor (pid %d): %v", pid, err)
	}
	cl.close()
	c.Close()
	waitFor(t, "the orphaned executor to die", func() bool {
		return syscall.Kill(pid, 0) != nil
	})
}

// The fault API kills an executor as a crash would: the framework sees
// TASK_FAILED (REASON_EXECUTOR_TERMINATED) and FAILURE.
func TestClusterKillExecutorThroughTheControlAPI(t *testing.T) {
	c, cl := scSetup(t, 1)
	launchOnExecutor(t, c, cl, 0, "task-1", scExecutor(t, "exec-1"))
	from := cl.mark()
	url := fmt.Sprintf("%s/devcluster/agents/0/executors/%s/exec-1/kill", c.MasterURL(), cl.frameworkID())
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("kill executor: HTTP %d", resp.StatusCode)
	}
	cl.await(from, "TASK_FAILED", isTaskUpdateWith("task-1", mesos.TASK_FAILED, mesos.REASON_EXECUTOR_TERMINATED))
	cl.await(from, "FAILURE of the executor", func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_FAILURE && e.Failure.GetExecutorID().GetValue() == "exec-1"
	})
	if err := c.KillExecutor(0, cl.frameworkID(), "exec-1"); err == nil {
		t.Fatal("killing an executor that is gone succeeded")
	}
	cl.waitAcked()
}
