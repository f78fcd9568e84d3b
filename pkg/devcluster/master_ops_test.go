package devcluster

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// setup: a master, one fake agent, one partition-aware framework holding
// an offer.
func mtSetup(t *testing.T, info string) (*mtTestMaster, *mtFakeAgent, string, *mtSubscription, mesos.Offer) {
	tm := mtNewTestMaster(t)
	fa := mtNewFakeAgent(t, tm.m)
	agentID := fa.register(t, mtDefaultAgentInfo())
	s := tm.mtSubscribeJSON(t, mtSubscribeBody(info))
	o := s.next(t, mtIsType(scheduler.Event_OFFERS)).Offers.Offers[0]
	return tm, fa, agentID, s, o
}

func (tm *mtTestMaster) mtSubscribeJSON(t *testing.T, body string) *mtSubscription {
	t.Helper()
	return tm.subscribeJSON(t, body)
}

func mtTask(id, agentID, res, extra string) string {
	return `{"name":"` + id + `","task_id":{"value":"` + id + `"},"agent_id":{"value":"` + agentID + `"},"resources":` + res + extra + `}`
}

const mtSmall = `[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1},"allocation_info":{"role":"mysos"}},{"name":"mem","type":"SCALAR","scalar":{"value":32},"allocation_info":{"role":"mysos"}}]`
const mtCmd = `,"command":{"shell":true,"value":"sleep 1000"}`

func mtAccept(fwID, offerID, ops string) string {
	return mtCallBody(fwID, "ACCEPT", "accept", `{"offer_ids":[{"value":"`+offerID+`"}],"operations":`+ops+`,"filters":{"refuse_seconds":1}}`)
}

func mtRunTasks(t *testing.T, fa *mtFakeAgent) msgRunTasks {
	t.Helper()
	return fa.expect(t, func(m any) bool { _, ok := m.(msgRunTasks); return ok }).(msgRunTasks)
}

