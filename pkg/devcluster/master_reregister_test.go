package devcluster

import (
	"slices"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// An agent whose pings stopped for a while re-registers on its connection
// with a report it may have written before a launch reached it: the launch
// is on its way, behind the report. As in Mesos
// (Master::reconcileKnownSlave), the master keeps the task and asks the
// agent about it rather than answering TASK_GONE; it keeps its own view of
// the agent's reservations and volumes, which the report may predate too,
// and sends it back; and it keeps the agent's offers, since the connection
// did not break.
func TestMasterReregistrationRacingALaunchKeepsTheTask(t *testing.T) {
	tm, fa, agentID, s, o := mtSetup(t, mtFwInfoPA)
	resv := `"allocation_info":{"role":"mysos"},"reservations":[{"type":"DYNAMIC","role":"mysos","principal":"mysos-principal"}]`
	reserved := `[{"name":"disk","type":"SCALAR","scalar":{"value":128},` + resv + `}]`
	ops := `[{"type":"RESERVE","reserve":{"resources":` + reserved + `}},` +
		`{"type":"LAUNCH","launch":{"task_infos":[` + mtTask("t-race", agentID, mtSmall, mtCmd) + `]}}]`
	if code, body := tm.postJSON(t, s.streamID, mtAccept(s.fwID, o.ID.Value, ops)); code != 202 {
		t.Fatalf("accept %d %s", code, body)
	}
	fa.expect(t, func(m any) bool { _, ok := m.(msgCheckpointResources); return ok })
	if run := mtRunTasks(t, fa); run.Tasks[0].TaskID.Value != "t-race" {
		t.Fatalf("run tasks %v", run)
	}
	// What the task leaves is offered again before the re-registration.
	held := s.next(t, mtIsType(scheduler.Event_OFFERS)).Offers.Offers[0]

	// The report was written before the launch and the RESERVE arrived.
	reg, ok := fa.reregister(t, agentID, mesos.FrameworkInfo{}).(msgRegistered)
	if !ok {
		t.Fatal("the agent was not re-registered")
	}
	if len(reg.Reconcile) != 1 || reg.Reconcile[0].Framework.GetID().GetValue() != s.fwID ||
		!slices.Equal(reg.Reconcile[0].TaskIDs, []mesos.TaskID{{Value: "t-race"}}) {
		t.Fatalf("reconciliation asked of the agent: %+v; want t-race of %s", reg.Reconcile, s.fwID)
	}
	if !slices.ContainsFunc(reg.Reconcile[0].Framework.Capabilities, func(c mesos.FrameworkInfo_Capability) bool {
		return c.Type == mesos.FrameworkInfo_Capability_PARTITION_AWARE
	}) {
		t.Fatalf("the agent is not told the framework is partition-aware: %+v", reg.Reconcile[0].Framework)
	}
	ck := fa.expect(t, func(m any) bool { _, ok := m.(msgCheckpointResources); return ok }).(msgCheckpointResources)
	if !slices.ContainsFunc(ck.Resources, isReservedDisk128) {
		t.Fatalf("checkpointed resources sent back %v; want the reservation the report lacked", ck.Resources)
	}

	// The task is still known: the answer to this reconciliation comes
	// after any update the re-registration sent, and says TASK_STAGING.
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "RECONCILE", "reconcile", `{"tasks":[{"task_id":{"value":"t-race"},"agent_id":{"value":"`+agentID+`"}}]}`))
	st := s.next(t, mtIsUpdate("t-race")).Update.Status
	if st.GetState() != mesos.TASK_STAGING || st.GetMessage() != "Reconciliation: Latest task state" {
		t.Fatalf("t-race after the re-registration: %s %q; want TASK_STAGING, still known", st.GetState(), st.GetMessage())
	}

	// The offer held across the re-registration is still valid.
	ops = `[{"type":"LAUNCH","launch":{"task_infos":[` + mtTask("t-after", agentID, mtSmall, mtCmd) + `]}}]`
	tm.postJSON(t, s.streamID, mtAccept(s.fwID, held.ID.Value, ops))
	if run := mtRunTasks(t, fa); run.Tasks[0].TaskID.Value != "t-after" {
		t.Fatalf("run tasks %v; want t-after launched from the held offer", run)
	}
	// The reservation stays in the master's view of the agent.
	ev := s.next(t, mtIsType(scheduler.Event_OFFERS))
	if !slices.ContainsFunc(ev.Offers.Offers[0].Resources, isReservedDisk128) {
		t.Fatalf("offer after the re-registration %v; want the reserved disk", ev.Offers.Offers[0].Resources)
	}

	// The agent had the task after all: its updates go through.
	running := mesos.TASK_RUNNING
	src := mesos.SOURCE_EXECUTOR
	fa.l.sendToMaster(msgStatusUpdate{AgentID: mesos.AgentID{Value: agentID}, FrameworkID: mesos.FrameworkID{Value: s.fwID},
		Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t-race"}, State: &running, Source: &src, UUID: []byte("0123456789abcdef")}})
	if st := s.next(t, mtIsUpdate("t-race")).Update.Status; st.GetState() != mesos.TASK_RUNNING {
		t.Fatalf("t-race: %s; want TASK_RUNNING", st.GetState())
	}
}

func isReservedDisk128(r mesos.Resource) bool {
	return r.Name == "disk" && r.GetScalar().GetValue() == 128 && len(r.Reservations) == 1 && r.Reservations[0].GetRole() == "mysos"
}
