package devcluster

import (
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// After a re-registration the master asks about tasks the agent's report
// lacked (Mesos' Slave::reregistered): a task the agent has needs no
// answer; one it does not know ends with a reliable update from the agent,
// TASK_LOST, or TASK_DROPPED for a partition-aware framework, also of a
// framework the agent never heard of, which it forgets again once the
// update is acknowledged.
func TestAgentAnswersReconciliationOfTasksItDoesNotKnow(t *testing.T) {
	ta := startTestAgent(t, AgentConfig{})
	fm := ta.fm
	fm.setAutoAck(true)
	fw := testFramework("fw-1", false)
	fm.l.sendToAgent(msgRunTasks{Framework: fw, Tasks: []mesos.TaskInfo{commandTask("t-known", "sleep 1000")}})
	fm.update(t, "t-known", mesos.TASK_RUNNING)

	pa := testFramework("fw-pa", true)
	pa.Capabilities = append(pa.Capabilities, mesos.FrameworkInfo_Capability{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE})
	fm.l.sendToAgent(msgRegistered{AgentID: mesos.AgentID{Value: fm.agentID}, Reconcile: []msgReconcileTasks{
		{Framework: fw, TaskIDs: []mesos.TaskID{{Value: "t-known"}, {Value: "t-lost"}}},
		{Framework: pa, TaskIDs: []mesos.TaskID{{Value: "t-dropped"}}},
	}})
	for task, state := range map[string]mesos.TaskState{"t-lost": mesos.TASK_LOST, "t-dropped": mesos.TASK_DROPPED} {
		st := fm.update(t, task, state).Status
		if st.GetSource() != mesos.SOURCE_AGENT || st.GetReason() != mesos.REASON_RECONCILIATION ||
			st.GetMessage() != "Reconciliation: task unknown to the agent" || len(st.UUID) != 16 ||
			st.GetAgentID().GetValue() != fm.agentID {
			t.Fatalf("answer for %s: %+v", task, st)
		}
	}
	// The agent answered in one go, t-known first: anything about it
	// would be recorded by now.
	if got := fm.matching(func(m any) bool {
		u, ok := m.(msgStatusUpdate)
		return ok && u.Status.TaskID.Value == "t-known" && u.Status.GetState() != mesos.TASK_STARTING && u.Status.GetState() != mesos.TASK_RUNNING
	}); len(got) != 0 {
		t.Fatalf("the agent answered for a task it runs: %+v", got)
	}
	waitFor(t, "the framework known only from the reconciliation to be forgotten", func() bool {
		ta.a.mu.Lock()
		defer ta.a.mu.Unlock()
		return ta.a.frameworks["fw-pa"] == nil && ta.a.frameworks["fw-1"] != nil
	})
}