// Transcript 08: TASK_ERROR for invalid tasks, the rest are launched.
func TestMasterLaunchAndTaskErrors(t *testing.T) {
	tm, fa, agentID, s, o := mtSetup(t, mtFwInfoPA)
	tooBig := `[{"name":"cpus","type":"SCALAR","scalar":{"value":64},"allocation_info":{"role":"mysos"}},{"name":"mem","type":"SCALAR","scalar":{"value":32},"allocation_info":{"role":"mysos"}}]`
	ops := `[{"type":"LAUNCH","launch":{"task_infos":[` +
		mtTask("t-finish", agentID, mtSmall, mtCmd) + `,` +
		mtTask("t-invalid", agentID, mtSmall, "") + `,` +
		mtTask("t-toobig", agentID, tooBig, mtCmd) + `,` +
		mtTask("t-finish", agentID, mtSmall, mtCmd) + `]}}]`
	if code, body := tm.postJSON(t, s.streamID, mtAccept(s.fwID, o.ID.Value, ops)); code != 202 {
		t.Fatalf("accept %d %s", code, body)
	}
	ev := s.next(t, mtIsUpdate("t-invalid"))
	st := ev.Update.Status
	if st.GetState() != mesos.TASK_ERROR || st.GetReason() != mesos.REASON_TASK_INVALID || st.GetSource() != mesos.SOURCE_MASTER ||
		st.GetMessage() != "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present" || st.UUID != nil ||
		st.GetAgentID().GetValue() != agentID {
		t.Errorf("t-invalid: %v", st)
	}
	st = s.next(t, mtIsUpdate("t-toobig")).Update.Status
	if st.GetState() != mesos.TASK_ERROR || !strings.HasPrefix(st.GetMessage(), "Total resources cpus(allocated: mysos):64; mem(allocated: mysos):32 required by task and its executor is more than available") ||
		!strings.Contains(st.GetMessage(), "cpus(allocated: mysos):1.9") {
		t.Errorf("t-toobig: %v", st.GetMessage())
	}
	st = s.next(t, mtIsUpdate("t-finish")).Update.Status
	if st.GetState() != mesos.TASK_ERROR || st.GetMessage() != "Task has duplicate ID: t-finish" {
		t.Errorf("duplicate: %v", st)
	}
	run := mtRunTasks(t, fa)
	if len(run.Tasks) != 1 || run.Tasks[0].TaskID.Value != "t-finish" || run.Executor != nil || run.Framework.GetID().GetValue() != s.fwID ||
		run.Tasks[0].Resources[0].AllocationInfo.GetRole() != "mysos" {
		t.Errorf("run tasks %v", run)
	}
	// The next offer leaves out what the task uses.
	o2 := s.next(t, mtIsType(scheduler.Event_OFFERS)).Offers.Offers[0]
	if c := mtResourceByName(o2.Resources, "cpus"); c.GetScalar().GetValue() != 1.9 {
		t.Errorf("next offer cpus %v", c)
	}
	// Reliable update forwarding: the executor's uuid goes through; the ACK
	// reaches the agent; a terminal update frees the resources at once.
	uuid := []byte("0123456789abcdef")
	running := mesos.TASK_RUNNING
	src := mesos.SOURCE_EXECUTOR
	fa.l.sendToMaster(msgStatusUpdate{AgentID: mesos.AgentID{Value: agentID}, FrameworkID: mesos.FrameworkID{Value: s.fwID},
		Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t-finish"}, State: &running, Source: &src, UUID: uuid,
			AgentID: &mesos.AgentID{Value: agentID}, ExecutorID: &mesos.ExecutorID{Value: "t-finish"}}})
	st = s.next(t, mtIsUpdate("t-finish")).Update.Status
	if st.GetState() != mesos.TASK_RUNNING || string(st.UUID) != string(uuid) || st.Timestamp == nil {
		t.Errorf("forwarded update %v", st)
	}
	ack := mtCallBody(s.fwID, "ACKNOWLEDGE", "acknowledge", `{"agent_id":{"value":"`+agentID+`"},"task_id":{"value":"t-finish"},"uuid":"`+
		base64.StdEncoding.EncodeToString(uuid)+`"}`)
	if code, _ := tm.postJSON(t, s.streamID, ack); code != 202 {
		t.Fatalf("ack %d", code)
	}
	a := fa.expect(t, func(m any) bool { _, ok := m.(msgAcknowledge); return ok }).(msgAcknowledge)
	if a.TaskID.Value != "t-finish" || string(a.UUID) != string(uuid) || a.FrameworkID.Value != s.fwID {
		t.Errorf("ack forwarded %v", a)
	}
	// Explicit reconciliation of the known task: latest state.
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "RECONCILE", "reconcile", `{"tasks":[{"task_id":{"value":"t-finish"},"agent_id":{"value":"`+agentID+`"}}]}`))
	st = s.next(t, mtIsUpdate("t-finish")).Update.Status
	if st.GetState() != mesos.TASK_RUNNING || st.GetReason() != mesos.REASON_RECONCILIATION || st.GetMessage() != "Reconciliation: Latest task state" || st.UUID != nil {
		t.Errorf("reconcile known %v", st)
	}
	finished := mesos.TASK_FINISHED
	fa.l.sendToMaster(msgStatusUpdate{AgentID: mesos.AgentID{Value: agentID}, FrameworkID: mesos.FrameworkID{Value: s.fwID},
		Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t-finish"}, State: &finished, Source: &src, UUID: []byte("fedcba9876543210")}})
	s.next(t, func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && e.Update.Status.GetState() == mesos.TASK_FINISHED
	})
	s.next(t, func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_OFFERS && mtResourceByName(e.Offers.Offers[0].Resources, "cpus").GetScalar().GetValue() == 0.1
	})
}

