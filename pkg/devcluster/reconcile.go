package devcluster

import (
	"maps"
	"slices"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// reconcile answers RECONCILE: with no tasks, one update per task the master
// knows for the framework; otherwise one per listed task. Answers come from
// the master: SOURCE_MASTER, REASON_RECONCILIATION, no uuid. Caller holds
// m.mu.
func (m *Master) reconcile(fw *mframework, tasks []scheduler.Call_Reconcile_Task) {
	if len(tasks) == 0 {
		ids := slices.Sorted(maps.Keys(fw.tasks))
		for _, id := range ids {
			fw.send(updateEvent(m.knownTaskStatus(fw, fw.tasks[id])))
		}
		return
	}
	for _, rt := range tasks {
		if st, ok := m.reconcileOne(fw, rt.TaskID.Value, rt.AgentID); ok {
			fw.send(updateEvent(st))
		}
	}
}

// knownTaskStatus is the reconciliation answer for a task the master tracks.
func (m *Master) knownTaskStatus(fw *mframework, t *mtask) mesos.TaskStatus {
	state := t.state()
	msg := "Reconciliation: Latest task state"
	if state == mesos.TASK_UNREACHABLE {
		msg = "Reconciliation: Task is unreachable"
		if !fw.partitionAware() {
			state = mesos.TASK_LOST
		}
	}
	st := masterStatus(t.t.TaskID.Value, state, mesos.REASON_RECONCILIATION, msg, t.agentID)
	if t.t.ExecutorID != nil {
		eid := *t.t.ExecutorID
		st.ExecutorID = &eid
	}
	if t.status != nil {
		if t.status.ContainerStatus != nil {
			st.ContainerStatus = proto.Clone(t.status.ContainerStatus).(*mesos.ContainerStatus)
		}
		st.Healthy = t.status.Healthy
		st.CheckStatus = t.status.CheckStatus
	}
	if state == mesos.TASK_UNREACHABLE && t.unreachableTime != nil {
		ut := *t.unreachableTime
		st.UnreachableTime = &ut
	}
	return st
}

// reconcileOne answers for one task; false means no answer (yet).
func (m *Master) reconcileOne(fw *mframework, taskID string, agentID *mesos.AgentID) (mesos.TaskStatus, bool) {
	if t := fw.tasks[taskID]; t != nil {
		return m.knownTaskStatus(fw, t), true
	}
	pa := fw.partitionAware()
	lost := func(state mesos.TaskState) mesos.TaskState {
		if pa {
			return state
		}
		return mesos.TASK_LOST
	}
	if agentID == nil {
		if len(m.awaiting) > 0 {
			// Some agent may still bring the task back: no answer yet.
			return mesos.TaskStatus{}, false
		}
		return masterStatus(taskID, lost(mesos.TASK_UNKNOWN), mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown", ""), true
	}
	aid := agentID.Value
	if m.awaiting[aid] {
		// The agent has not re-registered since the master failed over.
		return mesos.TaskStatus{}, false
	}
	if _, gone := m.gone[aid]; gone {
		return masterStatus(taskID, lost(mesos.TASK_GONE_BY_OPERATOR), mesos.REASON_RECONCILIATION, "Reconciliation: Task is gone", aid), true
	}
	if m.agents[aid] != nil {
		return masterStatus(taskID, lost(mesos.TASK_GONE), mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown to the agent", aid), true
	}
	if since, ok := m.unreachable[aid]; ok {
		st := masterStatus(taskID, lost(mesos.TASK_UNREACHABLE), mesos.REASON_RECONCILIATION, "Reconciliation: Task is unreachable", aid)
		if pa {
			st.UnreachableTime = &mesos.TimeInfo{Nanoseconds: since.UnixNano()}
		}
		return st, true
	}
	return masterStatus(taskID, lost(mesos.TASK_UNKNOWN), mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown", aid), true
}

// kill forwards KILL to the task's agent; an unknown task is answered like
// an explicit reconciliation. Caller holds m.mu.
func (m *Master) kill(fw *mframework, k *scheduler.Call_Kill) {
	t := fw.tasks[k.TaskID.Value]
	if t == nil {
		if st, ok := m.reconcileOne(fw, k.TaskID.Value, k.AgentID); ok {
			fw.send(updateEvent(st))
		}
		return
	}
	a := m.agents[t.agentID]
	if a == nil {
		// The agent is unreachable: the kill cannot be delivered; tell the
		// framework what the master knows.
		fw.send(updateEvent(m.knownTaskStatus(fw, t)))
		return
	}
	policy := k.KillPolicy
	if policy == nil {
		policy = t.t.KillPolicy
	}
	a.link.sendToAgent(msgKillTask{FrameworkID: mesos.FrameworkID{Value: fw.id}, TaskID: k.TaskID, KillPolicy: policy})
}

// reconcileOperations answers RECONCILE_OPERATIONS: the master tracks no
// operations (no operation feedback), so every one is OPERATION_UNKNOWN.
func (m *Master) reconcileOperations(fw *mframework, ro *scheduler.Call_ReconcileOperations) {
	for _, op := range ro.Operations {
		id := op.OperationID
		st := mesos.OperationStatus{
			OperationID: &id,
			State:       mesos.OPERATION_UNKNOWN,
			Message:     proto.String("Reconciliation: Operation is unknown"),
		}
		if op.AgentID != nil {
			aid := *op.AgentID
			st.AgentID = &aid
		}
		fw.send(&scheduler.Event{Type: scheduler.Event_UPDATE_OPERATION_STATUS,
			UpdateOperationStatus: &scheduler.Event_UpdateOperationStatus{Status: st}})
	}
}