// Transcript 03: reconciliation answers and KILL of unknown tasks.
func TestMasterReconcile(t *testing.T) {
	tm, fa, agentID, s, _ := mtSetup(t, mtFwInfoPA)
	_ = fa
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "RECONCILE", "reconcile", `{"tasks":[{"task_id":{"value":"no-such-task"},"agent_id":{"value":"`+agentID+`"}}]}`))
	st := s.next(t, mtIsUpdate("no-such-task")).Update.Status
	if st.GetState() != mesos.TASK_GONE || st.GetMessage() != "Reconciliation: Task is unknown to the agent" || st.GetReason() != mesos.REASON_RECONCILIATION ||
		st.GetSource() != mesos.SOURCE_MASTER || st.GetAgentID().GetValue() != agentID || st.UUID != nil {
		t.Errorf("unknown task, known agent: %v", st)
	}
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "RECONCILE", "reconcile", `{"tasks":[{"task_id":{"value":"no-such-task-2"}}]}`))
	st = s.next(t, mtIsUpdate("no-such-task-2")).Update.Status
	if st.GetState() != mesos.TASK_UNKNOWN || st.GetMessage() != "Reconciliation: Task is unknown" || st.AgentID != nil {
		t.Errorf("unknown task: %v", st)
	}
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "KILL", "kill", `{"task_id":{"value":"ghost-task"}}`))
	st = s.next(t, mtIsUpdate("ghost-task")).Update.Status
	if st.GetState() != mesos.TASK_UNKNOWN || st.GetReason() != mesos.REASON_RECONCILIATION {
		t.Errorf("kill unknown: %v", st)
	}
	// Implicit reconciliation with no tasks: nothing.
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "RECONCILE", "reconcile", `{"tasks":[]}`))
	s.none(t, 200*time.Millisecond, mtIsType(scheduler.Event_UPDATE))

	// A framework that is not partition-aware gets TASK_LOST.
	s2 := tm.subscribeJSON(t, mtSubscribeBody(mtFwInfoLegacy))
	tm.postJSON(t, s2.streamID, mtCallBody(s2.fwID, "RECONCILE", "reconcile", `{"tasks":[{"task_id":{"value":"x"},"agent_id":{"value":"`+agentID+`"}},{"task_id":{"value":"y"}}]}`))
	for _, id := range []string{"x", "y"} {
		if st := s2.next(t, mtIsUpdate(id)).Update.Status; st.GetState() != mesos.TASK_LOST {
			t.Errorf("legacy reconcile %s: %v", id, st)
		}
	}
}

// Transcript 03: an ACCEPT of a used offer drops the tasks.
func TestMasterInvalidOffers(t *testing.T) {
	tm, fa, agentID, s, o := mtSetup(t, mtFwInfoPA)
	ops := `[{"type":"LAUNCH","launch":{"task_infos":[` + mtTask("task-1", agentID, mtSmall, mtCmd) + `]}}]`
	tm.postJSON(t, s.streamID, mtAccept(s.fwID, o.ID.Value, ops))
	mtRunTasks(t, fa)
	ops = `[{"type":"LAUNCH","launch":{"task_infos":[` + mtTask("task-stale", agentID, mtSmall, mtCmd) + `]}}]`
	tm.postJSON(t, s.streamID, mtAccept(s.fwID, o.ID.Value, ops))
	st := s.next(t, mtIsUpdate("task-stale")).Update.Status
	if st.GetState() != mesos.TASK_DROPPED || st.GetReason() != mesos.REASON_INVALID_OFFERS || st.GetSource() != mesos.SOURCE_MASTER ||
		st.GetMessage() != "Task launched with invalid offers: Offer "+o.ID.Value+" is no longer valid" || st.UUID != nil {
		t.Errorf("stale offer: %v", st)
	}
	// Not partition-aware: TASK_LOST.
	if code, _ := tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "TEARDOWN", "", "")); code != 202 {
		t.Fatal("teardown")
	}
	s2 := tm.subscribeJSON(t, mtSubscribeBody(mtFwInfoLegacy))
	tm.postJSON(t, s2.streamID, mtAccept(s2.fwID, "nope", ops))
	if st := s2.next(t, mtIsUpdate("task-stale")).Update.Status; st.GetState() != mesos.TASK_LOST {
		t.Errorf("legacy: %v", st)
	}
}

// Decline filters, SUPPRESS and REVIVE.
func TestMasterAllocatorFilters(t *testing.T) {
	tm, _, _, s, o := mtSetup(t, mtFwInfoPA)
	start := time.Now()
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "DECLINE", "decline", `{"offer_ids":[{"value":"`+o.ID.Value+`"}],"filters":{"refuse_seconds":1}}`))
	o = s.next(t, mtIsType(scheduler.Event_OFFERS)).Offers.Offers[0]
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("declined resources re-offered after %v", d)
	}
	// SUPPRESS stops offers; DECLINE with refuse 0 would otherwise re-offer at once.
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "SUPPRESS", "suppress", `{}`))
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "DECLINE", "decline", `{"offer_ids":[{"value":"`+o.ID.Value+`"}],"filters":{"refuse_seconds":0}}`))
	s.none(t, 400*time.Millisecond, mtIsType(scheduler.Event_OFFERS))
	// REVIVE clears filters and unsuppresses.
	o = func() mesos.Offer {
		tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "REVIVE", "revive", `{"roles":["mysos"]}`))
		return s.next(t, mtIsType(scheduler.Event_OFFERS)).Offers.Offers[0]
	}()
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "DECLINE", "decline", `{"offer_ids":[{"value":"`+o.ID.Value+`"}],"filters":{"refuse_seconds":30}}`))
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "REVIVE", "", ""))
	s.nextWithin(t, time.Second, mtIsType(scheduler.Event_OFFERS))
	// Subscribing with suppressed_roles starts suppressed.
	s2 := tm.subscribeJSON(t, `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"s","roles":["r"],"capabilities":[{"type":"MULTI_ROLE"}]},"suppressed_roles":["r"]}}`)
	s2.none(t, 300*time.Millisecond, mtIsType(scheduler.Event_OFFERS))
}

// RESERVE, CREATE and LAUNCH in one ACCEPT; the volume comes back in later
// offers, in both resource formats.
func TestMasterReserveCreateLaunch(t *testing.T) {
	tm, fa, agentID, s, o := mtSetup(t, mtFwInfoPA)
	resv := `"allocation_info":{"role":"mysos"},"reservations":[{"type":"DYNAMIC","role":"mysos","principal":"mysos-principal"}]`
	vol := `{"name":"disk","type":"SCALAR","scalar":{"value":128},` + resv + `,"disk":{"persistence":{"id":"mysos-vol-1","principal":"mysos-principal"},"volume":{"container_path":"data","mode":"RW"}}}`
	reserved := `[{"name":"cpus","type":"SCALAR","scalar":{"value":0.2},` + resv + `},{"name":"mem","type":"SCALAR","scalar":{"value":64},` + resv + `},{"name":"disk","type":"SCALAR","scalar":{"value":128},` + resv + `}]`
	taskRes := `[{"name":"cpus","type":"SCALAR","scalar":{"value":0.2},` + resv + `},{"name":"mem","type":"SCALAR","scalar":{"value":64},` + resv + `},` + vol + `]`
	ops := `[{"type":"RESERVE","reserve":{"resources":` + reserved + `}},{"type":"CREATE","create":{"volumes":[` + vol + `]}},` +
		`{"type":"LAUNCH","launch":{"task_infos":[` + mtTask("task-vol-1", agentID, taskRes, mtCmd) + `]}}]`
	if code, body := tm.postJSON(t, s.streamID, mtAccept(s.fwID, o.ID.Value, ops)); code != 202 {
		t.Fatalf("accept %d %s", code, body)
	}
	// RESERVE and CREATE reach the agent as one checkpoint of their result,
	// before the task.
	var checkpoints []msgCheckpointResources
	run := fa.expect(t, func(m any) bool {
		if ck, ok := m.(msgCheckpointResources); ok {
			checkpoints = append(checkpoints, ck)
		}
		_, ok := m.(msgRunTasks)
		return ok
	}).(msgRunTasks)
	if len(checkpoints) != 1 {
		t.Fatalf("%d checkpoint messages before the task; want 1 with the result of RESERVE and CREATE", len(checkpoints))
	}
	ck := checkpoints[0]
	var sawVol bool
	for _, r := range ck.Resources {
		if r.GetDisk().GetPersistence().GetID() == "mysos-vol-1" && r.GetDisk().GetVolume().GetMode() == mesos.RW && r.AllocationInfo == nil {
			sawVol = true
		}
		if len(r.Reservations) != 1 || r.Reservations[0].GetPrincipal() != "mysos-principal" {
			t.Errorf("checkpointed %v", r)
		}
	}
	if !sawVol || len(ck.Resources) != 3 {
		t.Errorf("checkpointed resources %v", ck.Resources)
	}
	if d := mtResourceByName(run.Tasks[0].Resources, "disk"); d.GetDisk().GetVolume().GetContainerPath() != "data" || d.ReservationRole() != "mysos" {
		t.Errorf("task volume %v", d)
	}
	// While the task runs, the volume is not offered.
	ev := s.next(t, mtIsType(scheduler.Event_OFFERS))
	for _, r := range ev.Offers.Offers[0].Resources {
		if r.IsPersistentVolume() {
			t.Errorf("volume in use offered: %v", r)
		}
	}
	// The task ends: reserved resources and the volume come back.
	killed := mesos.TASK_KILLED
	fa.l.sendToMaster(msgStatusUpdate{AgentID: mesos.AgentID{Value: agentID}, FrameworkID: mesos.FrameworkID{Value: s.fwID},
		Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: "task-vol-1"}, State: &killed, UUID: []byte("0123456789abcdef")}})
	hasVolume := func(e *scheduler.Event) bool {
		if e.Type != scheduler.Event_OFFERS {
			return false
		}
		for _, r := range e.Offers.Offers[0].Resources {
			if r.IsPersistentVolume() {
				return true
			}
		}
		return false
	}
	ev = s.next(t, hasVolume)
	for _, r := range ev.Offers.Offers[0].Resources {
		if len(r.Reservations) == 1 && (r.Reservations[0].GetRole() != "mysos" || r.Reservations[0].GetType() != mesos.Resource_ReservationInfo_DYNAMIC || r.Role != nil) {
			t.Errorf("refinement format: %v", r)
		}
		if r.IsPersistentVolume() && (r.GetScalar().GetValue() != 128 || r.GetDisk().GetVolume().GetContainerPath() != "data") {
			t.Errorf("volume %v", r)
		}
	}
	// The same in the legacy format, for a framework without refinement.
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "TEARDOWN", "", ""))
	s2 := tm.subscribeJSON(t, mtSubscribeBody(mtFwInfoLegacy))
	ev = s2.next(t, hasVolume)
	for _, r := range ev.Offers.Offers[0].Resources {
		if r.IsPersistentVolume() && (r.GetRole() != "mysos" || r.Reservation == nil || r.Reservation.GetPrincipal() != "mysos-principal" || len(r.Reservations) != 0) {
			t.Errorf("legacy volume %v", r)
		}
	}
	// DESTROY then UNRESERVE in one ACCEPT, written in the legacy format.
	o2 := ev.Offers.Offers[0]
	var volJSON, rest []string
	for _, r := range o2.Resources {
		b, _ := r.MarshalJSON()
		if r.IsPersistentVolume() {
			volJSON = append(volJSON, string(b))
			rr := stripVolume(r)
			b, _ = rr.MarshalJSON()
		}
		if r.Reservation != nil {
			rest = append(rest, string(b))
		}
	}
	ops = `[{"type":"DESTROY","destroy":{"volumes":[` + strings.Join(volJSON, ",") + `]}},{"type":"UNRESERVE","unreserve":{"resources":[` + strings.Join(rest, ",") + `]}}]`
	tm.postJSON(t, s2.streamID, mtAccept(s2.fwID, o2.ID.Value, ops))
	ck = fa.expect(t, func(m any) bool { _, ok := m.(msgCheckpointResources); return ok }).(msgCheckpointResources)
	if len(ck.Resources) != 0 {
		t.Errorf("after DESTROY+UNRESERVE: %v", ck.Resources)
	}
}

// Agent loss (transcript 06): partition -> RESCIND, TASK_UNREACHABLE,
// FAILURE; re-registration -> TASK_RUNNING with REASON_AGENT_REREGISTERED.
func TestMasterAgentLoss(t *testing.T) {
	tm, fa, agentID, s, o := mtSetup(t, mtFwInfoPA)
	ops := `[{"type":"LAUNCH","launch":{"task_infos":[` + mtTask("task-sleep-3", agentID, mtSmall, mtCmd) + `]}}]`
	tm.postJSON(t, s.streamID, mtAccept(s.fwID, o.ID.Value, ops))
	run := mtRunTasks(t, fa)
	running := mesos.TASK_RUNNING
	fa.l.sendToMaster(msgStatusUpdate{AgentID: mesos.AgentID{Value: agentID}, FrameworkID: mesos.FrameworkID{Value: s.fwID},
		Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: "task-sleep-3"}, State: &running, UUID: []byte("0123456789abcdef")}})
	s.next(t, mtIsUpdate("task-sleep-3"))
	outstanding := s.next(t, mtIsType(scheduler.Event_OFFERS)).Offers.Offers[0]

	fa.l.cut.Store(true)
	ev := s.next(t, mtIsType(scheduler.Event_RESCIND))
	if ev.Rescind.OfferID.Value != outstanding.ID.Value {
		t.Errorf("rescinded %v", ev.Rescind.OfferID)
	}
	st := s.next(t, mtIsUpdate("task-sleep-3")).Update.Status
	if st.GetState() != mesos.TASK_UNREACHABLE || st.GetReason() != mesos.REASON_AGENT_REMOVED || st.UnreachableTime == nil || st.UUID != nil ||
		st.GetSource() != mesos.SOURCE_MASTER {
		t.Errorf("unreachable update %v", st)
	}
	ev = s.next(t, mtIsType(scheduler.Event_FAILURE))
	if ev.Failure.GetAgentID().GetValue() != agentID || ev.Failure.ExecutorID != nil {
		t.Errorf("failure %v", ev.Failure)
	}
	tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "RECONCILE", "reconcile", `{"tasks":[{"task_id":{"value":"task-sleep-3"},"agent_id":{"value":"`+agentID+`"}}]}`))
	st = s.next(t, mtIsUpdate("task-sleep-3")).Update.Status
	if st.GetState() != mesos.TASK_UNREACHABLE || st.GetMessage() != "Reconciliation: Task is unreachable" || st.UnreachableTime == nil {
		t.Errorf("reconcile unreachable %v", st)
	}
	// No offers from the lost agent.
	s.none(t, 300*time.Millisecond, mtIsType(scheduler.Event_OFFERS))

	// Heal and re-register with the task still running.
	fa.l.cut.Store(false)
	info := mtDefaultAgentInfo()
	info.ID = &mesos.AgentID{Value: agentID}
	task := mesos.Task{Name: "task-sleep-3", TaskID: run.Tasks[0].TaskID, FrameworkID: mesos.FrameworkID{Value: s.fwID},
		AgentID: mesos.AgentID{Value: agentID}, State: &running, Resources: run.Tasks[0].Resources}
	fa.l.sendToMaster(msgRegisterAgent{Info: info, Frameworks: []mesos.FrameworkInfo{run.Framework}, Tasks: []mesos.Task{task}})
	st = s.next(t, mtIsUpdate("task-sleep-3")).Update.Status
	if st.GetState() != mesos.TASK_RUNNING || st.GetReason() != mesos.REASON_AGENT_REREGISTERED || st.UUID != nil ||
		st.GetMessage() != "Unreachable agent re-reregistered" {
		t.Errorf("re-registered update %v", st)
	}
	o = s.next(t, mtIsType(scheduler.Event_OFFERS)).Offers.Offers[0]
	if c := mtResourceByName(o.Resources, "cpus"); c.GetScalar().GetValue() != 1.9 {
		t.Errorf("offer after re-registration %v", c)
	}
	_ = proto.String
}

// Every event the master emits decodes with mesos-go's protobuf decoder.
func TestMasterProtobufEvents(t *testing.T) {
	tm := mtNewTestMaster(t)
	fa := mtNewFakeAgent(t, tm.m)
	agentID := fa.register(t, mtDefaultAgentInfo())
	call := &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: &mesos.FrameworkInfo{
		User: "u", Name: "pb", Roles: []string{"mysos"}, FailoverTimeout: proto.Float64(60),
		Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}, {Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE}}}}}
	body, _ := call.Marshal()
	s := tm.subscribe(t, mediaProtobuf, body)
	sub := s.next(t, mtIsType(scheduler.Event_SUBSCRIBED))
	fw := sub.Subscribed.FrameworkID.Value
	o := s.next(t, mtIsType(scheduler.Event_OFFERS)).Offers.Offers[0]
	post := func(c *scheduler.Call) int {
		c.FrameworkID = &mesos.FrameworkID{Value: fw}
		b, _ := c.Marshal()
		code, _, _ := tm.post(t, mediaProtobuf, mediaProtobuf, s.streamID, b)
		return code
	}
	post(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{OfferIDs: []mesos.OfferID{{Value: "stale"}},
		Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: []mesos.TaskInfo{{
			Name: "x", TaskID: mesos.TaskID{Value: "x"}, AgentID: mesos.AgentID{Value: agentID}}}}}}}})
	s.next(t, mtIsUpdate("x"))
	post(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{Tasks: []scheduler.Call_Reconcile_Task{{TaskID: mesos.TaskID{Value: "y"}}}}})
	s.next(t, mtIsUpdate("y"))
	fa.l.sendToMaster(msgExecutorToFramework{AgentID: mesos.AgentID{Value: agentID}, FrameworkID: mesos.FrameworkID{Value: fw},
		ExecutorID: mesos.ExecutorID{Value: "e"}, Data: []byte("hi")})
	if ev := s.next(t, mtIsType(scheduler.Event_MESSAGE)); string(ev.Message.Data) != "hi" {
		t.Errorf("message %v", ev)
	}
	fa.l.sendToMaster(msgExitedExecutor{AgentID: mesos.AgentID{Value: agentID}, FrameworkID: mesos.FrameworkID{Value: fw},
		ExecutorID: mesos.ExecutorID{Value: "e"}, Status: 9})
	if ev := s.next(t, mtIsType(scheduler.Event_FAILURE)); ev.Failure.GetStatus() != 9 || ev.Failure.GetExecutorID().GetValue() != "e" {
		t.Errorf("failure %v", ev)
	}
	if code := post(&scheduler.Call{Type: scheduler.Call_MESSAGE, Message: &scheduler.Call_Message{AgentID: mesos.AgentID{Value: agentID},
		ExecutorID: mesos.ExecutorID{Value: "e"}, Data: []byte("yo")}}); code != 202 {
		t.Errorf("message call %d", code)
	}
	if m := fa.expect(t, func(m any) bool { _, ok := m.(msgFrameworkToExecutor); return ok }).(msgFrameworkToExecutor); string(m.Data) != "yo" {
		t.Errorf("forwarded message %v", m)
	}
	_ = o
}
